//! Test databases: a temporary SQLite file, or a uniquely named PostgreSQL
//! schema on postgres://postgres@127.0.0.1:5432/test (dropped afterwards).
//!
//! PostgreSQL tests FAIL when the server is unreachable, unless
//! `ALB_OIDC_SKIP_PG=1` is set (then they are skipped with a message).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alb_oidc_user_service::db::{Store, StoreOptions};
use sqlx::Connection;

pub const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub backend: Backend,
    /// The `--database` value for this test's database.
    pub url: String,
    /// For SQLite: the file path.
    pub path: Option<std::path::PathBuf>,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

fn pg_base() -> String {
    std::env::var("ALB_OIDC_TEST_PG_URL").unwrap_or_else(|_| PG_BASE.to_owned())
}

fn skip_pg() -> bool {
    std::env::var("ALB_OIDC_SKIP_PG").is_ok_and(|v| v == "1")
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    /// A fresh, empty database; `None` only for PostgreSQL with
    /// `ALB_OIDC_SKIP_PG=1`.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("users.db");
                Some(TestDb {
                    backend,
                    url: path.to_string_lossy().into_owned(),
                    path: Some(path),
                    _dir: Some(dir),
                    schema: None,
                })
            }
            Backend::Postgres => {
                if skip_pg() {
                    eprintln!("ALB_OIDC_SKIP_PG=1: skipping a PostgreSQL test");
                    return None;
                }
                let base = pg_base();
                let mut conn = match tokio::time::timeout(
                    Duration::from_secs(10),
                    sqlx::PgConnection::connect(&base),
                )
                .await
                {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => panic!(
                        "PostgreSQL at {base} is unreachable ({e}); set ALB_OIDC_SKIP_PG=1 to skip PostgreSQL tests"
                    ),
                    Err(_) => panic!(
                        "PostgreSQL at {base} did not answer; set ALB_OIDC_SKIP_PG=1 to skip PostgreSQL tests"
                    ),
                };
                let schema = format!(
                    "t_{}_{}_{}",
                    std::process::id(),
                    SEQ.fetch_add(1, Ordering::Relaxed),
                    chrono::Utc::now().timestamp_micros()
                );
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let _ = conn.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                Some(TestDb {
                    backend,
                    url,
                    path: None,
                    _dir: None,
                    schema: Some(schema),
                })
            }
        }
    }

    pub fn options(&self) -> StoreOptions {
        let mut o = StoreOptions::new(self.url.clone());
        o.connect_timeout = Duration::from_secs(10);
        o
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.options()).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        // Drop may run inside a runtime: clean up on a thread of its own.
        let base = pg_base();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// Generates `sqlite_<name>` and `pg_<name>` tests from
/// `async fn <name>(db: &TestDb)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::TestDb::new($crate::common::Backend::Sqlite)
                        .await
                        .unwrap();
                    super::$name(&db).await;
                }
            )*
        }
        mod pg {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::common::TestDb::new($crate::common::Backend::Postgres).await
                    else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}
