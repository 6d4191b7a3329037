//! The kit's error type.

/// Everything minting can refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Key generation, derivation, encoding or signing failed.
    #[error("key error: {0}")]
    Key(String),
    /// JSON could not be produced or parsed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
