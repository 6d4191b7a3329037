//! Test databases: a temporary SQLite file, or a uniquely named PostgreSQL
//! schema on postgres://postgres@127.0.0.1:5432/test (override with
//! `ALB_OIDC_TEST_PG_URL`; dropped afterwards).
//!
//! PostgreSQL tests are `#[ignore]`d, so a plain `cargo test` lists them as
//! ignored instead of passing them unrun; `make test-unit` runs them with
//! `--ignored` when PostgreSQL answers (`tests/run-postgres-tests.sh`). Run
//! explicitly, they fail when PostgreSQL is unreachable.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use alb_oidc_user_service::db::Backend;
use alb_oidc_user_service::db::{Store, StoreOptions};
use sqlx::Connection;

pub const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432/test";

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

static SEQ: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    /// A fresh, empty database (no tables).
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("users.db");
                TestDb {
                    backend,
                    url: path.to_string_lossy().into_owned(),
                    path: Some(path),
                    _dir: Some(dir),
                    schema: None,
                }
            }
            Backend::Postgres => {
                let base = pg_base();
                let mut conn = match tokio::time::timeout(
                    Duration::from_secs(10),
                    sqlx::PgConnection::connect(&base),
                )
                .await
                {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => panic!("PostgreSQL at {base} is unreachable: {e}"),
                    Err(_) => panic!("PostgreSQL at {base} did not answer within 10 s"),
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
                TestDb {
                    backend,
                    url,
                    path: None,
                    _dir: None,
                    schema: Some(schema),
                }
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

/// Generates `sqlite::<name>` and `pg::<name>` tests from
/// `async fn <name>(db: &TestDb)`: one body, both backends. The PostgreSQL
/// ones are ignored unless asked for (`--ignored`, as `make test-unit` does).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::TestDb::new($crate::common::Backend::Sqlite).await;
                    super::$name(&db).await;
                }
            )*
        }
        mod pg {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL (ALB_OIDC_TEST_PG_URL, default 127.0.0.1:5432); make test-unit runs it"]
                async fn $name() {
                    let db = $crate::common::TestDb::new($crate::common::Backend::Postgres).await;
                    super::$name(&db).await;
                }
            )*
        }
    };
}
