//! Mints benchmark tokens in the ALB format through the test kit (the code
//! alb-sim mints with), signed by the current key of an alb-sim key directory.
//!
//! Every token is distinct (randomized ECDSA signatures, as the ALB's). With
//! `--unpadded` every segment is base64url without `=` padding (what JWT
//! libraries such as Envoy's `jwt_authn` expect); the signature then covers the
//! unpadded text, so such tokens are as valid as the ALB's padded ones.
//!
//! `bench-mint access` mints instead one IdP access token (issue 13): RS256
//! under the test kit's fixed RSA key A, Cognito-shaped claims, unpadded as
//! IdPs emit it, and writes the key set that verifies it. One token is
//! enough: the ALB forwards the same access token for a login's lifetime.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use alb_oidc_testkit::idp::{self, IdpKey, RsaFixture};
use alb_oidc_testkit::token::{now_unix, sign_segments, Claims, HeaderFields, Padding, Signing};
use alb_sim::keys::KeyDir;
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "bench-mint",
    about = "Mint distinct ALB-format tokens for the benchmarks, one per line",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// alb-sim key directory; its current key signs.
    #[arg(long, required = true)]
    dir: Option<PathBuf>,
    /// Number of tokens.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// No `=` padding on any segment.
    #[arg(long)]
    unpadded: bool,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 7200, allow_negative_numbers = true)]
    exp_in: i64,
    /// Signing threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Header `signer`.
    #[arg(
        long,
        default_value = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/bench/0123456789abcdef"
    )]
    signer: String,
    /// Header and payload `iss`.
    #[arg(long, default_value = "https://idp.alb-sim.local")]
    issuer: String,
    /// Header `client`.
    #[arg(long, default_value = "alb-sim-client")]
    client: String,
    /// Payload `sub` (and `username`).
    #[arg(long, default_value = "bench-user")]
    sub: String,
    /// Output file.
    #[arg(long, required = true)]
    out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One IdP access token (RS256, fixed RSA test key A) and its key set.
    Access(AccessArgs),
}

#[derive(clap::Args, Debug)]
struct AccessArgs {
    /// Payload `iss`.
    #[arg(long, default_value = idp::IDP_ISSUER)]
    issuer: String,
    /// Payload `client_id`.
    #[arg(long, default_value = idp::IDP_CLIENT_ID)]
    client_id: String,
    /// Payload `sub`: the data tokens' `sub`, or the filter refuses the pair.
    #[arg(long, default_value = "bench-user")]
    sub: String,
    /// Payload `cognito:groups` (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Header `kid`, and the JWK's.
    #[arg(long, default_value = "bench-idp")]
    kid: String,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 7200)]
    exp_in: i64,
    /// Output file: the token on one line.
    #[arg(long)]
    out: PathBuf,
    /// Output file: the key set (JWKS) with the key's public JWK.
    #[arg(long)]
    jwks_out: PathBuf,
}

/// Cognito's access-token shape, so the filter parses a realistic payload.
fn mint_access(a: &AccessArgs) -> Result<(), String> {
    let key = IdpKey::rsa(RsaFixture::A, a.kid.clone()).map_err(|e| e.to_string())?;
    let now = now_unix();
    let header = json!({"alg": "RS256", "kid": a.kid, "typ": "JWT"});
    let payload = json!({
        "sub": a.sub,
        "cognito:groups": a.groups,
        "iss": a.issuer,
        "version": 2,
        "client_id": a.client_id,
        "token_use": "access",
        "scope": "openid profile email",
        "auth_time": now,
        "exp": now + a.exp_in,
        "iat": now,
        "jti": "0b5a6c1e-3d2f-4a8b-9c7d-1e2f3a4b5c6d",
        "username": a.sub,
    });
    let token = idp::access_token(&header, &payload, &key).map_err(|e| e.to_string())?;
    let write = |path: &PathBuf, text: String| {
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write(&a.out, format!("{token}\n"))?;
    write(&a.jwks_out, idp::jwks(&[key.jwk()]))
}

fn run(a: &Args) -> Result<(), String> {
    if let Some(Command::Access(access)) = &a.command {
        return mint_access(access);
    }
    // clap requires both without a subcommand.
    let (Some(dir), Some(out)) = (&a.dir, &a.out) else {
        return Err("--dir and --out are required".into());
    };
    let pair = KeyDir::new(dir)
        .signing_key(None)
        .map_err(|e| format!("key: {e}"))?;
    let header = HeaderFields {
        kid: pair.kid.clone(),
        signer: a.signer.clone(),
        issuer: a.issuer.clone(),
        client: a.client.clone(),
        exp: now_unix() + a.exp_in,
    };
    let claims = Claims::from_json(&format!(
        r#"{{"sub":{sub},"email_verified":"true","email":"bench.user@example.com","given_name":"Bench","family_name":"User","username":{sub}}}"#,
        sub = serde_json::Value::from(a.sub.clone())
    ))
    .map_err(|e| format!("claims: {e}"))?;
    let padding = if a.unpadded {
        Padding::Unpadded
    } else {
        Padding::Padded
    };
    let header_json = header.to_json().map_err(|e| e.to_string())?;
    let payload_json = claims.payload_json(&header).map_err(|e| e.to_string())?;
    let h = padding.encode(header_json.as_bytes());
    let p = padding.encode(payload_json.as_bytes());
    let threads = usize::from(a.threads);
    let per = a.count.div_ceil(threads);
    let chunks: Vec<Result<String, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = per.min(a.count.saturating_sub(t * per));
                let (h, p, key) = (&h, &p, &pair.key);
                s.spawn(move || {
                    let mut out = String::with_capacity(n * 700);
                    for _ in 0..n {
                        let tok = sign_segments(h, p, key, Signing::Randomized, padding)
                            .map_err(|e| e.to_string())?;
                        out.push_str(&tok);
                        out.push('\n');
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("minting thread failed".into()))
            })
            .collect()
    });
    let mut f = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for c in chunks {
        f.write_all(c?.as_bytes()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-mint: {e}");
            ExitCode::from(2)
        }
    }
}
