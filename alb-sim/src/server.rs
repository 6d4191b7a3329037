//! A small HTTP/1.1 accept loop with graceful shutdown, shared by the key
//! endpoint and the proxy.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// How long in-flight requests may run after shutdown was asked for.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves connections from `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish (up to [`DRAIN_TIMEOUT`]) and returns.
/// `make` builds the service of one connection from the peer address.
pub async fn serve<F, S, B>(
    listener: TcpListener,
    make: F,
    shutdown: impl Future<Output = ()>,
    name: &'static str,
) where
    F: Fn(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        eprintln!("alb-sim {name}: accept failed: {e}");
                        // e.g. out of file descriptors: do not spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), make(peer));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // Client resets and malformed requests end the connection; nothing to do.
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            eprintln!("alb-sim {name}: in-flight requests still running after {DRAIN_TIMEOUT:?}; closing");
        }
    }
}
