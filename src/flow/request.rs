//! Reading a request's head: the token, the path, and the removal of every
//! header whose name folds to one the filter manages.

use super::host::RequestHeaders;
use crate::header_map::{self, Value};

/// What the flow reads from the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    /// `Some(Err)` for a non-UTF-8 or repeated token.
    pub token: Option<Result<String, ()>>,
    /// `None` when not asked for or not UTF-8 (then never exempt).
    pub path: Option<String>,
}

fn text(bytes: &[u8]) -> Result<String, ()> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ())
}

/// One listing gives the token and `:path`, and removals happen only for
/// names present (usually none). Should the host's listing be unreadable,
/// each value is read and each managed name removed as spelled, which still
/// covers every spelling Envoy forwards with dashes.
pub fn read_and_strip(
    headers: &mut dyn RequestHeaders,
    token_header: &str,
    want_path: bool,
    strip: &[String],
) -> RequestView {
    let listing = headers.listing();
    let Some(pairs) = listing.as_deref().and_then(header_map::parse_pairs) else {
        let view = RequestView {
            token: headers.value(token_header).map(|v| text(&v)),
            path: want_path
                .then(|| headers.value(":path").and_then(|v| text(&v).ok()))
                .flatten(),
        };
        for name in strip {
            headers.remove(name.as_bytes());
        }
        return view;
    };
    let token = match header_map::value_of(&pairs, token_header) {
        Value::Absent => None,
        Value::One(v) => Some(text(v)),
        Value::Repeated(_) => Some(Err(())),
    };
    let path = match header_map::value_of(&pairs, ":path") {
        Value::One(v) | Value::Repeated(v) if want_path => text(v).ok(),
        _ => None,
    };
    for name in header_map::names_to_strip(&pairs, strip) {
        headers.remove(name);
    }
    RequestView { token, path }
}
