#!/usr/bin/env node
// Strict schema checks of the deployment files, as `kubectl apply --validate=strict`
// and `docker compose config` would do them, without a cluster or Docker.
//
//   node deploy/schema-check.mjs istio   FILE...   every Istio resource in the YAML files
//   node deploy/schema-check.mjs compose FILE...   compose files against the compose-spec schema
//
// One line per document: `OK file kind/name`, `SKIP file kind (apiVersion)` for a
// resource that is not Istio's (the Kubernetes ones are checked by kubernetes-validate
// in tests/e2e/test_manifest_schemas.py), or `ERROR file kind/name: path: message`.
// Exit status 1 if any document has an error, 2 on a usage error.
//
// Packages (package.json, installed by `make node-tools`):
// - Istio: @kubernetes-models/istio, whose validators are compiled from Istio's own
//   CRDs (crd-all.gen.yaml of Istio 1.29). They carry networking.istio.io/v1, so
//   the manifests' ServiceEntry and DestinationRule are checked against their v1
//   schemas directly. The validators let unknown fields through (a WasmPlugin
//   with `failStratgy` passes), and the package ships compiled code, not JSON
//   schemas to which `additionalProperties: false` could be added. So the check
//   is made strict from the outside: the document is wrapped in proxies that
//   record which keys the validator looks at. A compiled validator reads every
//   property its schema declares (present or not) and enumerates the keys of a
//   map (additionalProperties), so a key it never read is a field the schema
//   does not have. An object of which it read no key at all is free-form in the
//   schema (x-kubernetes-preserve-unknown-fields); those are refused too unless
//   listed in FREE_FORM, exactly where Istio's CRDs declare them.
// - compose: the compose-spec JSON schema as shipped in dclint (schemas/
//   compose.schema.json, current: it knows `name`, `include`, `develop`), which
//   declares additionalProperties: false itself; validated with ajv.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

import Ajv from "ajv";
import { parseAllDocuments } from "yaml";
import * as extensions from "@kubernetes-models/istio/extensions.istio.io/v1alpha1";
import * as networkingV1 from "@kubernetes-models/istio/networking.istio.io/v1";
import * as networkingV1beta1 from "@kubernetes-models/istio/networking.istio.io/v1beta1";
import * as securityV1 from "@kubernetes-models/istio/security.istio.io/v1";
import * as telemetryV1 from "@kubernetes-models/istio/telemetry.istio.io/v1";

const ISTIO_MODELS = {
  "extensions.istio.io/v1alpha1": extensions,
  "networking.istio.io/v1": networkingV1,
  "networking.istio.io/v1beta1": networkingV1beta1,
  "security.istio.io/v1": securityV1,
  "telemetry.istio.io/v1": telemetryV1,
};

// Objects whose fields are the user's own (type: object, x-kubernetes-preserve-unknown-fields).
const FREE_FORM = {
  WasmPlugin: ["/spec/pluginConfig"],
};

function documents(file) {
  const out = [];
  for (const doc of parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

// Wraps `value` so that every key the validator reads (or enumerates) is recorded per JSON pointer.
function recorder() {
  const seen = new Map(); // pointer -> { value, read: Set, enumerated }
  const wrap = (value, pointer) => {
    if (value === null || typeof value !== "object") return value;
    let entry = seen.get(pointer);
    if (!entry) {
      entry = { value, read: new Set(), enumerated: false };
      seen.set(pointer, entry);
    }
    return new Proxy(value, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        if (typeof key !== "string") return v;
        entry.read.add(key);
        return Object.hasOwn(target, key) ? wrap(v, `${pointer}/${key}`) : v;
      },
      has(target, key) {
        if (typeof key === "string") entry.read.add(key);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        entry.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
  };
  return { wrap, seen };
}

// Keys of `doc` that its schema does not declare, as JSON pointers.
function unknownFields(doc, seen, freeForm) {
  const unknown = [];
  const walk = (value, pointer) => {
    if (value === null || typeof value !== "object") return;
    if (freeForm.some((p) => pointer === p || pointer.startsWith(`${p}/`))) return;
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, `${pointer}/${i}`));
      return;
    }
    const entry = seen.get(pointer);
    const keys = Object.keys(value);
    if (!entry || entry.enumerated) {
      // Not reached by the validator (inside an unknown field: reported there), or a map.
      if (entry) keys.forEach((k) => walk(value[k], `${pointer}/${k}`));
      return;
    }
    for (const k of keys) {
      if (entry.read.has(k)) walk(value[k], `${pointer}/${k}`);
      else unknown.push(`${pointer}/${k}`);
    }
  };
  walk(doc, "");
  return unknown;
}

function checkIstio(file, doc) {
  const kind = doc?.kind;
  const name = `${kind}/${doc?.metadata?.name ?? "?"}`;
  const group = String(doc?.apiVersion ?? "").split("/")[0];
  if (!group.endsWith(".istio.io")) return { line: `SKIP ${file} ${kind} (${doc?.apiVersion})` };
  const Model = ISTIO_MODELS[doc.apiVersion]?.[kind];
  if (!Model) return { error: `ERROR ${file} ${name}: no schema for ${doc.apiVersion} ${kind}` };
  const { wrap, seen } = recorder();
  const problems = [];
  try {
    // The model's validate() runs the compiled validator on `this`: give it the recording proxy.
    Model.prototype.validate.call(wrap(doc, ""));
  } catch (e) {
    problems.push(e.message);
  }
  // The validators collect all errors (ajv allErrors), so they have read every declared key either way.
  problems.push(...unknownFields(doc, seen, FREE_FORM[kind] ?? []).map((p) => `${p}: unknown field`));
  if (problems.length) return { error: `ERROR ${file} ${name}: ${problems.join(", ")}` };
  return { line: `OK ${file} ${name}` };
}

let composeValidator;
function checkCompose(file, doc) {
  if (!composeValidator) {
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve("dclint/package.json"));
    const text = fs.readFileSync(path.join(dir, "schemas", "compose.schema.json"), "utf8");
    // `$schema` is draft-07 spelled https://...draft-07/schema, a URI ajv does not
    // register; ajv's default Ajv class is draft-07 itself.
    const { $schema: _draft07, ...schema } = JSON.parse(text);
    composeValidator = new Ajv({ allErrors: true, strict: false }).compile(schema);
  }
  const name = `compose/${doc?.name ?? path.basename(file)}`;
  if (composeValidator(doc)) return { line: `OK ${file} ${name}` };
  const errs = composeValidator.errors.map((e) => {
    const extra = e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : "";
    return `${e.instancePath || "/"}: ${e.message}${extra}`;
  });
  return { error: `ERROR ${file} ${name}: ${errs.join(", ")}` };
}

function main(argv) {
  const [mode, ...files] = argv;
  const check = { istio: checkIstio, compose: checkCompose }[mode];
  if (!check || files.length === 0) {
    console.error("usage: node deploy/schema-check.mjs istio|compose FILE...");
    return 2;
  }
  let failed = false;
  for (const file of files) {
    let docs;
    try {
      docs = documents(file);
    } catch (e) {
      console.log(`ERROR ${file}: ${e.message}`);
      failed = true;
      continue;
    }
    for (const doc of docs) {
      const { line, error } = check(file, doc);
      console.log(error ?? line);
      failed ||= Boolean(error);
    }
  }
  return failed ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
