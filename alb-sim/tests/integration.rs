//! End-to-end tests over real sockets on 127.0.0.1 (ephemeral ports).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use alb_oidc_testkit::idp::{IdpKey, RsaFixture};
use alb_oidc_testkit::keys::verifying_key_from_pem;
use alb_oidc_testkit::token::{mint, now_unix, Claims, HeaderFields};
use alb_sim::identities::Identities;
use alb_sim::idp::{IdpKeyDir, DEFAULT_JWKS_PATH};
use alb_sim::keys::KeyDir;
use alb_sim::keyserver::KeyServer;
use alb_sim::proxy::{Proxy, ProxyConfig};

const SIGNER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/alb-sim/0123456789abcdef";
const ISSUER: &str = "https://idp.example.com";
const CLIENT: &str = "client-123";

struct TempDir(PathBuf);
impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("alb-sim-test-{}", uuid::Uuid::new_v4()));
        TempDir(path)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server running in the background; stopped on drop.
struct Running {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start_key_server(dir: &std::path::Path, prefix: &str) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let server =
        KeyServer::new(KeyDir::new(dir), prefix, true).with_jwks(idp_keys(dir), DEFAULT_JWKS_PATH);
    tokio::spawn(server.serve(listener, async {
        let _ = rx.await;
    }));
    Running { addr, _stop: tx }
}

/// The IdP key directory of `dir`, holding fixed key A (generating RSA keys
/// takes seconds in test builds) unless it holds keys already.
fn idp_keys(dir: &std::path::Path) -> IdpKeyDir {
    let idp = IdpKeyDir::new(dir.join("idp"));
    if idp.list().unwrap().is_empty() {
        idp.add(&IdpKey::rsa(RsaFixture::A, "idp-a").unwrap())
            .unwrap();
    }
    idp
}

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request_head` (without the final blank line) plus `body` with
/// `Connection: close` and reads the whole response. The request target is sent
/// byte for byte, so path tricks reach the server unchanged.
async fn raw_request(addr: SocketAddr, request_head: &str, body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{request_head}\r\nConnection: close\r\n");
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of response head");
    let head = String::from_utf8(buf[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    RawResponse {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> RawResponse {
    raw_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: keys.test"),
        b"",
    )
    .await
}

fn decode_segment(seg: &str) -> Vec<u8> {
    // The strict engine: padding required and canonical.
    let bytes = URL_SAFE.decode(seg).unwrap();
    assert_eq!(URL_SAFE.encode(&bytes), seg, "canonical padded base64url");
    bytes
}

/// Checks the ALB format and returns (header, payload) JSON text.
fn check_format(token: &str) -> (String, String, Signature) {
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3, "three segments");
    for seg in &segments {
        assert!(!seg.is_empty());
        assert_eq!(seg.len() % 4, 0, "padded to a multiple of 4: {seg}");
        assert!(seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'='));
        let body = seg.trim_end_matches('=');
        assert!(!body.contains('='), "padding only at the end");
    }
    assert!(segments[2].ends_with("=="), "64-byte signature is padded");
    let header = String::from_utf8(decode_segment(segments[0])).unwrap();
    let payload = String::from_utf8(decode_segment(segments[1])).unwrap();
    let sig = decode_segment(segments[2]);
    assert_eq!(sig.len(), 64, "raw r || s");
    (header, payload, Signature::from_slice(&sig).unwrap())
}

fn signing_input(token: &str) -> &str {
    &token[..token.rfind('.').unwrap()]
}

#[tokio::test]
async fn minted_token_has_alb_format_and_verifies_with_served_key() {
    let tmp = TempDir::new();
    let keys = KeyDir::new(&tmp.0);
    let kids = keys.generate(2).unwrap();
    let pair = keys.signing_key(None).unwrap();
    assert_eq!(pair.kid, kids[1]);
    let identities = Identities::builtin().unwrap();
    let claims = identities.get("alice").unwrap();
    let exp = now_unix() + 120;
    let header = HeaderFields {
        kid: pair.kid.clone(),
        signer: SIGNER.into(),
        issuer: ISSUER.into(),
        client: CLIENT.into(),
        exp,
    };
    let token = mint(claims, &header, &pair.key).unwrap();
    let (header_json, payload_json, sig) = check_format(&token);

    assert_eq!(
        header_json,
        format!(
            r#"{{"typ":"JWT","kid":"{}","alg":"ES256","iss":"{ISSUER}","client":"{CLIENT}","signer":"{SIGNER}","exp":{exp}}}"#,
            pair.kid
        )
    );
    let payload: Value = serde_json::from_str(&payload_json).unwrap();
    let obj = payload.as_object().unwrap();
    assert_eq!(obj["exp"], json!(exp));
    assert_eq!(obj["iss"], json!(ISSUER));
    assert_eq!(obj["email_verified"], json!("true"));
    assert_eq!(obj["custom:groups"], json!("admin,staff"));
    assert!(!obj.contains_key("aud") && !obj.contains_key("iat"));
    // Claims first, in order, then exp and iss.
    assert!(payload_json.starts_with(r#"{"sub":""#));
    assert!(payload_json.ends_with(&format!(r#","exp":{exp},"iss":"{ISSUER}"}}"#)));

    let server = start_key_server(&tmp.0, "/").await;
    let resp = get(server.addr, &format!("/{}", pair.kid)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("application/octet-stream")
    );
    let pem = String::from_utf8(resp.body).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(pem.trim_end().ends_with("-----END PUBLIC KEY-----"));
    let served: VerifyingKey = verifying_key_from_pem(&pem).unwrap();
    // Signed over the padded header.payload text exactly as sent.
    served
        .verify(signing_input(&token).as_bytes(), &sig)
        .unwrap();
    // ... and not over the unpadded text.
    let unpadded: Vec<&str> = token.split('.').map(|s| s.trim_end_matches('=')).collect();
    assert!(served
        .verify(format!("{}.{}", unpadded[0], unpadded[1]).as_bytes(), &sig)
        .is_err());

    // The other (rotated-out) key is served too, and does not verify this token.
    let resp = get(server.addr, &format!("/{}", kids[0])).await;
    assert_eq!(resp.status, 200);
    let other = verifying_key_from_pem(std::str::from_utf8(&resp.body).unwrap()).unwrap();
    assert!(other
        .verify(signing_input(&token).as_bytes(), &sig)
        .is_err());

    // Randomized signatures: same header and payload, different token.
    let again = mint(claims, &header, &pair.key).unwrap();
    assert_ne!(again, token);
    assert_eq!(signing_input(&again), signing_input(&token));
}

#[tokio::test]
async fn key_server_refuses_unknown_and_path_trick_kids() {
    let tmp = TempDir::new();
    let keys = KeyDir::new(&tmp.0);
    let kid = keys.generate(1).unwrap().remove(0);
    let server = start_key_server(&tmp.0, "/").await;

    let unknown = uuid::Uuid::new_v4();
    let long = "a".repeat(65);
    let tricks = [
        format!("/{unknown}"),
        "/".to_owned(),
        "/current".to_owned(),
        format!("/{kid}.pem"),
        format!("/{kid}/"),
        format!("/{kid}/x"),
        format!("//{kid}"),
        format!("/../{kid}"),
        format!("/./{kid}"),
        format!("/x/../{kid}"),
        format!("/{kid}%2F"),
        format!("/%2E%2E%2F{kid}"),
        format!("/{kid}%00"),
        format!("/{long}"),
        "/..%2Fcurrent".to_owned(),
    ];
    for path in &tricks {
        let resp = get(server.addr, path).await;
        assert_eq!(resp.status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&resp.body).contains("BEGIN"));
    }
    // A query string does not change the kid.
    assert_eq!(get(server.addr, &format!("/{kid}?x=1")).await.status, 200);
    let post = raw_request(
        server.addr,
        &format!("POST /{kid} HTTP/1.1\r\nHost: keys.test"),
        b"x",
    )
    .await;
    assert_eq!(post.status, 405);

    // GovCloud-style prefix: only <prefix><kid> is served.
    let prefix = "/aws-elb-public-keys-prod-us-gov-west-1/";
    let gov = start_key_server(&tmp.0, prefix).await;
    assert_eq!(get(gov.addr, &format!("{prefix}{kid}")).await.status, 200);
    assert_eq!(get(gov.addr, &format!("/{kid}")).await.status, 404);
    assert_eq!(
        get(
            gov.addr,
            &format!("/aws-elb-public-keys-prod-us-gov-east-1/{kid}")
        )
        .await
        .status,
        404
    );
}

/// An upstream that answers with a JSON description of the request it got.
async fn start_echo() -> (Running, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel::<()>();
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        tokio::pin!(rx);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted.unwrap(),
                _ = &mut rx => break,
            };
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let method = req.method().to_string();
                        let uri = req.uri().to_string();
                        let headers: Vec<(String, String)> = req
                            .headers()
                            .iter()
                            .map(|(n, v)| {
                                (
                                    n.to_string(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let doc = json!({
                            "method": method,
                            "uri": uri,
                            "headers": headers,
                            "body": String::from_utf8_lossy(&body),
                        });
                        let mut resp = Response::new(Full::new(Bytes::from(doc.to_string())));
                        resp.headers_mut()
                            .insert("x-echo", hyper::header::HeaderValue::from_static("1"));
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (Running { addr, _stop: tx }, hits)
}

async fn start_proxy(dir: &std::path::Path, upstream: SocketAddr, default_user: &str) -> Running {
    let proxy = Proxy::new(ProxyConfig {
        keys: KeyDir::new(dir),
        kid: None,
        upstream: format!("http://{upstream}"),
        signer: SIGNER.into(),
        issuer: ISSUER.into(),
        client: CLIENT.into(),
        exp_in: 120,
        idp: idp_keys(dir),
        access_token_exp_in: 3600,
        identities: Identities::builtin().unwrap(),
        default_user: default_user.into(),
        quiet: true,
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(proxy.serve(listener, async {
        let _ = rx.await;
    }));
    Running { addr, _stop: tx }
}

struct Echoed {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Echoed {
    fn from(resp: &RawResponse) -> Self {
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
        let doc: Value = serde_json::from_slice(&resp.body).unwrap();
        Echoed {
            method: doc["method"].as_str().unwrap().to_owned(),
            uri: doc["uri"].as_str().unwrap().to_owned(),
            headers: serde_json::from_value(doc["headers"].clone()).unwrap(),
            body: doc["body"].as_str().unwrap().to_owned(),
        }
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn one(&self, name: &str) -> &str {
        let all = self.all(name);
        assert_eq!(all.len(), 1, "{name}: {all:?}");
        all[0]
    }
    fn oidc_headers(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.starts_with("x-amzn-oidc-"))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Verifies the forwarded token with the key served over HTTP and returns its payload.
async fn verify_forwarded(keys: SocketAddr, token: &str) -> Value {
    let (header_json, payload_json, sig) = check_format(token);
    let header: Value = serde_json::from_str(&header_json).unwrap();
    assert_eq!(header["signer"], json!(SIGNER));
    assert_eq!(header["client"], json!(CLIENT));
    assert_eq!(header["alg"], json!("ES256"));
    let kid = header["kid"].as_str().unwrap();
    let resp = get(keys, &format!("/{kid}")).await;
    assert_eq!(resp.status, 200);
    let key = verifying_key_from_pem(std::str::from_utf8(&resp.body).unwrap()).unwrap();
    key.verify(signing_input(token).as_bytes(), &sig).unwrap();
    let payload: Value = serde_json::from_str(&payload_json).unwrap();
    assert_eq!(payload["exp"], header["exp"]);
    assert_eq!(payload["iss"], json!(ISSUER));
    let exp = payload["exp"].as_i64().unwrap();
    assert!(exp > now_unix(), "not expired");
    payload
}

/// Checks an access token the proxy forwarded against the key set served
/// at the JWKS path (PKCS#1 v1.5 signatures are deterministic: the
/// directory's key must give exactly this one) and returns its payload.
async fn verify_access_token(keys: SocketAddr, dir: &std::path::Path, token: &str) -> Value {
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3, "{token}");
    assert!(!token.contains('='), "IdPs do not pad: {token}");
    let decode = |s: &str| -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let header = decode(segments[0]);
    assert_eq!(header["alg"], json!("RS256"));
    let kid = header["kid"].as_str().unwrap();
    let served = get(keys, DEFAULT_JWKS_PATH).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    let jwks: Value = serde_json::from_slice(&served.body).unwrap();
    let key = IdpKeyDir::new(dir.join("idp")).load(kid).unwrap().unwrap();
    let mut jwk = key.jwk();
    jwk["alg"] = json!("RS256");
    assert!(jwks["keys"].as_array().unwrap().contains(&jwk), "{jwks}");
    let signed = token.rsplit_once('.').unwrap().0;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(key.sign("RS256", signed.as_bytes()).unwrap());
    assert_eq!(segments[2], sig);
    let payload = decode(segments[1]);
    assert!(payload["exp"].as_i64().unwrap() > now_unix() + 3000);
    payload
}

#[tokio::test]
async fn proxy_injects_strips_switches_and_forwards() {
    let tmp = TempDir::new();
    let keys = KeyDir::new(&tmp.0);
    keys.generate(1).unwrap();
    let key_server = start_key_server(&tmp.0, "/").await;
    let (echo, hits) = start_echo().await;
    let proxy = start_proxy(&tmp.0, echo.addr, "alice").await;
    let identities = Identities::builtin().unwrap();
    let sub = |name: &str| identities.get(name).unwrap().get("sub").unwrap().clone();

    // Default identity, with forged ALB headers from the client in mixed case.
    let resp = raw_request(
        proxy.addr,
        "POST /app/page?q=1&r=two HTTP/1.1\r\nHost: demo.local\r\n\
         X-Amzn-Oidc-Data: forged.token.here\r\nx-amzn-oidc-identity: admin\r\n\
         x-amzn-oidc-accesstoken: stolen\r\nx-amzn-oidc-extra: x\r\nX-Custom: kept",
        b"hello body",
    )
    .await;
    assert_eq!(resp.header("x-echo"), Some("1"));
    let echoed = Echoed::from(&resp);
    assert_eq!(echoed.method, "POST");
    assert_eq!(echoed.uri, "/app/page?q=1&r=two");
    assert_eq!(echoed.body, "hello body");
    assert_eq!(echoed.one("host"), "demo.local");
    assert_eq!(echoed.one("x-custom"), "kept");
    assert!(echoed.all("x-amzn-oidc-extra").is_empty());
    assert!(echoed.all("x-alb-sim-user").is_empty());
    let token = echoed.one("x-amzn-oidc-data").to_owned();
    assert_ne!(token, "forged.token.here");
    let payload = verify_forwarded(key_server.addr, &token).await;
    assert_eq!(payload["sub"], sub("alice"));
    assert_eq!(json!(echoed.one("x-amzn-oidc-identity")), sub("alice"));
    let access = echoed.one("x-amzn-oidc-accesstoken").to_owned();
    let access_payload = verify_access_token(key_server.addr, &tmp.0, &access).await;
    assert_eq!(access_payload["sub"], sub("alice"));
    assert_eq!(access_payload["cognito:groups"], json!(["admin"]));
    assert_eq!(access_payload["client_id"], json!(CLIENT));
    assert_eq!(access_payload["iss"], json!(ISSUER));
    assert_eq!(access_payload["token_use"], json!("access"));
    assert_eq!(echoed.one("x-forwarded-for"), "127.0.0.1");
    assert_eq!(echoed.one("x-forwarded-proto"), "http");

    // Switch identity per request; the selector header is not forwarded.
    let resp = raw_request(
        proxy.addr,
        "GET /whoami HTTP/1.1\r\nHost: demo.local\r\nx-alb-sim-user: bob",
        b"",
    )
    .await;
    let echoed = Echoed::from(&resp);
    assert!(echoed.all("x-alb-sim-user").is_empty());
    let payload = verify_forwarded(key_server.addr, echoed.one("x-amzn-oidc-data")).await;
    assert_eq!(payload["sub"], sub("bob"));
    assert_eq!(payload["email_verified"], json!("false"));
    assert_eq!(json!(echoed.one("x-amzn-oidc-identity")), sub("bob"));

    // A fresh data token per request; the access token of the login is kept.
    let resp2 = raw_request(
        proxy.addr,
        "GET /whoami HTTP/1.1\r\nHost: demo.local\r\nX-Alb-Sim-User: bob",
        b"",
    )
    .await;
    assert_ne!(
        Echoed::from(&resp2).one("x-amzn-oidc-data"),
        echoed.one("x-amzn-oidc-data")
    );
    let bob_access = echoed.one("x-amzn-oidc-accesstoken");
    assert_eq!(
        Echoed::from(&resp2).one("x-amzn-oidc-accesstoken"),
        bob_access
    );
    let bob_payload = verify_access_token(key_server.addr, &tmp.0, bob_access).await;
    assert_eq!(bob_payload["sub"], sub("bob"));
    assert_eq!(bob_payload["scope"], json!("openid orders:read"));
    assert_eq!(bob_payload.get("cognito:groups"), None);

    // Anonymous: no oidc headers at all, even forged ones.
    let resp = raw_request(
        proxy.addr,
        "GET / HTTP/1.1\r\nHost: demo.local\r\nx-alb-sim-user: anonymous\r\nx-amzn-oidc-data: forged",
        b"",
    )
    .await;
    let echoed = Echoed::from(&resp);
    assert!(
        echoed.oidc_headers().is_empty(),
        "{:?}",
        echoed.oidc_headers()
    );
    assert!(echoed.all("x-alb-sim-user").is_empty());

    // Unknown identity: 400, never forwarded.
    let before = hits.load(Ordering::SeqCst);
    let resp = raw_request(
        proxy.addr,
        "GET / HTTP/1.1\r\nHost: demo.local\r\nx-alb-sim-user: mallory",
        b"",
    )
    .await;
    assert_eq!(resp.status, 400);
    let body = String::from_utf8(resp.body).unwrap();
    assert!(body.contains("mallory") && body.contains("alice"), "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), before);

    // Key rotation: the running proxy signs with the new current key.
    let new_kid = keys.generate(1).unwrap().remove(0);
    let resp = raw_request(proxy.addr, "GET / HTTP/1.1\r\nHost: demo.local", b"").await;
    let token = Echoed::from(&resp).one("x-amzn-oidc-data").to_owned();
    let (header_json, _, _) = check_format(&token);
    let header: Value = serde_json::from_str(&header_json).unwrap();
    assert_eq!(header["kid"], json!(new_kid));
    verify_forwarded(key_server.addr, &token).await;

    // IdP key rotation: a new access token, signed with the new key, which
    // the key set serves next to the old one.
    let idp = IdpKeyDir::new(tmp.0.join("idp"));
    idp.add(&IdpKey::rsa(RsaFixture::B, "idp-b").unwrap())
        .unwrap();
    let resp = raw_request(proxy.addr, "GET / HTTP/1.1\r\nHost: demo.local", b"").await;
    let rotated = Echoed::from(&resp)
        .one("x-amzn-oidc-accesstoken")
        .to_owned();
    assert_ne!(rotated, access);
    verify_access_token(key_server.addr, &tmp.0, &rotated).await;
    let served = get(key_server.addr, DEFAULT_JWKS_PATH).await;
    let jwks: Value = serde_json::from_slice(&served.body).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["idp-a", "idp-b"]);
}

#[tokio::test]
async fn proxy_anonymous_default_and_upstream_down() {
    let tmp = TempDir::new();
    KeyDir::new(&tmp.0).generate(1).unwrap();
    let (echo, _) = start_echo().await;
    let proxy = start_proxy(&tmp.0, echo.addr, "anonymous").await;
    let resp = raw_request(proxy.addr, "GET / HTTP/1.1\r\nHost: demo.local", b"").await;
    assert!(Echoed::from(&resp).oidc_headers().is_empty());
    let resp = raw_request(
        proxy.addr,
        "GET / HTTP/1.1\r\nHost: demo.local\r\nx-alb-sim-user: carol",
        b"",
    )
    .await;
    assert_eq!(Echoed::from(&resp).oidc_headers().len(), 3);

    // Nothing listens on the upstream port any more: 502.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let proxy = start_proxy(&tmp.0, closed, "alice").await;
    let resp = raw_request(proxy.addr, "GET / HTTP/1.1\r\nHost: demo.local", b"").await;
    assert_eq!(resp.status, 502);
}

#[test]
fn proxy_config_errors() {
    let tmp = TempDir::new();
    let config = |default_user: &str, upstream: &str| ProxyConfig {
        keys: KeyDir::new(&tmp.0),
        kid: None,
        upstream: upstream.into(),
        signer: SIGNER.into(),
        issuer: ISSUER.into(),
        client: CLIENT.into(),
        exp_in: 120,
        idp: idp_keys(&tmp.0),
        access_token_exp_in: 3600,
        identities: Identities::builtin().unwrap(),
        default_user: default_user.into(),
        quiet: true,
    };
    // No keys yet.
    assert!(Proxy::new(config("alice", "http://127.0.0.1:1")).is_err());
    KeyDir::new(&tmp.0).generate(1).unwrap();
    assert!(Proxy::new(config("alice", "http://127.0.0.1:1")).is_ok());
    assert!(Proxy::new(config("nobody", "http://127.0.0.1:1")).is_err());
    assert!(Proxy::new(config("alice", "https://127.0.0.1:1")).is_err());
}

#[test]
fn claims_helpers_roundtrip() {
    let c = Claims::from_json(r#"{"sub":"x"}"#).unwrap();
    assert_eq!(c.len(), 1);
}
