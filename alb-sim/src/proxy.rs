//! A reverse proxy that does what the ALB does after login: for every request
//! it removes client-sent `x-amzn-oidc-*` headers, adds a freshly minted
//! `x-amzn-oidc-data` plus `x-amzn-oidc-identity` and `x-amzn-oidc-accesstoken`,
//! and forwards the request to the upstream (Envoy).
//!
//! The access token is the IdP's ([`crate::idp`]): RS256, bound to the
//! data token's `sub`, minted once per identity and forwarded unchanged for
//! half its lifetime, as the ALB forwards the token it received at login
//! (a new one after a key rotation, when the old key may be gone).
//!
//! Who a request is (see README.md, "Who a request is"):
//! 1. the `x-alb-sim-user` header, which only the stand-in reads and always
//!    removes (curl); `anonymous` forwards with no `x-amzn-oidc-*` headers (the
//!    ALB's `OnUnauthenticatedRequest=allow`);
//! 2. else the browser's session cookie (`AWSELBAuthSessionCookie-0`, see
//!    [`crate::login`]); a cookie of no live session is refused: a browser
//!    navigation goes to the sign-in page, anything else gets 401;
//! 3. else a browser navigation (GET/HEAD accepting text/html) goes to the
//!    sign-in page, as the ALB sends it to the identity provider;
//! 4. else the default identity (`--default-user`): plain curl works as is.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::identities::{Identities, ANONYMOUS};
use crate::idp::{mint_access_token, AccessTokenFields, IdpKeyDir};
use crate::keys::KeyDir;
use crate::login::{self, Sessions};
use alb_oidc_testkit::keys::KeyPair;
use alb_oidc_testkit::token::{mint, now_unix, Claims, HeaderFields};

/// The header that selects the identity of one request (read and removed by the proxy).
pub const USER_HEADER: &str = "x-alb-sim-user";
/// The signed claims header.
pub const DATA_HEADER: &str = "x-amzn-oidc-data";
/// The unsigned `sub` header.
pub const IDENTITY_HEADER: &str = "x-amzn-oidc-identity";
/// The unsigned access-token header.
pub const ACCESS_TOKEN_HEADER: &str = "x-amzn-oidc-accesstoken";
/// Every header with this prefix is removed from client requests.
pub const OIDC_HEADER_PREFIX: &str = "x-amzn-oidc-";

/// Body type of proxy responses.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Hop-by-hop headers (RFC 9110 section 7.6.1), never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Everything the proxy needs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where the signing keys are.
    pub keys: KeyDir,
    /// Sign with this kid; `None`: the directory's current key, re-read per
    /// request so `alb-sim keys use` rotates a running proxy.
    pub kid: Option<String>,
    /// `http://host:port` of the upstream (no path).
    pub upstream: String,
    /// Header `signer`: the ALB ARN.
    pub signer: String,
    /// Header and payload `iss`.
    pub issuer: String,
    /// Header `client`.
    pub client: String,
    /// Token lifetime in seconds (the ALB uses 120).
    pub exp_in: i64,
    /// The IdP's keys, which sign the access tokens.
    pub idp: IdpKeyDir,
    /// Access-token lifetime in seconds (Cognito's default is an hour).
    pub access_token_exp_in: i64,
    /// Identities selectable with `x-alb-sim-user`.
    pub identities: Identities,
    /// Identity when the request has no `x-alb-sim-user` header (may be `anonymous`).
    pub default_user: String,
    /// Do not log requests.
    pub quiet: bool,
}

/// The running proxy.
pub struct Proxy {
    config: ProxyConfig,
    upstream_scheme: hyper::http::uri::Scheme,
    upstream_authority: hyper::http::uri::Authority,
    client: Client<HttpConnector, Incoming>,
    key: Mutex<Option<KeyPair>>,
    access_tokens: Mutex<HashMap<String, AccessToken>>,
    sessions: Sessions,
}

/// An access token handed out for one identity.
#[derive(Debug, Clone)]
struct AccessToken {
    kid: String,
    token: String,
    exp: i64,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Parses `http://host:port[/]` (no other path, no TLS).
fn parse_upstream(
    upstream: &str,
) -> Result<(hyper::http::uri::Scheme, hyper::http::uri::Authority)> {
    let bad = |why: &str| Error::Invalid(format!("--upstream {upstream:?}: {why}"));
    let uri: Uri = upstream.parse().map_err(|e| bad(&format!("{e}")))?;
    let scheme = uri.scheme().cloned().ok_or_else(|| bad("needs http://"))?;
    if scheme != hyper::http::uri::Scheme::HTTP {
        return Err(bad("only http:// is supported"));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| bad("needs host:port"))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("must not have a path or query"));
    }
    Ok((scheme, authority))
}

impl Proxy {
    /// Checks the configuration (upstream URL, default user, signing key).
    pub fn new(config: ProxyConfig) -> Result<Self> {
        let (upstream_scheme, upstream_authority) = parse_upstream(&config.upstream)?;
        if config.default_user != ANONYMOUS && config.identities.get(&config.default_user).is_none()
        {
            return Err(Error::Invalid(format!(
                "default user {:?} is not in the identities ({})",
                config.default_user,
                config.identities.names().collect::<Vec<_>>().join(", ")
            )));
        }
        // Fail at start-up, not on the first request, when there is no usable key.
        let key = config.keys.signing_key(config.kid.as_deref())?;
        config.idp.signing_key()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Proxy {
            config,
            upstream_scheme,
            upstream_authority,
            client,
            key: Mutex::new(Some(key)),
            access_tokens: Mutex::new(HashMap::new()),
            sessions: Sessions::default(),
        })
    }

    /// The signing key for this request (see [`ProxyConfig::kid`]).
    fn signing_key(&self) -> Result<KeyPair> {
        let mut cached = self.key.lock().unwrap_or_else(|p| p.into_inner());
        let wanted = match &self.config.kid {
            Some(kid) => kid.clone(),
            None => self.config.keys.current()?.ok_or_else(|| {
                Error::Invalid(format!("no keys in {}", self.config.keys.path().display()))
            })?,
        };
        if let Some(pair) = cached.as_ref() {
            if pair.kid == wanted {
                return Ok(pair.clone());
            }
        }
        let pair = self.config.keys.signing_key(Some(&wanted))?;
        *cached = Some(pair.clone());
        Ok(pair)
    }

    /// Mints the token for `claims`, valid for `exp_in` seconds from now.
    fn mint_for(&self, claims: &Claims) -> Result<String> {
        let pair = self.signing_key()?;
        let header = HeaderFields {
            kid: pair.kid.clone(),
            signer: self.config.signer.clone(),
            issuer: self.config.issuer.clone(),
            client: self.config.client.clone(),
            exp: now_unix().saturating_add(self.config.exp_in),
        };
        Ok(mint(claims, &header, &pair.key)?)
    }

    /// The access token of `user`: the one handed out before while it has
    /// at least half its lifetime left and its key is still the IdP's
    /// current key, else a new one.
    fn access_token_for(&self, user: &str, claims: &Claims) -> Result<String> {
        let key = self.config.idp.signing_key()?;
        let mut tokens = self.access_tokens.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = tokens.get(user) {
            let left = held.exp.saturating_sub(now_unix());
            if held.kid == key.kid && left >= self.config.access_token_exp_in / 2 {
                return Ok(held.token.clone());
            }
        }
        let empty = Claims::new();
        let access = self.config.identities.access_claims(user).unwrap_or(&empty);
        let fields = AccessTokenFields {
            issuer: self.config.issuer.clone(),
            client_id: self.config.client.clone(),
            exp_in: self.config.access_token_exp_in,
        };
        let (token, exp) = mint_access_token(&key, claims, access, &fields)?;
        tokens.insert(
            user.to_owned(),
            AccessToken {
                kid: key.kid,
                token: token.clone(),
                exp,
            },
        );
        Ok(token)
    }

    /// Handles one request.
    pub async fn handle(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        local_port: u16,
    ) -> Response<ProxyBody> {
        let method = req.method().clone();
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());

        // 0. The stand-in's own login pages: never forwarded.
        match req.uri().path() {
            login::SIGN_IN_PATH => {
                let (user, resp) = self.sign_in(req).await;
                return self.log(peer, &user, &method, &path_and_query, resp);
            }
            login::LOGOUT_PATH => {
                let ended =
                    login::session_id(req.headers()).and_then(|id| self.sessions.remove(&id));
                let user = ended.unwrap_or_else(|| "-".to_owned());
                return self.log(peer, &user, &method, &path_and_query, login::signed_out());
            }
            _ => {}
        }

        // 1. Who (module docs): the selector header, the session, sign-in, the default.
        let named = match selected_user(req.headers()) {
            Ok(named) => named,
            Err(msg) => {
                return self.log(
                    peer,
                    "?",
                    &method,
                    &path_and_query,
                    text(StatusCode::BAD_REQUEST, msg),
                )
            }
        };
        let session = login::session_id(req.headers());
        let user = match (named, &session) {
            (Some(user), _) => user,
            (None, Some(id)) => match self.sessions.user(id) {
                Some(user) => user,
                None => {
                    let resp = if login::is_browser_navigation(&method, req.headers()) {
                        login::redirect_to_sign_in(&path_and_query, true)
                    } else {
                        login::session_ended()
                    };
                    return self.log(peer, "-", &method, &path_and_query, resp);
                }
            },
            (None, None) if login::is_browser_navigation(&method, req.headers()) => {
                let resp = login::redirect_to_sign_in(&path_and_query, false);
                return self.log(peer, "-", &method, &path_and_query, resp);
            }
            (None, None) => self.config.default_user.clone(),
        };
        req.headers_mut().remove(USER_HEADER);
        login::strip_session_cookie(req.headers_mut());

        // 2. Never forward client-sent ALB headers, nor hop-by-hop headers.
        strip_oidc_headers(req.headers_mut());
        strip_hop_by_hop(req.headers_mut());

        // 3. What the ALB adds for a logged-in user.
        if user != ANONYMOUS {
            let Some(claims) = self.config.identities.get(&user) else {
                let known: Vec<&str> = self.config.identities.names().chain([ANONYMOUS]).collect();
                let msg = format!(
                    "alb-sim: unknown identity {user:?} in {USER_HEADER} (known: {})\n",
                    known.join(", ")
                );
                return self.log(
                    peer,
                    &user,
                    &method,
                    &path_and_query,
                    text(StatusCode::BAD_REQUEST, msg),
                );
            };
            let tokens = self
                .mint_for(claims)
                .and_then(|data| Ok((data, self.access_token_for(&user, claims)?)));
            if let Err(e) = add_oidc_headers(req.headers_mut(), claims, tokens) {
                eprintln!("alb-sim proxy: cannot mint a token for {user}: {e}");
                let msg = format!("alb-sim: cannot mint a token for {user:?}: {e}\n");
                return self.log(
                    peer,
                    &user,
                    &method,
                    &path_and_query,
                    text(StatusCode::INTERNAL_SERVER_ERROR, msg),
                );
            }
        }

        // 4. The ALB's forwarding headers.
        add_forwarded_headers(req.headers_mut(), peer, local_port);

        // 5. Forward (origin-form path and query on the upstream; Host is kept).
        let uri = Uri::builder()
            .scheme(self.upstream_scheme.clone())
            .authority(self.upstream_authority.clone())
            .path_and_query(path_and_query.as_str())
            .build();
        match uri {
            Ok(uri) => *req.uri_mut() = uri,
            Err(e) => {
                let msg = format!("alb-sim: bad request target: {e}\n");
                return self.log(
                    peer,
                    &user,
                    &method,
                    &path_and_query,
                    text(StatusCode::BAD_REQUEST, msg),
                );
            }
        }
        let resp = match self.client.request(req).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Err(e) => {
                eprintln!("alb-sim proxy: upstream {}: {e:?}", self.config.upstream);
                let msg = format!("alb-sim: upstream {} failed: {e}\n", self.config.upstream);
                text(StatusCode::BAD_GATEWAY, msg)
            }
        };
        self.log(peer, &user, &method, &path_and_query, resp)
    }

    /// The sign-in page (GET) and its form (POST): returns who signed in (for the log) and the answer.
    async fn sign_in(&self, req: Request<Incoming>) -> (String, Response<ProxyBody>) {
        let identities = &self.config.identities;
        match *req.method() {
            hyper::Method::GET | hyper::Method::HEAD => (
                "-".to_owned(),
                login::sign_in_page(identities, req.uri().query()),
            ),
            hyper::Method::POST => {
                let (parts, body) = req.into_parts();
                let form = match login::read_sign_in(&parts.headers, body, identities).await {
                    Ok(form) => form,
                    Err((status, msg)) => return ("?".to_owned(), text(status, msg)),
                };
                // A new session on every sign-in; the one the browser had ends.
                if let Some(old) = login::session_id(&parts.headers) {
                    self.sessions.remove(&old);
                }
                match self.sessions.create(&form.user) {
                    Ok(id) => (form.user, login::signed_in(&form.redirect, &id)),
                    Err(e) => {
                        eprintln!("alb-sim proxy: cannot start a session: {e}");
                        let msg = format!("alb-sim: cannot start a session: {e}\n");
                        (form.user, text(StatusCode::INTERNAL_SERVER_ERROR, msg))
                    }
                }
            }
            _ => (
                "-".to_owned(),
                text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("alb-sim: {} takes GET or POST\n", login::SIGN_IN_PATH),
                ),
            ),
        }
    }

    fn log(
        &self,
        peer: SocketAddr,
        user: &str,
        method: &hyper::Method,
        path: &str,
        resp: Response<ProxyBody>,
    ) -> Response<ProxyBody> {
        if !self.config.quiet {
            let path: String = path.chars().take(200).collect();
            eprintln!(
                "alb-sim proxy: {peer} user={user} {method} {path} -> {}",
                resp.status().as_u16()
            );
        }
        resp
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let local_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let proxy = Arc::new(self);
        crate::server::serve(
            listener,
            move |peer| {
                let proxy = Arc::clone(&proxy);
                service_fn(move |req: Request<Incoming>| {
                    let proxy = Arc::clone(&proxy);
                    async move { Ok::<_, Infallible>(proxy.handle(req, peer, local_port).await) }
                })
            },
            shutdown,
            "proxy",
        )
        .await;
    }
}

/// The identity named by `x-alb-sim-user`, if the header is there. Several
/// values, an empty value or a non-text value are errors (the message is the 400 body).
fn selected_user(headers: &HeaderMap) -> std::result::Result<Option<String>, String> {
    let mut values = headers.get_all(USER_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(format!("alb-sim: more than one {USER_HEADER} header\n"));
    }
    match value.to_str().map(str::trim) {
        Ok(name) if !name.is_empty() => Ok(Some(name.to_owned())),
        _ => Err(format!(
            "alb-sim: {USER_HEADER} must be a non-empty identity name\n"
        )),
    }
}

/// Removes every `x-amzn-oidc-*` header (names are lower-case in `HeaderMap`).
pub fn strip_oidc_headers(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(OIDC_HEADER_PREFIX))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Removes hop-by-hop headers, including those named in `Connection`.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<String> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(listed.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// The ALB's three headers: `tokens` is the data token and the access token.
fn add_oidc_headers(
    headers: &mut HeaderMap,
    claims: &Claims,
    tokens: Result<(String, String)>,
) -> Result<()> {
    let (token, access) = tokens?;
    let header_value = |s: &str, what: &str| {
        HeaderValue::from_str(s)
            .map_err(|e| Error::Invalid(format!("{what} is not a valid header value: {e}")))
    };
    headers.insert(DATA_HEADER, header_value(&token, DATA_HEADER)?);
    let sub = match claims.get("sub") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    if let Some(sub) = sub {
        let value = HeaderValue::from_bytes(sub.as_bytes())
            .map_err(|e| Error::Invalid(format!("sub is not a valid header value: {e}")))?;
        headers.insert(IDENTITY_HEADER, value);
    }
    headers.insert(
        ACCESS_TOKEN_HEADER,
        header_value(&access, ACCESS_TOKEN_HEADER)?,
    );
    Ok(())
}

fn add_forwarded_headers(headers: &mut HeaderMap, peer: SocketAddr, local_port: u16) {
    let ip = peer.ip().to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.trim().is_empty() => format!("{existing}, {ip}"),
        _ => ip,
    };
    if let Ok(value) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", value);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    headers.insert("x-forwarded-port", HeaderValue::from(local_port));
}

fn text(status: StatusCode, msg: String) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(msg))
        .map_err(|never| match never {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn upstream_parsing() {
        assert!(parse_upstream("http://127.0.0.1:8080").is_ok());
        assert!(parse_upstream("http://127.0.0.1:8080/").is_ok());
        assert!(parse_upstream("https://127.0.0.1:8080").is_err());
        assert!(parse_upstream("127.0.0.1:8080").is_err());
        assert!(parse_upstream("http://127.0.0.1:8080/x").is_err());
    }

    #[test]
    fn strips_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-amzn-oidc-data", HeaderValue::from_static("forged"));
        h.insert("X-Amzn-Oidc-Whatever", HeaderValue::from_static("x"));
        h.insert("x-amzn-trace-id", HeaderValue::from_static("keep"));
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("hop"));
        strip_oidc_headers(&mut h);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-amzn-trace-id"));
    }

    #[test]
    fn user_selection() {
        let mut h = HeaderMap::new();
        assert_eq!(selected_user(&h).unwrap(), None);
        h.insert(USER_HEADER, HeaderValue::from_static(" bob "));
        assert_eq!(selected_user(&h).unwrap().as_deref(), Some("bob"));
        h.append(USER_HEADER, HeaderValue::from_static("carol"));
        assert!(selected_user(&h).is_err());
        h.insert(USER_HEADER, HeaderValue::from_static(""));
        assert!(selected_user(&h).is_err());
    }
}
