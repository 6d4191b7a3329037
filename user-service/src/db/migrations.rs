//! Schema migrations: sqlx's migrator, one folder per backend
//! (`migrations/sqlite`, `migrations/postgres`), embedded at build time.
//!
//! Databases made before sqlx's migrator was used record their versions in
//! the former runner's `schema_migrations` table. On open, when that table
//! exists and sqlx's `_sqlx_migrations` does not, the recorded versions are
//! adopted: written into `_sqlx_migrations` with the checksum of the embedded
//! migration of that version (the former runner applied exactly that file;
//! its text must therefore never change), so sqlx does not apply them again.
//!
//! Adoption and the migrator run in one write transaction, under a lock that
//! serialises concurrent opens (replicas starting together, an admin command
//! beside the service): the migrator's own steps nest in it as savepoints.

use sqlx::migrate::{Migrate as _, MigrateError, Migrator};
use sqlx::{Postgres, Sqlite, Transaction};

use super::connect::{PgBackend, SqliteBackend};
use super::{Backend, DbError};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// The former runner's table: `(version BIGINT PRIMARY KEY, description TEXT)`.
const LEGACY_TABLE: &str = "schema_migrations";
/// sqlx's table (the name is fixed in sqlx 0.8).
const SQLX_TABLE: &str = "_sqlx_migrations";

/// Arbitrary constant identifying this service's migration lock in
/// PostgreSQL (`pg_advisory_xact_lock`).
const PG_MIGRATION_LOCK: i64 = 0x616c_625f_6f69_6463; // "alb_oidc"

/// sqlx's value for "execution time not measured"; adopted versions were
/// applied (and timed, or not) by the former runner.
const NOT_MEASURED: i64 = -1;

impl Backend {
    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        }
    }

    /// A query answering whether the table `$1` exists, resolved as the
    /// unqualified names in the statements that follow are (PostgreSQL: along
    /// the search_path).
    fn table_exists_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1)"
            }
            Backend::Postgres => "SELECT to_regclass($1) IS NOT NULL",
        }
    }
}

/// `migrate()` for one backend type, and the adoption of the former
/// runner's versions. Each backend's module supplies `lock_for_migration`.
macro_rules! migrate_impl {
    ($store:ty, $db:ty, $backend:expr) => {
        impl $store {
            pub(in crate::db) async fn migrate(&self) -> Result<(), DbError> {
                let run = async {
                    let mut tx = self.begin_write().await?;
                    lock_for_migration(&mut tx).await?;
                    adopt_legacy_versions(&mut tx).await?;
                    $backend.migrator().run(&mut *tx).await?;
                    tx.commit().await?;
                    Ok::<_, MigrateError>(())
                };
                run.await.map_err(DbError::Migration)
            }
        }

        /// Records the versions of the former runner's table in sqlx's.
        async fn adopt_legacy_versions(
            tx: &mut Transaction<'static, $db>,
        ) -> Result<(), MigrateError> {
            let backend: Backend = $backend;
            let exists = |table: &'static str| {
                sqlx::query_scalar::<_, bool>(backend.table_exists_sql()).bind(table)
            };
            let legacy = exists(LEGACY_TABLE).fetch_one(&mut **tx).await?;
            let adopted = exists(SQLX_TABLE).fetch_one(&mut **tx).await?;
            if !legacy || adopted {
                return Ok(());
            }
            let versions: Vec<(i64, String)> = sqlx::query_as(
                "SELECT version, description FROM schema_migrations ORDER BY version",
            )
            .fetch_all(&mut **tx)
            .await?;
            tx.ensure_migrations_table().await?;
            for (version, description) in versions {
                let Some(migration) = backend.migrator().iter().find(|m| m.version == version)
                else {
                    return Err(MigrateError::VersionMissing(version));
                };
                sqlx::query(
                    "INSERT INTO _sqlx_migrations \
                     (version, description, success, checksum, execution_time) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(version)
                .bind(&description)
                .bind(true)
                .bind(&*migration.checksum)
                .bind(NOT_MEASURED)
                .execute(&mut **tx)
                .await?;
                tracing::info!(
                    version,
                    description,
                    "adopted a schema version recorded by the former migration runner"
                );
            }
            Ok(())
        }
    };
}

mod sqlite {
    use super::*;

    /// Nothing to take: the transaction's `BEGIN IMMEDIATE` already holds
    /// the database's write lock, so concurrent opens queue on it.
    async fn lock_for_migration(
        _tx: &mut Transaction<'static, Sqlite>,
    ) -> Result<(), MigrateError> {
        Ok(())
    }

    migrate_impl!(SqliteBackend, Sqlite, Backend::Sqlite);
}

mod postgres {
    use super::*;

    /// A transaction-scoped advisory lock: released at commit or rollback,
    /// even when a migration fails.
    async fn lock_for_migration(
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<(), MigrateError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    migrate_impl!(PgBackend, Postgres, Backend::Postgres);
}
