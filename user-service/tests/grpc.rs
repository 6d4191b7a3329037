//! The real server process: gRPC round trips, health checking, graceful
//! shutdown on SIGTERM/SIGINT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use alb_oidc_user_service::proto::user_service_client::UserServiceClient;
use alb_oidc_user_service::proto::{authenticate_response, refusal, AuthenticateRequest};
use common::{Backend, TestDb};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

both_backends!(round_trip);

const BIN: &str = env!("CARGO_BIN_EXE_alb-oidc-user-service");

/// Bound on every wait for the server: a start, a log line, an exit.
const WAIT: Duration = Duration::from_secs(30);

struct Server {
    /// `None` once `exit_status` has taken it.
    child: Option<Child>,
    addr: String,
    /// Every stderr line so far (JSON logs), appended as they come.
    logs: watch::Receiver<Vec<String>>,
}

impl Server {
    /// Starts the server and waits for its "listening" line.
    async fn start(db: &TestDb, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--database")
            .arg(&db.url)
            .args(extra)
            .env("RUST_LOG", "info,alb_oidc_user_service=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sink, logs) = watch::channel(Vec::new());
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.send_modify(|lines| lines.push(line));
            }
        });
        let mut server = Server {
            child: Some(child),
            addr: String::new(),
            logs,
        };
        let listening = server.log_line(|v| v["message"] == "listening").await;
        server.addr = listening["addr"].as_str().unwrap().to_owned();
        server
    }

    fn all_logs(&self) -> String {
        self.logs.borrow().join("\n")
    }

    /// Waits (bounded) for a log line matching `pred` and returns it; fails
    /// at once if the server closes stderr (exits) first.
    async fn log_line(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let find = |lines: &Vec<String>| {
            lines
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| pred(v))
        };
        let waited = tokio::time::timeout(WAIT, self.logs.wait_for(|lines| find(lines).is_some()))
            .await
            .map(|found| found.map(|lines| find(&lines)));
        match waited {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => unreachable!("wait_for returned without a match"),
            Ok(Err(_)) => {
                let status = self.child.as_mut().map(|c| c.try_wait());
                panic!(
                    "the server closed stderr first (exit: {status:?}): {}",
                    self.all_logs()
                )
            }
            Err(_) => panic!("no such log line within {WAIT:?}: {}", self.all_logs()),
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    fn pid(&self) -> libc::pid_t {
        self.child.as_ref().unwrap().id() as libc::pid_t
    }

    fn signal(&self, sig: libc::c_int) {
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0);
    }

    /// Waits for exit (bounded, so a hung server fails the test).
    async fn exit_status(mut self) -> ExitStatus {
        let pid = self.pid();
        let mut child = self.child.take().unwrap();
        let exited = tokio::task::spawn_blocking(move || child.wait());
        match tokio::time::timeout(WAIT, exited).await {
            Ok(status) => status.unwrap().unwrap(),
            Err(_) => {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("server did not exit within {WAIT:?}: {}", self.all_logs());
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn request(username: &str, claims: serde_json::Value) -> AuthenticateRequest {
    AuthenticateRequest {
        username: username.to_owned(),
        claims_json: claims.to_string(),
        access_token_groups: vec![],
    }
}

/// Runs an admin command on the test database; its stdout.
fn admin(db: &TestDb, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--database")
        .arg(&db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn round_trip(db: &TestDb) {
    let server = Server::start(
        db,
        &[
            "--groups-claim",
            "groups",
            "--profile-claims",
            "custom:department=department,custom:level=level",
        ],
    )
    .await;
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
    assert_eq!(user.id, 1, "the first user of a new database");
    assert_eq!(user.username, "alice");
    assert_eq!(user.email, "a@example.com");
    assert_eq!(
        (user.first_name.as_str(), user.last_name.as_str()),
        ("Alice", "Liddell")
    );
    assert_eq!(user.groups, vec!["readers", "writers"]);
    assert!(user.is_active && user.created_from_oidc);
    assert!(user.permissions.is_empty());
    assert!(!user.all_permissions && !user.is_staff && !user.is_superuser);
    assert!(user.profile.is_empty());

    // Permissions granted while the server runs, through a claim group, an
    // access-token group and directly; profile fields from the claims.
    admin(db, &["perms", "grant", "docs.view", "--group", "readers"]);
    admin(
        db,
        &["perms", "grant", "ops.deploy", "--group", "cognito-ops"],
    );
    admin(db, &["perms", "grant", "docs.edit", "--user", "alice"]);
    let mut req = request(
        "alice",
        json!({"sub": "alice", "groups": "readers", "custom:department": "Sales",
               "custom:level": 3}),
    );
    req.access_token_groups = vec!["cognito-ops".to_owned()];
    let resp = client.authenticate(req).await.unwrap().into_inner();
    let Some(authenticate_response::Result::User(user)) = resp.result else {
        panic!("expected a user: {resp:?}");
    };
    assert_eq!(user.groups, vec!["cognito-ops", "readers"]);
    assert_eq!(
        user.permissions,
        vec!["docs.edit", "docs.view", "ops.deploy"]
    );
    assert!(!user.all_permissions);
    let profile: Vec<(&str, &str)> = user
        .profile
        .iter()
        .map(|f| (f.name.as_str(), f.value.as_str()))
        .collect();
    assert_eq!(profile, vec![("department", "Sales"), ("level", "3")]);

    admin(db, &["users", "set", "alice", "--superuser", "--staff"]);
    let resp = client
        .authenticate(request("alice", json!({"groups": "readers"})))
        .await
        .unwrap()
        .into_inner();
    let Some(authenticate_response::Result::User(user)) = resp.result else {
        panic!("expected a user: {resp:?}");
    };
    assert!(user.all_permissions && user.is_superuser && user.is_staff);
    assert!(
        user.permissions.is_empty(),
        "a superuser's set is not listed"
    );
    assert!(
        user.profile.is_empty(),
        "claims without the profile claims remove the fields"
    );

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
    assert!(server.exit_status().await.success());
}

/// SIGTERM while a call is in flight: the call completes, then the process
/// exits 0. The call is held in flight by a write lock another connection
/// holds on the SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_calls_finish() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut server = Server::start(&db, &[]).await;
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

    let call = tokio::spawn(async move {
        client
            .authenticate(request("late", json!({"given_name": "Late"})))
            .await
    });
    // The call is in the server; creating the user needs the write lock.
    server
        .log_line(|v| v["message"] == "authenticate call received" && v["username"] == "late")
        .await;
    server.signal(libc::SIGTERM);
    server
        .log_line(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shutting down"))
        })
        .await;
    assert!(
        !call.is_finished(),
        "shutdown has begun and the call still waits for the lock"
    );
    sqlx::raw_sql("COMMIT").execute(&mut locker).await.unwrap();

    let resp = tokio::time::timeout(WAIT, call)
        .await
        .expect("the call finishes once the lock is free")
        .unwrap()
        .unwrap()
        .into_inner();
    let Some(authenticate_response::Result::User(user)) = resp.result else {
        panic!("expected a user: {resp:?}");
    };
    assert_eq!(user.first_name, "Late");
    server.log_line(|v| v["message"] == "stopped").await;
    let logs = server.all_logs();
    let status = server.exit_status().await;
    assert!(status.success(), "{status:?}");
    assert!(logs.contains("received SIGTERM"), "{logs}");
    // Finished within the grace period, not merely outliving it.
    assert!(!logs.contains("grace period expired"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_server() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut server = Server::start(&db, &[]).await;
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
    server.log_line(|v| v["message"] == "received SIGINT").await;
    assert!(server.exit_status().await.success());
}
