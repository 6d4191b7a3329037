//! The `alb-sim` binary: keys, mint, and `run` with a graceful SIGTERM exit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::Signature;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_alb-sim");
const SIGNER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/alb-sim/0123456789abcdef";

struct TempDir(PathBuf);
impl TempDir {
    fn new() -> Self {
        TempDir(std::env::temp_dir().join(format!("alb-sim-cli-{}", uuid::Uuid::new_v4())))
    }
    fn s(&self) -> &str {
        self.0.to_str().unwrap()
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn alb_sim(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "alb-sim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn keys_and_mint() {
    let dir = TempDir::new();
    let kids = stdout_lines(&alb_sim(&[
        "keys",
        "generate",
        "--dir",
        dir.s(),
        "--count",
        "3",
    ]));
    assert_eq!(kids.len(), 3);
    for kid in &kids {
        let uuid = uuid::Uuid::parse_str(kid).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
    }
    // --if-missing: nothing new.
    let again = alb_sim(&["keys", "generate", "--dir", dir.s(), "--if-missing"]);
    assert!(stdout_lines(&again).is_empty());

    let list = stdout_lines(&alb_sim(&["keys", "list", "--dir", dir.s()]));
    assert_eq!(list.len(), 3);
    assert!(list.contains(&format!("{} current", kids[2])));
    assert_eq!(
        stdout_lines(&alb_sim(&["keys", "current", "--dir", dir.s()])),
        [kids[2].clone()]
    );
    alb_sim(&["keys", "use", "--dir", dir.s(), &kids[0]]);
    assert_eq!(
        stdout_lines(&alb_sim(&["keys", "current", "--dir", dir.s()])),
        [kids[0].clone()]
    );
    let bad = Command::new(BIN)
        .args(["keys", "use", "--dir", dir.s(), "../etc"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    let pem = String::from_utf8(alb_sim(&["keys", "public", "--dir", dir.s()]).stdout).unwrap();
    let key = alb_oidc_testkit::keys::verifying_key_from_pem(&pem).unwrap();

    let tokens = stdout_lines(&alb_sim(&[
        "mint",
        "--dir",
        dir.s(),
        "--signer",
        SIGNER,
        "--user",
        "alice",
        "--claim",
        "email_verified=false",
        "--claim",
        "custom:level:=3",
        "--count",
        "20",
    ]));
    assert_eq!(tokens.len(), 20);
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), 20, "distinct");
    for token in &tokens {
        let segs: Vec<&str> = token.split('.').collect();
        assert_eq!(segs.len(), 3);
        let header: Value = serde_json::from_slice(&URL_SAFE.decode(segs[0]).unwrap()).unwrap();
        assert_eq!(header["kid"], json!(kids[0]));
        assert_eq!(header["signer"], json!(SIGNER));
        assert_eq!(header["iss"], json!("https://idp.alb-sim.local"));
        assert_eq!(header["client"], json!("alb-sim-client"));
        let payload: Value = serde_json::from_slice(&URL_SAFE.decode(segs[1]).unwrap()).unwrap();
        assert_eq!(payload["email_verified"], json!("false"));
        assert_eq!(payload["custom:level"], json!(3));
        assert_eq!(payload["custom:groups"], json!("admin,staff"));
        let sig = Signature::from_slice(&URL_SAFE.decode(segs[2]).unwrap()).unwrap();
        let input = &token[..token.rfind('.').unwrap()];
        key.verify(input.as_bytes(), &sig).unwrap();
    }

    // Claims from stdin, a fixed kid, an expired token, a nonce claim.
    let mut child = Command::new(BIN)
        .args([
            "mint",
            "--dir",
            dir.s(),
            "--signer",
            SIGNER,
            "--kid",
            &kids[1],
            "--claims-json",
            "-",
            "--exp-in",
            "-30",
            "--nonce-claim",
            "nonce",
            "--count",
            "2",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(br#"{"sub":"s-1","aud":"kept-if-given"}"#)
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let tokens = stdout_lines(&out);
    assert_eq!(tokens.len(), 2);
    let payloads: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let seg = t.split('.').nth(1).unwrap();
            serde_json::from_slice(&URL_SAFE.decode(seg).unwrap()).unwrap()
        })
        .collect();
    assert_ne!(payloads[0]["nonce"], payloads[1]["nonce"]);
    assert_eq!(payloads[0]["sub"], json!("s-1"));
    let header: Value = serde_json::from_slice(
        &URL_SAFE
            .decode(tokens[0].split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], json!(kids[1]));
    assert!(header["exp"].as_i64().unwrap() < alb_oidc_testkit::token::now_unix());

    // Duplicate claims are refused.
    let out = Command::new(BIN)
        .args([
            "mint",
            "--dir",
            dir.s(),
            "--signer",
            SIGNER,
            "--claims-json",
            "/dev/stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(br#"{"sub":"a","sub":"b"}"#)?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("duplicate"));
}

/// Reads stderr lines until the `run` banners show both addresses.
fn read_addresses(reader: &mut impl BufRead) -> (String, String) {
    let (mut keys, mut proxy) = (None, None);
    let mut line = String::new();
    while keys.is_none() || proxy.is_none() {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "run exited early");
        let addr = |marker: &str| {
            line.split(marker)
                .nth(1)
                .and_then(|rest| rest.split(['/', ' ']).next())
                .map(str::to_owned)
        };
        if line.contains("serving keys") {
            keys = addr(" at http://");
        } else if line.contains("proxy at") {
            proxy = addr("proxy at http://");
        }
    }
    (keys.unwrap(), proxy.unwrap())
}

fn http_get(addr: &str, path: &str, extra: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: demo.local\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    stream.read_to_string(&mut buf).unwrap();
    let status = buf.split(' ').nth(1).unwrap().parse().unwrap();
    let body = buf.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[test]
fn run_serves_keys_and_proxy_then_exits_on_sigterm() {
    let dir = TempDir::new();
    // Upstream: a thread that answers one request with the headers it received.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let upstream_thread = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = upstream.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            conn.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
            head.len()
        )
        .unwrap();
    });

    let mut child = Command::new(BIN)
        .args([
            "run",
            "--dir",
            dir.s(),
            "--keys-listen",
            "127.0.0.1:0",
            "--proxy-listen",
            "127.0.0.1:0",
            "--upstream",
            &format!("http://{upstream_addr}"),
            "--signer",
            SIGNER,
            "--path-prefix",
            "/keys",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (keys_addr, proxy_addr) = read_addresses(&mut stderr);

    // A key was generated (the directory was empty) and is served under the prefix.
    let kid = alb_sim::keys::KeyDir::new(&dir.0)
        .current()
        .unwrap()
        .unwrap();
    let (status, pem) = http_get(&keys_addr, &format!("/keys/{kid}"), "");
    assert_eq!(status, 200);
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(http_get(&keys_addr, &format!("/{kid}"), "").0, 404);

    let (status, echoed) = http_get(&proxy_addr, "/hello", "x-alb-sim-user: carol\r\n");
    assert_eq!(status, 200);
    upstream_thread.join().unwrap();
    let echoed = echoed.to_ascii_lowercase();
    assert!(echoed.starts_with("get /hello http/1.1"), "{echoed}");
    assert!(echoed.contains("x-amzn-oidc-data: "));
    assert!(echoed.contains("x-amzn-oidc-identity: e5b7c9d1-4a3f-4f8e-b6c2-8d1a7f3e9b03"));
    assert!(!echoed.contains("x-alb-sim-user"));

    // Graceful exit on SIGTERM, status 0.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("shutting down"), "{rest}");
}

/// `mint-batch` answers each request line in order, a bad line included,
/// and its tokens verify with the key `public_key` names.
#[test]
fn mint_batch_answers_every_line_in_order() {
    use std::io::Write;
    let requests = [
        r#"{"op":"public_key","key":"seed-1"}"#,
        r#"{"op":"mint","key":"seed-1","kid":"kid-1","claims":{"sub":"u1"},"pad":false}"#,
        r#"{"op":"mint","key":"seed-1"}"#,
        r#"{"op":"sign","key":"seed-1","text":"a.b"}"#,
        r#"{"op":"mint","key":"seed-1","kid":"kid-2","header":{"alg":"none"},"drop_payload":["iss"]}"#,
    ];
    let mut child = Command::new(BIN)
        .arg("mint-batch")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for r in requests {
        writeln!(stdin, "{r}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let answers: Vec<Value> = stdout_lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), requests.len(), "{answers:?}");
    let key = alb_oidc_testkit::keys::verifying_key_from_pem(answers[0]["pem"].as_str().unwrap())
        .unwrap();
    let verify = |signed: &str, sig_b64: &str| {
        let sig = Signature::from_slice(&URL_SAFE.decode(sig_b64).unwrap()).unwrap();
        key.verify(signed.as_bytes(), &sig).is_ok()
    };

    let token = answers[1]["token"].as_str().unwrap();
    assert!(!token.contains('='), "pad:false");
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE.encode(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap(),
    );
    assert!(verify(signed, &sig));
    let header: Value = serde_json::from_str(answers[1]["header"].as_str().unwrap()).unwrap();
    assert_eq!(header["kid"], "kid-1");
    assert_eq!(header["signer"], alb_oidc_testkit::fixtures::ARN);

    assert!(
        answers[2]["error"].as_str().unwrap().contains("kid"),
        "{}",
        answers[2]
    );
    assert!(verify("a.b", answers[3]["signature"].as_str().unwrap()));
    let payload: Value = serde_json::from_str(answers[4]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload.get("iss"), None, "{payload}");
    let header: Value = serde_json::from_str(answers[4]["header"].as_str().unwrap()).unwrap();
    assert_eq!(header["alg"], "none");
}

/// As a co-process: each answer arrives while the caller waits, before it
/// sends anything more (bounded wait, so a missing flush fails, not hangs).
#[test]
fn mint_batch_answers_while_the_caller_waits() {
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;
    let mut child = Command::new(BIN)
        .arg("mint-batch")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    for i in 0..3 {
        writeln!(stdin, r#"{{"op":"mint","key":"s","kid":"k{i}"}}"#).unwrap();
        stdin.flush().unwrap();
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert!(answer["token"].is_string(), "{answer}");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
}

#[test]
fn idp_keys_rotate() {
    let dir = TempDir::new();
    let first = stdout_lines(&alb_sim(&["idp-keys", "generate", "--dir", dir.s()]));
    assert_eq!(first.len(), 1);
    let second = stdout_lines(&alb_sim(&["idp-keys", "generate", "--dir", dir.s()]));
    let mut listed = stdout_lines(&alb_sim(&["idp-keys", "list", "--dir", dir.s()]));
    listed.sort();
    let mut want = vec![first[0].clone(), format!("{} current", second[0])];
    want.sort();
    assert_eq!(listed, want);
    let jwks: Value =
        serde_json::from_slice(&alb_sim(&["idp-keys", "jwks", "--dir", dir.s()]).stdout).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(jwks["keys"][0]["alg"], json!("RS256"));
    alb_sim(&["idp-keys", "remove", "--dir", dir.s(), &first[0]]);
    assert_eq!(
        stdout_lines(&alb_sim(&["idp-keys", "current", "--dir", dir.s()])),
        second
    );
    let refused = Command::new(BIN)
        .args(["idp-keys", "remove", "--dir", dir.s(), &second[0]])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "the current key was removed");
}
