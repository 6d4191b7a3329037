//! Mints benchmark tokens in the ALB format through alb-sim's library.
//!
//! `bench-mint --dir KEYDIR --count N [--unpadded] [--exp-in S] [--threads T]
//!  [--signer ARN] [--issuer URL] [--client ID] [--sub SUB] --out FILE`
//!
//! Every token is distinct (randomized ECDSA signatures, as the ALB's). With
//! `--unpadded` every segment is base64url without `=` padding (what JWT
//! libraries such as Envoy's `jwt_authn` expect); the signature then covers the
//! unpadded text, so such tokens are as valid as the ALB's padded ones.

use alb_sim::keys::KeyDir;
use alb_sim::token::{now_unix, sign_encoded, Claims, HeaderFields};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::io::Write;
use std::process::ExitCode;

struct Args {
    dir: String,
    count: usize,
    unpadded: bool,
    exp_in: i64,
    threads: usize,
    signer: String,
    issuer: String,
    client: String,
    sub: String,
    out: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        dir: String::new(),
        count: 1,
        unpadded: false,
        exp_in: 7200,
        threads: 2,
        signer: "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/bench/0123456789abcdef".into(),
        issuer: "https://idp.alb-sim.local".into(),
        client: "alb-sim-client".into(),
        sub: "bench-user".into(),
        out: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--unpadded" {
            a.unpadded = true;
            continue;
        }
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<i64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--dir" => a.dir = val,
            "--count" => a.count = num(&val)? as usize,
            "--exp-in" => a.exp_in = num(&val)?,
            "--threads" => a.threads = (num(&val)? as usize).max(1),
            "--signer" => a.signer = val,
            "--issuer" => a.issuer = val,
            "--client" => a.client = val,
            "--sub" => a.sub = val,
            "--out" => a.out = val,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.dir.is_empty() || a.out.is_empty() {
        return Err("--dir and --out are required".into());
    }
    Ok(a)
}

fn run(a: &Args) -> Result<(), String> {
    let pair = KeyDir::new(&a.dir)
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
    let header_json = header.to_json().map_err(|e| e.to_string())?;
    let payload_json = claims.payload_json(&header).map_err(|e| e.to_string())?;
    let (h, p) = if a.unpadded {
        (
            URL_SAFE_NO_PAD.encode(header_json.as_bytes()),
            URL_SAFE_NO_PAD.encode(payload_json.as_bytes()),
        )
    } else {
        (
            alb_sim::token::b64(header_json.as_bytes()),
            alb_sim::token::b64(payload_json.as_bytes()),
        )
    };
    let per = a.count.div_ceil(a.threads);
    let chunks: Vec<Result<String, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.threads)
            .map(|t| {
                let n = per.min(a.count.saturating_sub(t * per));
                let (h, p, key, unpadded) = (&h, &p, &pair.key, a.unpadded);
                s.spawn(move || {
                    let mut out = String::with_capacity(n * 700);
                    for _ in 0..n {
                        let tok = sign_encoded(h, p, key).map_err(|e| e.to_string())?;
                        // sign_encoded pads the signature segment; the signed
                        // text is `h.p`, so only the third segment changes.
                        out.push_str(if unpadded {
                            tok.trim_end_matches('=')
                        } else {
                            &tok
                        });
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
    let mut f = std::fs::File::create(&a.out).map_err(|e| format!("{}: {e}", a.out))?;
    for c in chunks {
        f.write_all(c?.as_bytes()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-mint: {e}");
            ExitCode::from(2)
        }
    }
}
