//! Error type shared by the library and the CLI.

use std::path::Path;

/// Everything that can go wrong in `alb-sim`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path or address involved.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Bad input: a flag, a file's content, a kid, an identity.
    #[error("{0}")]
    Invalid(String),
    /// Key generation, parsing, encoding or signing failed.
    #[error("key error: {0}")]
    Key(String),
    /// Minting refused (key, signature or JSON).
    #[error(transparent)]
    Mint(#[from] alb_oidc_testkit::Error),
    /// JSON could not be produced or parsed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An I/O error about a path.
    pub fn io_path(what: &str, path: &Path, source: std::io::Error) -> Self {
        Error::io(format!("{what} {}", path.display()), source)
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
