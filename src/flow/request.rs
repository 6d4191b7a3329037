//! Reading a request's head: the token, what route rules look at, the ALB's
//! headers, and the removal of every header whose name folds to one the
//! filter manages.

use super::host::RequestHeaders;
use crate::config::ALB_IDENTITY_HEADER;
use crate::header_map::{self, Value};

/// What route rules look at. Kept by a request that waits, so that it can
/// be routed again should the configuration change meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteInputs {
    pub method: String,
    pub authority: String,
    /// `:path` as received; `None` when not UTF-8 (or not asked for).
    pub path: Option<String>,
}

/// What the flow reads from the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    /// `Some(Err)` for a non-UTF-8 or repeated token.
    pub token: Option<Result<String, ()>>,
    /// The access token, read as the token is (when one is configured).
    pub access_token: Option<Result<String, ()>>,
    /// Empty unless asked for.
    pub route: RouteInputs,
    /// The ALB's headers present, named as sent (any case, `_` for `-`),
    /// with which each is: whether they go is decided once the flow knows
    /// if anyone verified the request.
    pub alb_headers: Vec<(Vec<u8>, AlbHeader)>,
    /// The incoming `x-amzn-oidc-identity` (the first, as sent).
    pub claimed_sub: Option<Vec<u8>>,
}

/// Which of the ALB's headers a header is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlbHeader {
    /// `x-amzn-oidc-identity`: replaced by the verified `sub`.
    Identity,
    /// The access token (`access_token.header`), when one is verified:
    /// put back by the verdict when it may go on.
    AccessToken,
    Other,
}

impl RequestView {
    /// Removes the ALB headers of the given kinds.
    pub fn remove_alb_headers(&self, headers: &mut dyn RequestHeaders, kinds: &[AlbHeader]) {
        for (name, kind) in &self.alb_headers {
            if kinds.contains(kind) {
                headers.remove(name);
            }
        }
    }
}

/// Every kind of ALB header.
pub const ALL_ALB_HEADERS: &[AlbHeader] = &[
    AlbHeader::Identity,
    AlbHeader::AccessToken,
    AlbHeader::Other,
];

fn text(bytes: &[u8]) -> Result<String, ()> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ())
}

/// What to read and remove.
pub struct Reading<'a> {
    pub token_header: &'a str,
    /// `access_token.header`, when access tokens are verified.
    pub access_header: Option<&'a str>,
    /// Read `:method`, `:authority` and `:path` (route rules are configured).
    pub route: bool,
    /// Removed at once (lower case).
    pub strip: &'a [String],
    /// Noted for later (lower case).
    pub alb: &'a [String],
}

/// One listing gives everything, and removals happen only for names present
/// (usually none). Should the host's listing be unreadable, each value is
/// read and each managed name removed as spelled, which still covers every
/// spelling Envoy forwards with dashes.
pub fn read_and_strip(headers: &mut dyn RequestHeaders, reading: &Reading<'_>) -> RequestView {
    let listing = headers.listing();
    let Some(pairs) = listing.as_deref().and_then(header_map::parse_pairs) else {
        return read_one_by_one(headers, reading);
    };
    let read = |name| match header_map::value_of(&pairs, name) {
        Value::Absent => None,
        Value::One(v) => Some(text(v)),
        Value::Repeated(_) => Some(Err(())),
    };
    let token = read(reading.token_header);
    let access_token = reading.access_header.and_then(read);
    let route = if reading.route {
        let first = |name| match header_map::value_of(&pairs, name) {
            Value::One(v) | Value::Repeated(v) => Some(v),
            Value::Absent => None,
        };
        let lossy = |name| {
            first(name).map_or_else(String::new, |v| String::from_utf8_lossy(v).into_owned())
        };
        RouteInputs {
            method: lossy(":method"),
            authority: lossy(":authority"),
            path: first(":path").and_then(|v| text(v).ok()),
        }
    } else {
        RouteInputs::default()
    };
    let mut alb_headers = Vec::new();
    let mut claimed_sub = None;
    for (name, value) in &pairs {
        let Some(alb) = reading.alb.iter().find(|m| header_map::folds_to(name, m)) else {
            continue;
        };
        let kind = alb_kind(alb, reading);
        if kind == AlbHeader::Identity && claimed_sub.is_none() {
            claimed_sub = Some(value.to_vec());
        }
        if !alb_headers.iter().any(|(n, _)| n == name) {
            alb_headers.push((name.to_vec(), kind));
        }
    }
    for name in header_map::names_to_strip(&pairs, reading.strip) {
        headers.remove(name);
    }
    RequestView {
        token,
        access_token,
        route,
        alb_headers,
        claimed_sub,
    }
}

fn alb_kind(name: &str, reading: &Reading<'_>) -> AlbHeader {
    if name == ALB_IDENTITY_HEADER {
        AlbHeader::Identity
    } else if reading.access_header == Some(name) {
        AlbHeader::AccessToken
    } else {
        AlbHeader::Other
    }
}

fn read_one_by_one(headers: &mut dyn RequestHeaders, reading: &Reading<'_>) -> RequestView {
    let lossy = |headers: &dyn RequestHeaders, name| {
        headers
            .value(name)
            .map_or_else(String::new, |v| String::from_utf8_lossy(&v).into_owned())
    };
    let route = if reading.route {
        RouteInputs {
            method: lossy(headers, ":method"),
            authority: lossy(headers, ":authority"),
            path: headers.value(":path").and_then(|v| text(&v).ok()),
        }
    } else {
        RouteInputs::default()
    };
    let view = RequestView {
        token: headers.value(reading.token_header).map(|v| text(&v)),
        access_token: reading
            .access_header
            .and_then(|name| headers.value(name))
            .map(|v| text(&v)),
        route,
        alb_headers: reading
            .alb
            .iter()
            .map(|name| (name.as_bytes().to_vec(), alb_kind(name, reading)))
            .collect(),
        claimed_sub: headers.value(ALB_IDENTITY_HEADER),
    };
    for name in reading.strip {
        headers.remove(name.as_bytes());
    }
    view
}
