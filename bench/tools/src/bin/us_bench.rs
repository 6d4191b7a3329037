//! Load client for the user service's `Authenticate` (gRPC).
//!
//! ```text
//! us-bench --addr http://127.0.0.1:50051 warm   --users N
//! us-bench --addr ... closed --users N --concurrency C --duration S
//! us-bench --addr ... rate   --users N --rate R --duration S
//! ```
//! `--groups G` puts G group names (`bench-group-0` ...) in every user's
//! `groups` claim (the service needs `--groups-claim groups`), so each call
//! syncs G memberships and answers their permissions.
//! `warm` authenticates every user twice (creating them), so the measured
//! phases see warm users. `closed` keeps C calls in flight (throughput at that
//! concurrency); `rate` issues R calls per second on a fixed schedule whatever
//! is outstanding (open loop). Both print one JSON object: calls, errors,
//! seconds, calls_per_s, p50_us, p90_us, p99_us, max_us. Latency is measured
//! from issuing a call to its answer. Users are picked round-robin.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};

pub mod pb {
    tonic::include_proto!("alboidc.users.v1");
}
use pb::authenticate_response::Result as AuthResult;
use pb::user_service_client::UserServiceClient;
use pb::AuthenticateRequest;

struct Args {
    addr: String,
    mode: String,
    users: usize,
    concurrency: usize,
    rate: f64,
    duration: f64,
    groups: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "http://127.0.0.1:50051".into(),
        mode: String::new(),
        users: 1000,
        concurrency: 8,
        rate: 500.0,
        duration: 10.0,
        groups: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if !flag.starts_with("--") {
            a.mode = flag;
            continue;
        }
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--addr" => a.addr = val,
            "--users" => a.users = (num(&val)? as usize).max(1),
            "--concurrency" => a.concurrency = (num(&val)? as usize).max(1),
            "--rate" => a.rate = num(&val)?,
            "--duration" => a.duration = num(&val)?,
            "--groups" => a.groups = num(&val)? as usize,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !["warm", "closed", "rate"].contains(&a.mode.as_str()) {
        return Err("mode must be warm, closed or rate".into());
    }
    Ok(a)
}

/// The `groups` claim every user carries (empty: none).
fn group_names(n: usize) -> Vec<String> {
    (0..n).map(|k| format!("bench-group-{k}")).collect()
}

fn request(i: usize, groups: &[String]) -> AuthenticateRequest {
    let username = format!("bench-user-{i}");
    let mut claims = serde_json::json!({
        "sub": username,
        "email": format!("{username}@example.com"),
        "email_verified": "true",
        "given_name": "Bench",
        "family_name": format!("User {i}"),
        "exp": 4_102_444_800u64,
        "iss": "https://idp.alb-sim.local",
    });
    if !groups.is_empty() {
        claims["groups"] = serde_json::json!(groups);
    }
    AuthenticateRequest {
        username,
        claims_json: claims.to_string(),
        access_token_groups: Vec::new(),
    }
}

/// One call: Ok(true) for a User answer, Ok(false) for a refusal.
async fn call(
    client: &mut UserServiceClient<Channel>,
    i: usize,
    groups: &[String],
) -> Result<bool, tonic::Status> {
    Ok(call_permissions(client, i, groups).await?.is_some())
}

/// One call: the number of permissions of a User answer, None for a refusal.
async fn call_permissions(
    client: &mut UserServiceClient<Channel>,
    i: usize,
    groups: &[String],
) -> Result<Option<usize>, tonic::Status> {
    let resp = client.authenticate(request(i, groups)).await?.into_inner();
    Ok(match resp.result {
        Some(AuthResult::User(u)) => Some(u.permissions.len()),
        _ => None,
    })
}

#[derive(Default)]
struct Record {
    lat_us: Vec<u64>,
    errors: usize,
}

fn report(rec: &mut Record, seconds: f64, mode: &str, extra: serde_json::Value) {
    rec.lat_us.sort_unstable();
    let pct = |p: f64| -> u64 {
        if rec.lat_us.is_empty() {
            return 0;
        }
        let idx = ((p / 100.0) * rec.lat_us.len() as f64).ceil() as usize;
        rec.lat_us[idx.clamp(1, rec.lat_us.len()) - 1]
    };
    let calls = rec.lat_us.len();
    let mut doc = serde_json::json!({
        "mode": mode,
        "calls": calls,
        "errors": rec.errors,
        "seconds": seconds,
        "calls_per_s": calls as f64 / seconds,
        "p50_us": pct(50.0),
        "p90_us": pct(90.0),
        "p99_us": pct(99.0),
        "max_us": rec.lat_us.last().copied().unwrap_or(0),
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    println!("{doc}");
}

async fn run(a: Args) -> Result<(), String> {
    let channel = Endpoint::from_shared(a.addr.clone())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect {}: {e}", a.addr))?;
    let client = UserServiceClient::new(channel);
    let groups: Arc<[String]> = group_names(a.groups).into();
    match a.mode.as_str() {
        "warm" => {
            let mut c = client.clone();
            let mut permissions = 0;
            for _round in 0..2 {
                for i in 0..a.users {
                    match call_permissions(&mut c, i, &groups).await {
                        Ok(Some(n)) => permissions = n,
                        Ok(None) => return Err(format!("user {i} refused")),
                        Err(e) => return Err(format!("user {i}: {e}")),
                    }
                }
            }
            println!(
                "{}",
                serde_json::json!({"mode": "warm", "users": a.users, "groups": a.groups,
                                   "permissions_per_user": permissions})
            );
        }
        "closed" => {
            let next = Arc::new(AtomicUsize::new(0));
            let rec = Arc::new(Mutex::new(Record::default()));
            let start = Instant::now();
            let deadline = start + Duration::from_secs_f64(a.duration);
            let mut tasks = Vec::new();
            for _ in 0..a.concurrency {
                let (mut c, next, rec, users, groups) = (
                    client.clone(),
                    next.clone(),
                    rec.clone(),
                    a.users,
                    groups.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let mut local = Record::default();
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, Ordering::Relaxed) % users;
                        let t = Instant::now();
                        match call(&mut c, i, &groups).await {
                            Ok(true) => local.lat_us.push(t.elapsed().as_micros() as u64),
                            _ => local.errors += 1,
                        }
                    }
                    let mut r = rec.lock().await;
                    r.lat_us.extend(local.lat_us);
                    r.errors += local.errors;
                }));
            }
            for t in tasks {
                t.await.map_err(|e| e.to_string())?;
            }
            let secs = start.elapsed().as_secs_f64();
            let mut r = rec.lock().await;
            report(
                &mut r,
                secs,
                "closed",
                serde_json::json!({"concurrency": a.concurrency}),
            );
        }
        _ => {
            let rec = Arc::new(Mutex::new(Record::default()));
            let total = (a.rate * a.duration).round() as usize;
            let period = Duration::from_secs_f64(1.0 / a.rate);
            let start = Instant::now();
            let mut tasks = Vec::with_capacity(total);
            for n in 0..total {
                tokio::time::sleep_until((start + period * n as u32).into()).await;
                let (mut c, rec, i, groups) =
                    (client.clone(), rec.clone(), n % a.users, groups.clone());
                tasks.push(tokio::spawn(async move {
                    let t = Instant::now();
                    let res = call(&mut c, i, &groups).await;
                    let us = t.elapsed().as_micros() as u64;
                    let mut r = rec.lock().await;
                    match res {
                        Ok(true) => r.lat_us.push(us),
                        _ => r.errors += 1,
                    }
                }));
            }
            let issued = start.elapsed().as_secs_f64();
            for t in tasks {
                t.await.map_err(|e| e.to_string())?;
            }
            let mut r = rec.lock().await;
            report(
                &mut r,
                issued.max(1e-9),
                "rate",
                serde_json::json!({"target_rate": a.rate}),
            );
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("us-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("us-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
