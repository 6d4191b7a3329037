//! The gRPC server: UserService, grpc.health.v1, graceful shutdown.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;

use crate::auth::{Authenticator, Outcome, RefusalReason};
use crate::db::{Access, UserRecord};
use crate::proto::user_service_server::{UserService, UserServiceServer};
use crate::proto::{authenticate_response, refusal, AuthenticateRequest, AuthenticateResponse};
use crate::proto::{ProfileField, Refusal, User};

/// The fully qualified service name, as health checks ask for it.
pub const SERVICE_NAME: &str = "alboidc.users.v1.UserService";

pub struct UserServiceImpl {
    auth: Authenticator,
}

impl UserServiceImpl {
    pub fn new(auth: Authenticator) -> Self {
        Self { auth }
    }
}

pub fn to_proto_user(user: &UserRecord, access: &Access) -> User {
    User {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        groups: user.group_names(),
        is_active: user.is_active,
        created_from_oidc: user.created_from_oidc,
        permissions: access.permissions.clone(),
        all_permissions: access.all,
        is_staff: user.is_staff,
        is_superuser: user.is_superuser,
        profile: user
            .profile
            .iter()
            .map(|f| ProfileField {
                name: f.name.clone(),
                value: f.value.clone(),
            })
            .collect(),
    }
}

fn to_proto_reason(reason: RefusalReason) -> refusal::Reason {
    match reason {
        RefusalReason::UnknownUser => refusal::Reason::UnknownUser,
        RefusalReason::Inactive => refusal::Reason::Inactive,
        RefusalReason::NotLinkable => refusal::Reason::NotLinkable,
        RefusalReason::InvalidClaims => refusal::Reason::InvalidClaims,
    }
}

#[tonic::async_trait]
impl UserService for UserServiceImpl {
    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let req = request.into_inner();
        // Marks the call as in flight (tests wait for it before a shutdown).
        tracing::debug!(username = %req.username, "authenticate call received");
        let outcome = match self
            .auth
            .authenticate_with(&req.username, &req.claims_json, &req.access_token_groups)
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(username = %req.username, error = %e, "authenticate failed");
                return Err(if e.is_unavailable() {
                    Status::unavailable("user database unavailable")
                } else {
                    Status::internal("user database error")
                });
            }
        };
        let result = match outcome {
            Outcome::User {
                user,
                created,
                access,
            } => {
                if created {
                    tracing::info!(username = %user.username, user_id = user.id, "created user");
                } else {
                    tracing::debug!(username = %user.username, user_id = user.id, "authenticated");
                }
                authenticate_response::Result::User(to_proto_user(&user, &access))
            }
            Outcome::Refused { reason, message } => {
                tracing::info!(username = %req.username, reason = reason.as_str(), %message, "refused");
                authenticate_response::Result::Refusal(Refusal {
                    reason: to_proto_reason(reason) as i32,
                    message,
                })
            }
        };
        Ok(Response::new(AuthenticateResponse {
            result: Some(result),
        }))
    }
}

/// Serves until `shutdown` resolves, then stops accepting connections,
/// reports NOT_SERVING and lets in-flight calls finish for at most `grace`.
pub async fn serve<F>(
    listener: TcpListener,
    auth: Authenticator,
    shutdown: F,
    grace: Duration,
) -> Result<(), tonic::transport::Error>
where
    F: Future<Output = ()> + Send,
{
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<UserServiceServer<UserServiceImpl>>()
        .await;
    health.set_service_status("", ServingStatus::Serving).await;

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(UserServiceServer::new(UserServiceImpl::new(auth)))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        });
    tokio::pin!(server);
    tokio::pin!(shutdown);

    tokio::select! {
        result = &mut server => return result,
        () = &mut shutdown => {}
    }
    tracing::info!(
        grace_s = grace.as_secs(),
        "shutting down: no new connections, waiting for in-flight calls"
    );
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    health
        .set_not_serving::<UserServiceServer<UserServiceImpl>>()
        .await;
    let _ = stop_tx.send(());
    match tokio::time::timeout(grace, &mut server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("shutdown grace period expired; exiting with calls still in flight");
            Ok(())
        }
    }
}

/// Installs the SIGTERM and SIGINT handlers now and returns a future that
/// resolves on either. Call it before the service announces itself: a
/// handler installed only when the future is first polled leaves a moment in
/// which the service already answers and a signal still kills it outright.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = term.recv() => tracing::info!("received SIGTERM"),
                    _ = int.recv() => tracing::info!("received SIGINT"),
                },
                (Err(e), Ok(mut int)) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the service");
                    int.recv().await;
                    tracing::info!("received SIGINT");
                }
                (Ok(mut term), Err(e)) => {
                    tracing::warn!(error = %e, "cannot listen for SIGINT; only SIGTERM stops the service");
                    term.recv().await;
                    tracing::info!("received SIGTERM");
                }
                (Err(e), Err(_)) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM or SIGINT; stop the service with SIGKILL");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("received interrupt");
        }
    }
}
