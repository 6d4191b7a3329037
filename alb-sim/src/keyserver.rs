//! The public key endpoint, served like `https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`:
//! `GET <prefix><kid>` -> 200 with the PEM SubjectPublicKeyInfo, 404 otherwise.

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

use crate::keys::{is_valid_kid, KeyDir};

/// Content type of a key response (the ALB's endpoint serves the PEM as a binary object).
pub const KEY_CONTENT_TYPE: &str = "application/octet-stream";

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
        }
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
        let (status, pem, kid) = self.answer(req.method(), req.uri().path());
        if !self.quiet {
            eprintln!(
                "alb-sim keys: {} {} kid={kid} -> {}",
                req.method(),
                truncate(req.uri().path(), 120),
                status.as_u16()
            );
        }
        let body = match &pem {
            Some(pem) => Bytes::from(pem.clone()),
            None => Bytes::from(format!(
                "{}\n",
                status.canonical_reason().unwrap_or("error")
            )),
        };
        let mut resp = Response::new(Full::new(body));
        *resp.status_mut() = status;
        let content_type = if pem.is_some() {
            KEY_CONTENT_TYPE
        } else {
            "text/plain; charset=utf-8"
        };
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if status == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        resp
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
