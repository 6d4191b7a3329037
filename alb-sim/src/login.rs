//! What the ALB does for a browser that has no session: the identity
//! provider's sign-in page, then a session cookie (`AWSELBAuthSessionCookie-0`)
//! that stands for the signed-in user on every later request, until logout.
//!
//! Here the "identity provider" is a page listing the configured identities.
//! The cookie holds only a random session id (256 bits from the OS); the
//! identity it stands for stays in this process, so a cookie cannot be forged
//! into another user and dies with the stand-in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cookie::{Cookie, SameSite};
use http_body_util::{BodyExt, Full};
use hyper::header::{
    HeaderMap, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE,
    HOST, LOCATION, ORIGIN, SET_COOKIE, X_FRAME_OPTIONS,
};
use hyper::{Method, Response, StatusCode};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::identities::Identities;
use crate::proxy::ProxyBody;

/// The ALB's session cookie (the ALB shards a large session into -0, -1, ...; one is enough here).
pub const SESSION_COOKIE: &str = "AWSELBAuthSessionCookie-0";
/// The sign-in page (GET) and the form it posts (POST): served by the stand-in, never forwarded.
pub const SIGN_IN_PATH: &str = "/oauth2/sign_in";
/// Ends the session (expires the cookie) and goes back to the sign-in page: never forwarded.
pub const LOGOUT_PATH: &str = "/logout";
/// The ALB's default session timeout (`SessionTimeout` 604800 s).
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Sessions kept at most; the oldest goes when a new one would exceed it.
pub const MAX_SESSIONS: usize = 10_000;
/// Largest sign-in form accepted.
const MAX_FORM_BYTES: usize = 8 * 1024;

#[derive(Debug)]
struct Session {
    user: String,
    created: Instant,
}

/// Signed-in sessions: random id -> identity name.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `user`; returns its id (64 hex digits).
    pub fn create(&self, user: &str) -> Result<String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)
            .map_err(|e| Error::Invalid(format!("no randomness for a session id: {e}")))?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut by_id = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        by_id.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        if by_id.len() >= MAX_SESSIONS {
            let oldest = by_id
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                by_id.remove(&oldest);
            }
        }
        by_id.insert(
            id.clone(),
            Session {
                user: user.to_owned(),
                created: Instant::now(),
            },
        );
        Ok(id)
    }

    /// The identity of a live session.
    pub fn user(&self, id: &str) -> Option<String> {
        let mut by_id = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        match by_id.get(id) {
            Some(s) if s.created.elapsed() < SESSION_TTL => Some(s.user.clone()),
            Some(_) => {
                by_id.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends a session; returns whose it was.
    pub fn remove(&self, id: &str) -> Option<String> {
        let mut by_id = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        by_id.remove(id).map(|s| s.user)
    }
}

/// The session id the browser sent, if any (the first `AWSELBAuthSessionCookie-0`).
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()))
        .filter_map(std::result::Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

/// Removes the session cookie from the request: the upstream never holds a
/// credential of the stand-in. Other cookies are forwarded as they came.
pub fn strip_session_cookie(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            pair.split_once('=').map_or(*pair, |(name, _)| name.trim()) != SESSION_COOKIE
        })
        .map(str::to_owned)
        .collect();
    headers.remove(COOKIE);
    if kept.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
        headers.insert(COOKIE, value);
    }
}

/// A browser navigating: a GET or HEAD that accepts `text/html`. Only such a
/// request without a session is sent to the sign-in page; anything else
/// (curl, API calls) keeps the stand-in's default identity.
pub fn is_browser_navigation(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                t.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/html"))
            })
}

/// `target` if it is a path on this site, else `/` (no open redirect).
pub fn local_target(target: &str) -> &str {
    let local = target.starts_with('/')
        && !target.starts_with("//")
        && !target.starts_with("/\\")
        && !target.chars().any(char::is_control);
    if local {
        target
    } else {
        "/"
    }
}

/// 302 to the sign-in page, remembering where the browser wanted to go.
pub fn redirect_to_sign_in(path_and_query: &str, expire_cookie: bool) -> Response<ProxyBody> {
    let back: String =
        form_urlencoded::byte_serialize(local_target(path_and_query).as_bytes()).collect();
    let mut resp = redirect(&format!("{SIGN_IN_PATH}?redirect={back}"));
    if expire_cookie {
        set_cookie(&mut resp, expired_cookie());
    }
    resp
}

/// The sign-in page: one button per identity.
pub fn sign_in_page(identities: &Identities, query: Option<&str>) -> Response<ProxyBody> {
    let redirect = query
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "redirect")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_else(|| "/".to_owned());
    let mut buttons = String::new();
    for name in identities.names() {
        let details: Vec<String> = identities
            .get(name)
            .map(|claims| {
                let text = |k: &str| match claims.get(k) {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                };
                let full_name = text("name").or_else(|| {
                    let parts: Vec<String> = ["given_name", "family_name"]
                        .iter()
                        .filter_map(|k| text(k))
                        .collect();
                    (!parts.is_empty()).then(|| parts.join(" "))
                });
                [full_name, text("email"), text("custom:groups")]
                    .into_iter()
                    .flatten()
                    .collect()
            })
            .unwrap_or_default();
        buttons.push_str(&format!(
            "<button type=\"submit\" name=\"user\" value=\"{v}\" id=\"sign-in-{v}\"><strong>{n}</strong><span>{d}</span></button>\n",
            v = html_escape::encode_double_quoted_attribute(name),
            n = html_escape::encode_text(name),
            d = html_escape::encode_text(&details.join(" · ")),
        ));
    }
    let body = format!(
        include_str!("sign_in.html"),
        action = SIGN_IN_PATH,
        redirect = html_escape::encode_double_quoted_attribute(local_target(&redirect)),
        buttons = buttons,
    );
    let mut resp = html(StatusCode::OK, body);
    let h = resp.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// A submitted sign-in form: (identity name, where to go next).
#[derive(Debug, PartialEq, Eq)]
pub struct SignIn {
    /// The identity picked.
    pub user: String,
    /// A local path to continue to.
    pub redirect: String,
}

/// Reads and checks the sign-in form. Refuses a cross-site post (an `Origin`
/// that is not this host), an unknown identity and a form without one.
pub async fn read_sign_in(
    headers: &HeaderMap,
    body: hyper::body::Incoming,
    identities: &Identities,
) -> std::result::Result<SignIn, (StatusCode, String)> {
    if let Some(origin) = headers.get(ORIGIN) {
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let same = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host));
        if !same {
            return Err((
                StatusCode::FORBIDDEN,
                "alb-sim: cross-site sign-in refused\n".into(),
            ));
        }
    }
    let bytes = http_body_util::Limited::new(body, MAX_FORM_BYTES)
        .collect()
        .await
        .map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("alb-sim: cannot read the sign-in form: {e}\n"),
            )
        })?
        .to_bytes();
    let mut user = None;
    let mut redirect = "/".to_owned();
    for (k, v) in form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            "user" => user = Some(v.into_owned()),
            "redirect" => redirect = local_target(&v).to_owned(),
            _ => {}
        }
    }
    let user = user.ok_or((
        StatusCode::BAD_REQUEST,
        "alb-sim: the sign-in form names no identity\n".into(),
    ))?;
    if identities.get(&user).is_none() {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("alb-sim: unknown identity {user:?}\n"),
        ));
    }
    Ok(SignIn { user, redirect })
}

/// 302 to `target` with the new session's cookie.
pub fn signed_in(target: &str, session: &str) -> Response<ProxyBody> {
    let mut resp = redirect(target);
    set_cookie(&mut resp, session_cookie(session));
    resp
}

/// 401 for a non-navigation request whose session cookie names no live
/// session (signed out, expired, or the stand-in restarted): never the default identity.
pub fn session_ended() -> Response<ProxyBody> {
    let mut resp = respond(
        StatusCode::UNAUTHORIZED,
        "text/plain; charset=utf-8",
        "alb-sim: session ended; sign in again\n",
    );
    set_cookie(&mut resp, expired_cookie());
    resp
}

/// The logout answer: the cookie expired, back to the sign-in page.
pub fn signed_out() -> Response<ProxyBody> {
    let mut resp = redirect(SIGN_IN_PATH);
    set_cookie(&mut resp, expired_cookie());
    resp
}

fn session_cookie(id: &str) -> Cookie<'static> {
    // No `Secure`: the stand-in speaks plain HTTP on 127.0.0.1 (the ALB's cookie is Secure over HTTPS).
    Cookie::build((SESSION_COOKIE, id.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .build()
}

fn expired_cookie() -> Cookie<'static> {
    let mut c = session_cookie("");
    c.make_removal();
    c
}

fn set_cookie(resp: &mut Response<ProxyBody>, cookie: Cookie<'static>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(SET_COOKIE, value);
    }
}

fn redirect(location: &str) -> Response<ProxyBody> {
    let mut resp = html(StatusCode::FOUND, String::new());
    if let Ok(value) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, value);
    }
    resp
}

fn html(status: StatusCode, body: String) -> Response<ProxyBody> {
    respond(status, "text/html; charset=utf-8", body)
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ProxyBody> {
    let body = Full::new(body.into())
        .map_err(|never| match never {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn sessions_are_random_and_end() {
        let s = Sessions::default();
        let a = s.create("alice").unwrap();
        let b = s.create("alice").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(s.user(&a).as_deref(), Some("alice"));
        assert_eq!(s.remove(&a).as_deref(), Some("alice"));
        assert_eq!(s.user(&a), None);
        assert_eq!(s.user("not-a-session"), None);
        assert_eq!(s.user(&b).as_deref(), Some("alice"));
    }

    #[test]
    fn session_cookie_is_read_and_stripped() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("theme=dark; AWSELBAuthSessionCookie-0=abc"),
        );
        h.append(COOKIE, HeaderValue::from_static("lang=en"));
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
        strip_session_cookie(&mut h);
        assert_eq!(h.get_all(COOKIE).iter().count(), 1);
        assert_eq!(h.get(COOKIE).unwrap(), "theme=dark; lang=en");
        let mut only = HeaderMap::new();
        only.insert(
            COOKIE,
            HeaderValue::from_static("AWSELBAuthSessionCookie-0=abc"),
        );
        strip_session_cookie(&mut only);
        assert!(only.get(COOKIE).is_none());
    }

    #[test]
    fn only_browser_navigations_are_sent_to_sign_in() {
        let mut h = HeaderMap::new();
        assert!(!is_browser_navigation(&Method::GET, &h)); // curl: */* or nothing
        h.insert(ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!is_browser_navigation(&Method::GET, &h));
        h.insert(
            ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        );
        assert!(is_browser_navigation(&Method::GET, &h));
        assert!(!is_browser_navigation(&Method::POST, &h));
        h.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, TEXT/HTML;q=0.1"),
        );
        assert!(is_browser_navigation(&Method::HEAD, &h));
    }

    #[test]
    fn redirects_stay_on_this_site() {
        assert_eq!(local_target("/whoami?x=1"), "/whoami?x=1");
        assert_eq!(local_target("//evil.example/"), "/");
        assert_eq!(local_target("/\\evil.example/"), "/");
        assert_eq!(local_target("https://evil.example/"), "/");
        assert_eq!(local_target("/a\nb"), "/");
        assert_eq!(local_target(""), "/");
    }

    #[test]
    fn cookies_have_the_promised_attributes() {
        let set = session_cookie("abc").to_string();
        assert_eq!(
            set,
            "AWSELBAuthSessionCookie-0=abc; HttpOnly; SameSite=Lax; Path=/"
        );
        let gone = expired_cookie().to_string();
        assert!(
            gone.starts_with(
                "AWSELBAuthSessionCookie-0=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"
            ),
            "{gone}"
        );
    }
}
