//! Which database a `--database` value designates.

use super::DbError;

/// The database behind the store. Everything that differs between the two
/// (connection set-up, schema files, locking) is chosen by this, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Classifies a `--database` value: a `postgres://` / `postgresql://`
    /// URL, or a `sqlite:` URL or plain file path.
    pub fn of_url(url: &str) -> Result<Backend, DbError> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if !url.is_empty() && (lower.starts_with("sqlite:") || !url.contains("://")) {
            Ok(Backend::Sqlite)
        } else {
            Err(DbError::UnsupportedUrl(url.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_are_classified() {
        for (url, backend) in [
            ("users.db", Backend::Sqlite),
            ("/var/lib/alb-oidc/users.db", Backend::Sqlite),
            ("sqlite:///tmp/u.db", Backend::Sqlite),
            ("SQLite::memory:", Backend::Sqlite),
            ("postgres://u@db/x", Backend::Postgres),
            ("PostgreSQL://u@db/x", Backend::Postgres),
        ] {
            assert_eq!(Backend::of_url(url).unwrap(), backend, "{url}");
        }
        for url in ["", "mysql://root@db/x", "http://db/x"] {
            assert!(
                matches!(Backend::of_url(url), Err(DbError::UnsupportedUrl(u)) if u == url),
                "{url:?}"
            );
        }
    }
}
