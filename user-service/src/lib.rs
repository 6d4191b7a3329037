//! alb-oidc user service: maps verified ALB OIDC identities to persistent
//! users (SQLite or PostgreSQL) and answers the filter over gRPC.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod db;
pub mod permission;
pub mod profile;
pub mod server;

/// Generated from `proto/user_service.proto` (package `alboidc.users.v1`).
pub mod proto {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    tonic::include_proto!("alboidc.users.v1");
}

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{Cli, Command, LogFormat};
use crate::db::{Store, StoreOptions};

/// Sets up `tracing` on stderr; the level comes from `RUST_LOG`.
pub fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn store_options(cli: &Cli, create_if_missing: bool, max_connections: u32) -> StoreOptions {
    StoreOptions {
        url: cli.database.clone(),
        connect_timeout: Duration::from_secs(cli.db_connect_timeout),
        max_connections,
        create_if_missing,
    }
}

/// Describes the database for logs without its password.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{}{}{}{}", &url[..scheme_end + 3], user, hidden, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Runs the parsed command line; the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match &cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format, "info");
            let opts = store_options(&cli, true, args.db_max_connections);
            let listener = match tokio::net::TcpListener::bind(args.listen).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(addr = %args.listen, error = %e, "cannot listen");
                    return ExitCode::FAILURE;
                }
            };
            let store = match Store::open(&opts).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(database = %redacted(&cli.database), error = %e, "cannot open the database");
                    return ExitCode::FAILURE;
                }
            };
            // Before "listening": from then on a signal must stop the service
            // gracefully.
            let shutdown = server::shutdown_signal();
            let policy = args.policy();
            let addr = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            tracing::info!(
                %addr,
                database = %redacted(&cli.database),
                backend = ?store.backend(),
                auto_create_users = policy.auto_create_users,
                link_existing_users = policy.link_existing_users,
                require_verified_email = policy.require_verified_email,
                first_name_claim = %policy.first_name_claim,
                last_name_claim = %policy.last_name_claim,
                groups_claim = policy.groups_claim.as_deref().unwrap_or("-"),
                profile_fields = policy.profile_claims.len(),
                "listening"
            );
            let auth = auth::Authenticator::new(store.clone(), policy);
            let result = server::serve(
                listener,
                auth,
                shutdown,
                Duration::from_secs(args.shutdown_timeout),
            )
            .await;
            store.close().await;
            match result {
                Ok(()) => {
                    tracing::info!("stopped");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error = %e, "server failed");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Users(args) => {
            init_logging(LogFormat::Text, "warn");
            let opts = store_options(&cli, admin::users_command_creates(&args.command), 2);
            admin_command(&cli, opts, |store| async move {
                admin::run_users(&store, args).await
            })
            .await
        }
        Command::Groups(args) => {
            init_logging(LogFormat::Text, "warn");
            let opts = store_options(&cli, false, 2);
            admin_command(&cli, opts, |store| async move {
                admin::run_groups(&store, args).await
            })
            .await
        }
        Command::Perms(args) => {
            init_logging(LogFormat::Text, "warn");
            let opts = store_options(&cli, false, 2);
            admin_command(&cli, opts, |store| async move {
                admin::perms::run_perms(&store, args).await
            })
            .await
        }
    }
}

async fn admin_command<F, Fut>(cli: &Cli, opts: StoreOptions, f: F) -> ExitCode
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = Result<String, admin::AdminError>>,
{
    let store = match Store::open(&opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: database {}: {e}", redacted(&cli.database));
            return ExitCode::FAILURE;
        }
    };
    let result = f(store.clone()).await;
    store.close().await;
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::redacted;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redacted("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redacted("users.db"), "users.db");
    }
}
