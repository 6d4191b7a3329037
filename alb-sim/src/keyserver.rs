//! The public key endpoint, served like `https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`:
//! `GET <prefix><kid>` -> 200 with the PEM SubjectPublicKeyInfo, 404 otherwise.
//! With an IdP ([`KeyServer::with_jwks`]) it also serves the IdP's key set
//! at one path (`GET /idp/jwks.json` -> 200, JSON), as Cognito serves
//! `/<pool>/.well-known/jwks.json`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::idp::IdpKeyDir;
use crate::keys::{is_valid_kid, KeyDir};

/// Content type of a key response (the ALB's endpoint serves the PEM as a binary object).
pub const KEY_CONTENT_TYPE: &str = "application/octet-stream";
/// Content type of the key set.
pub const JWKS_CONTENT_TYPE: &str = "application/json";

/// Normalizes a path prefix to start and end with `/` (`""` -> `/`).
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        format!("/{trimmed}/")
    }
}

/// The key endpoint.
#[derive(Debug, Clone)]
pub struct KeyServer {
    keys: KeyDir,
    prefix: String,
    quiet: bool,
    jwks: Option<(String, IdpKeyDir)>,
}

impl KeyServer {
    /// Serves the keys of `keys` under `prefix` (`/` for commercial regions,
    /// `/aws-elb-public-keys-prod-us-gov-west-1/` to mimic GovCloud's S3 path).
    /// With `quiet`, requests are not logged.
    pub fn new(keys: KeyDir, prefix: &str, quiet: bool) -> Self {
        KeyServer {
            keys,
            prefix: normalize_prefix(prefix),
            quiet,
            jwks: None,
        }
    }

    /// Also serves the key set of `idp` at exactly `path` (which takes
    /// precedence over a kid of the same spelling: kids have no `/` or `.`).
    pub fn with_jwks(mut self, idp: IdpKeyDir, path: &str) -> Self {
        self.jwks = Some((path.to_owned(), idp));
        self
    }

    /// The key set's path, when there is an IdP.
    pub fn jwks_path(&self) -> Option<&str> {
        self.jwks.as_ref().map(|(path, _)| path.as_str())
    }

    /// The key set answer for `path`, or `None` when `path` is not the key
    /// set's: status and, for 200, the JSON document.
    pub fn answer_jwks(&self, method: &Method, path: &str) -> Option<(StatusCode, Option<String>)> {
        let (jwks_path, idp) = self.jwks.as_ref()?;
        if path != jwks_path {
            return None;
        }
        if method != Method::GET && method != Method::HEAD {
            return Some((StatusCode::METHOD_NOT_ALLOWED, None));
        }
        Some(match idp.jwks() {
            Ok(doc) => (StatusCode::OK, Some(doc)),
            Err(e) => {
                eprintln!("alb-sim keys: reading the IdP keys: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            }
        })
    }

    /// The normalized path prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Answers one request: status and, for 200, the PEM.
    /// The kid is the whole rest of the path after the prefix; it must match
    /// `[A-Za-z0-9_-]{1,64}` or the answer is 404 (no file-system access).
    pub fn answer(&self, method: &Method, path: &str) -> (StatusCode, Option<String>, String) {
        let kid = path.strip_prefix(self.prefix.as_str()).unwrap_or("");
        let shown_kid = if is_valid_kid(kid) {
            kid.to_owned()
        } else {
            format!("{:?}", truncate(path, 80))
        };
        if method != Method::GET && method != Method::HEAD {
            return (StatusCode::METHOD_NOT_ALLOWED, None, shown_kid);
        }
        if !is_valid_kid(kid) {
            return (StatusCode::NOT_FOUND, None, shown_kid);
        }
        match self.keys.public_pem(kid) {
            Ok(Some(pem)) => (StatusCode::OK, Some(pem), shown_kid),
            Ok(None) => (StatusCode::NOT_FOUND, None, shown_kid),
            Err(e) => {
                eprintln!("alb-sim keys: reading key {kid}: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, None, shown_kid)
            }
        }
    }

    fn handle(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some((status, doc)) = self.answer_jwks(req.method(), req.uri().path()) {
            if !self.quiet {
                eprintln!(
                    "alb-sim keys: {} {} -> {}",
                    req.method(),
                    req.uri().path(),
                    status.as_u16()
                );
            }
            return respond(status, doc, JWKS_CONTENT_TYPE);
        }
        let (status, pem, kid) = self.answer(req.method(), req.uri().path());
        if !self.quiet {
            eprintln!(
                "alb-sim keys: {} {} kid={kid} -> {}",
                req.method(),
                truncate(req.uri().path(), 120),
                status.as_u16()
            );
        }
        respond(status, pem, KEY_CONTENT_TYPE)
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let server = Arc::new(self);
        crate::server::serve(
            listener,
            move |_peer| {
                let server = Arc::clone(&server);
                service_fn(move |req: Request<Incoming>| {
                    let resp = server.handle(&req);
                    async move { Ok::<_, Infallible>(resp) }
                })
            },
            shutdown,
            "keys",
        )
        .await;
    }
}

/// `body` as `content_type`, or for no body the status's reason as text.
fn respond(
    status: StatusCode,
    body: Option<String>,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let (body, content_type) = match body {
        Some(body) => (Bytes::from(body), content_type),
        None => (
            Bytes::from(format!(
                "{}\n",
                status.canonical_reason().unwrap_or("error")
            )),
            "text/plain; charset=utf-8",
        ),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    resp
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix(""), "/");
        assert_eq!(normalize_prefix("/"), "/");
        assert_eq!(
            normalize_prefix("aws-elb-public-keys-prod-us-gov-west-1"),
            "/aws-elb-public-keys-prod-us-gov-west-1/"
        );
        assert_eq!(normalize_prefix("/a/b/"), "/a/b/");
    }
}
