//! The real server process: gRPC round trips, health checking, graceful
//! shutdown on SIGTERM/SIGINT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alb_oidc_user_service::proto::user_service_client::UserServiceClient;
use alb_oidc_user_service::proto::{authenticate_response, refusal, AuthenticateRequest};
use common::{Backend, TestDb};
use serde_json::json;
use sqlx::Connection;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

both_backends!(round_trip);

const BIN: &str = env!("CARGO_BIN_EXE_alb-oidc-user-service");

struct Server {
    child: Child,
    addr: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(db: &TestDb, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--database")
            .arg(&db.url)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&logs);
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["message"] == "listening" {
                        let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start: {:?}", logs.lock().unwrap());
            }
        };
        Server { child, addr, logs }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    fn signal(&self, sig: libc::c_int) {
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0);
    }

    /// Waits for exit (bounded, so a hung server fails the test).
    fn wait(mut self) -> std::process::ExitStatus {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("server did not exit: {:?}", self.logs.lock().unwrap());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(username: &str, claims: serde_json::Value) -> AuthenticateRequest {
    AuthenticateRequest {
        username: username.to_owned(),
        claims_json: claims.to_string(),
    }
}

async fn round_trip(db: &TestDb) {
    let server = Server::start(db, &["--groups-claim", "groups"]);
    let channel = server.channel().await;
    let mut client = UserServiceClient::new(channel.clone());

    let resp = client
        .authenticate(request(
            "alice",
            json!({"sub": "alice", "email": "a@example.com", "email_verified": "true",
                   "name": "Alice Liddell", "groups": "readers,writers"}),
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(authenticate_response::Result::User(user)) = resp.result else {
        panic!("expected a user: {resp:?}");
    };
    assert!(user.id > 0);
    assert_eq!(user.username, "alice");
    assert_eq!(user.email, "a@example.com");
    assert_eq!(
        (user.first_name.as_str(), user.last_name.as_str()),
        ("Alice", "Liddell")
    );
    assert_eq!(user.groups, vec!["readers", "writers"]);
    assert!(user.is_active && user.created_from_oidc);

    let resp = client
        .authenticate(request("", json!({})))
        .await
        .unwrap()
        .into_inner();
    let Some(authenticate_response::Result::Refusal(r)) = resp.result else {
        panic!("expected a refusal: {resp:?}");
    };
    assert_eq!(r.reason(), refusal::Reason::InvalidClaims);

    // Deactivated through the admin command while the server runs.
    let out = Command::new(BIN)
        .args(["users", "deactivate", "alice", "--database", &db.url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let resp = client
        .authenticate(request("alice", json!({})))
        .await
        .unwrap()
        .into_inner();
    let Some(authenticate_response::Result::Refusal(r)) = resp.result else {
        panic!("expected a refusal: {resp:?}");
    };
    assert_eq!(r.reason(), refusal::Reason::Inactive);

    let mut health = HealthClient::new(channel);
    for service in ["", "alboidc.users.v1.UserService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    server.signal(libc::SIGTERM);
    assert!(server.wait().success());
}

/// SIGTERM while a call is in flight: the call completes, then the process
/// exits 0. The call is held in flight by a write lock another connection
/// holds on the SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_calls_finish() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = Server::start(&db, &[]);
    let channel = server.channel().await;
    let mut client = UserServiceClient::new(channel.clone());
    // Warm the connection and the service.
    client
        .authenticate(request("warm", json!({})))
        .await
        .unwrap();

    let mut locker = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        db.path.as_ref().unwrap().display()
    ))
    .await
    .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();

    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let call = tokio::spawn(async move {
        let fut = client.authenticate(request("late", json!({"given_name": "Late"})));
        let _ = started_tx.send(());
        fut.await
    });
    started_rx.await.unwrap();
    // Give the request time to reach the server and block on the lock.
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !call.is_finished(),
        "the call should still be waiting for the lock"
    );
    sqlx::raw_sql("COMMIT").execute(&mut locker).await.unwrap();

    let resp = call.await.unwrap().unwrap().into_inner();
    let Some(authenticate_response::Result::User(user)) = resp.result else {
        panic!("expected a user: {resp:?}");
    };
    assert_eq!(user.first_name, "Late");
    let logs = Arc::clone(&server.logs);
    let status = server.wait();
    assert!(status.success(), "{status:?}");
    let logs = logs.lock().unwrap().join("\n");
    assert!(logs.contains("received SIGTERM"), "{logs}");
    assert!(logs.contains("\"stopped\""), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_server() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = Server::start(&db, &[]);
    let mut health = HealthClient::new(server.channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
    drop(health);
    server.signal(libc::SIGINT);
    assert!(server.wait().success());
}
