//! `alb-sim`: command-line front end of the local ALB stand-in (see README.md).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use serde_json::Value;
use tokio::net::TcpListener;

use alb_oidc_testkit::token::{self, Claims, HeaderFields};
use alb_sim::identities::{Identities, ANONYMOUS};
use alb_sim::idp::IdpKeyDir;
use alb_sim::keys::KeyDir;
use alb_sim::keyserver::KeyServer;
use alb_sim::proxy::{Proxy, ProxyConfig};
use alb_sim::{Error, Result};

mod cli;
#[cfg(feature = "check-config")]
use cli::CheckConfigArgs;
use cli::{
    Cli, Cmd, IdpKeysCmd, IdpOpts, KeyServeOpts, KeysCmd, MintArgs, ProxyArgs, ProxyOpts, RunArgs,
    ServeKeysArgs,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alb-sim: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Keys { cmd } => keys_cmd(cmd),
        Cmd::IdpKeys { cmd } => idp_keys_cmd(cmd),
        Cmd::Mint(args) => mint_cmd(args),
        Cmd::MintBatch => mint_batch_cmd(),
        Cmd::ServeKeys(args) => block_on(serve_keys_cmd(args)),
        Cmd::Proxy(args) => block_on(proxy_cmd(args)),
        Cmd::Run(args) => block_on(run_cmd(args)),
        #[cfg(feature = "check-config")]
        Cmd::CheckConfig(args) => check_config_cmd(args),
    }
}

#[cfg(feature = "check-config")]
/// Loads the configuration exactly as the filter does
/// (`alb_oidc::flow::load_config`), so a config is refused here exactly when
/// Envoy would refuse it.
fn check_config_cmd(args: CheckConfigArgs) -> Result<()> {
    let source = args.file.unwrap_or_else(|| "-".to_owned());
    let bytes = if source == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("reading the configuration from stdin", e))?;
        bytes
    } else {
        std::fs::read(&source).map_err(|e| Error::io_path("reading", Path::new(&source), e))?
    };
    let config = alb_oidc::flow::load_config(&bytes).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "OK region={} key_cluster={} key_authority={} user_service={}",
        config.region,
        config.key_cluster,
        config.key_authority,
        config
            .user_service
            .as_ref()
            .map_or("none", |u| u.cluster.as_str())
    )
    .map_err(|e| Error::io("writing to stdout", e))
}

fn keys_cmd(cmd: KeysCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let w = |e| Error::io("writing to stdout", e);
    match cmd {
        KeysCmd::Generate {
            dir,
            count,
            if_missing,
        } => {
            let keys = KeyDir::new(&dir);
            if if_missing && !keys.list()?.is_empty() {
                let current = keys.current()?.unwrap_or_default();
                eprintln!(
                    "alb-sim: {} already holds keys (current {current}); nothing generated",
                    dir.display()
                );
                return Ok(());
            }
            for kid in keys.generate(count)? {
                writeln!(out, "{kid}").map_err(w)?;
            }
        }
        KeysCmd::List { dir } => {
            let keys = KeyDir::new(&dir);
            let current = keys.current()?;
            for kid in keys.list()? {
                if current.as_deref() == Some(kid.as_str()) {
                    writeln!(out, "{kid} current").map_err(w)?;
                } else {
                    writeln!(out, "{kid}").map_err(w)?;
                }
            }
        }
        KeysCmd::Current { dir } => {
            let keys = KeyDir::new(&dir);
            let kid = keys
                .current()?
                .ok_or_else(|| Error::Invalid(format!("no keys in {}", dir.display())))?;
            writeln!(out, "{kid}").map_err(w)?;
        }
        KeysCmd::Use { dir, kid } => KeyDir::new(&dir).set_current(&kid)?,
        KeysCmd::Public { dir, kid } => {
            let pair = KeyDir::new(&dir).signing_key(kid.as_deref())?;
            write!(out, "{}", pair.public_pem()?).map_err(w)?;
        }
    }
    out.flush().map_err(w)
}

fn idp_keys_cmd(cmd: IdpKeysCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let w = |e| Error::io("writing to stdout", e);
    match cmd {
        IdpKeysCmd::Generate {
            dir,
            count,
            if_missing,
        } => {
            let keys = IdpKeyDir::new(&dir);
            if if_missing && !keys.list()?.is_empty() {
                eprintln!(
                    "alb-sim: {} already holds IdP keys; nothing generated",
                    dir.display()
                );
                return Ok(());
            }
            for kid in keys.generate(count)? {
                writeln!(out, "{kid}").map_err(w)?;
            }
        }
        IdpKeysCmd::List { dir } => {
            let keys = IdpKeyDir::new(&dir);
            let current = keys.current()?;
            for kid in keys.list()? {
                let mark = if current.as_deref() == Some(kid.as_str()) {
                    " current"
                } else {
                    ""
                };
                writeln!(out, "{kid}{mark}").map_err(w)?;
            }
        }
        IdpKeysCmd::Current { dir } => {
            let kid = IdpKeyDir::new(&dir)
                .current()?
                .ok_or_else(|| Error::Invalid(format!("no IdP keys in {}", dir.display())))?;
            writeln!(out, "{kid}").map_err(w)?;
        }
        IdpKeysCmd::Use { dir, kid } => IdpKeyDir::new(&dir).set_current(&kid)?,
        IdpKeysCmd::Remove { dir, kid } => IdpKeyDir::new(&dir).remove(&kid)?,
        IdpKeysCmd::Jwks { dir } => writeln!(out, "{}", IdpKeyDir::new(&dir).jwks()?).map_err(w)?,
    }
    out.flush().map_err(w)
}

/// The IdP key directory of `dir` (`--idp-dir`, else `<dir>/idp`), with a
/// key generated when it holds none, so the proxy always has one to sign with.
fn idp_dir(dir: &Path, opts: &IdpOpts) -> Result<IdpKeyDir> {
    let idp = IdpKeyDir::new(opts.idp_dir.clone().unwrap_or_else(|| dir.join("idp")));
    if let Some(kid) = idp.generate_if_missing()? {
        eprintln!(
            "alb-sim: generated IdP key {kid} in {}",
            idp.path().display()
        );
    }
    Ok(idp)
}

/// Parses `key=value` (string) or `key:=json`.
fn parse_claim(arg: &str) -> Result<(String, Value)> {
    let bad = |why: String| Error::Invalid(format!("--claim {arg:?}: {why}"));
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected key=value or key:=json".into()))?;
    let (key, value) = match key.strip_suffix(':') {
        Some(key) => (
            key,
            serde_json::from_str(value).map_err(|e| bad(format!("bad JSON: {e}")))?,
        ),
        None => (key, Value::String(value.to_owned())),
    };
    if key.is_empty() {
        return Err(bad("empty claim name".into()));
    }
    Ok((key.to_owned(), value))
}

fn read_claims_json(source: &str) -> Result<Claims> {
    let text = if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::io("reading claims from stdin", e))?;
        text
    } else {
        std::fs::read_to_string(source)
            .map_err(|e| Error::io_path("reading", Path::new(source), e))?
    };
    Claims::from_json(&text).map_err(|e| Error::Invalid(format!("--claims-json {source}: {e}")))
}

fn mint_cmd(args: MintArgs) -> Result<()> {
    let keys = KeyDir::new(&args.dir);
    let pair = keys.signing_key(args.token.kid.as_deref())?;

    let mut claims = Claims::new();
    if let Some(user) = &args.user {
        let identities = Identities::load_or_builtin(args.identities.as_deref())?;
        let found = identities.get(user).ok_or_else(|| {
            Error::Invalid(format!(
                "--user {user:?}: unknown identity (known: {})",
                identities.names().collect::<Vec<_>>().join(", ")
            ))
        })?;
        claims.merge(found);
    }
    if let Some(source) = &args.claims_json {
        claims.merge(&read_claims_json(source)?);
    }
    for arg in &args.claims {
        let (key, value) = parse_claim(arg)?;
        claims.insert(key, value);
    }

    let mut out = BufWriter::new(std::io::stdout().lock());
    let w = |e| Error::io("writing to stdout", e);
    for _ in 0..args.count {
        let header = HeaderFields {
            kid: pair.kid.clone(),
            signer: args.token.signer.clone(),
            issuer: args.token.issuer.clone(),
            client: args.token.client.clone(),
            exp: token::now_unix().saturating_add(args.token.exp_in),
        };
        if let Some(name) = &args.nonce_claim {
            claims.insert(
                name.clone(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
        }
        let token = if args.deterministic {
            token::mint_deterministic(&claims, &header, &pair.key)?
        } else {
            token::mint(&claims, &header, &pair.key)?
        };
        out.write_all(token.as_bytes()).map_err(w)?;
        out.write_all(b"\n").map_err(w)?;
    }
    out.flush().map_err(w)
}

/// One answer line per request line. Answers are flushed whenever no
/// further request is already buffered, so a caller may send one request
/// at a time and wait (a long-lived co-process) or pipe many (a batch).
fn mint_batch_cmd() -> Result<()> {
    // Our own buffer: `buffer()` tells, without blocking, whether another
    // request is already waiting.
    let mut input = BufReader::new(std::io::stdin());
    let mut out = BufWriter::new(std::io::stdout().lock());
    let w = |e| Error::io("writing to stdout", e);
    let mut line = String::new();
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .map_err(|e| Error::io("reading requests from stdin", e))?;
        if read == 0 {
            break;
        }
        let answer = alb_oidc_testkit::batch::answer_line(line.trim_end_matches(['\n', '\r']));
        out.write_all(answer.as_bytes()).map_err(w)?;
        out.write_all(b"\n").map_err(w)?;
        if input.buffer().is_empty() {
            out.flush().map_err(w)?;
        }
    }
    out.flush().map_err(w)
}

fn block_on(fut: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?
        .block_on(fut)
}

async fn bind(addr: &str, what: &str) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("{what}: binding {addr}"), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io(format!("{what}: local address"), e))?;
    Ok((listener, local))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed
/// when this is called, not when the future is first polled: callers call it
/// before they announce that they listen, so a signal sent right after the
/// announcement shuts down cleanly rather than meeting the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            tokio::select! {
                () = received(interrupt.as_mut()) => {}
                () = received(terminate.as_mut()) => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        eprintln!("alb-sim: shutting down");
    }
}

/// A signal's next delivery; never, for a handler that could not be installed.
#[cfg(unix)]
async fn received(sig: Option<&mut tokio::signal::unix::Signal>) {
    match sig {
        Some(sig) => {
            sig.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

fn key_server(dir: &Path, idp: IdpKeyDir, opts: &KeyServeOpts) -> KeyServer {
    KeyServer::new(KeyDir::new(dir), &opts.path_prefix, opts.quiet).with_jwks(idp, &opts.jwks_path)
}

fn jwks_banner(local: SocketAddr, server: &KeyServer, idp: &Path) {
    if let Some(path) = server.jwks_path() {
        eprintln!(
            "alb-sim: serving the IdP key set from {} at http://{local}{path}",
            idp.display()
        );
    }
}

async fn serve_keys_cmd(args: ServeKeysArgs) -> Result<()> {
    let idp = idp_dir(&args.dir, &args.idp)?;
    let idp_path = idp.path().to_owned();
    let server = key_server(&args.dir, idp, &args.keys);
    let shutdown = shutdown_signal();
    let (listener, local) = bind(&args.listen, "serve-keys").await?;
    eprintln!(
        "alb-sim: serving keys from {} at http://{local}{}<kid>",
        args.dir.display(),
        server.prefix()
    );
    jwks_banner(local, &server, &idp_path);
    server.serve(listener, shutdown).await;
    Ok(())
}

fn build_proxy(dir: &Path, idp: IdpKeyDir, opts: ProxyOpts, quiet: bool) -> Result<Proxy> {
    let identities = Identities::load_or_builtin(opts.identities.as_deref())?;
    let default_user = match opts.default_user {
        Some(user) => user,
        None => identities.first_name().unwrap_or(ANONYMOUS).to_owned(),
    };
    Proxy::new(ProxyConfig {
        keys: KeyDir::new(dir),
        kid: opts.token.kid,
        upstream: opts.upstream,
        signer: opts.token.signer,
        issuer: opts.token.issuer,
        client: opts.token.client,
        exp_in: opts.token.exp_in,
        idp,
        access_token_exp_in: opts.access_token_exp_in,
        identities,
        default_user,
        quiet,
    })
}

fn proxy_banner(local: SocketAddr, upstream: &str) {
    eprintln!(
        "alb-sim: proxy at http://{local} -> {upstream} (pick an identity with `x-alb-sim-user: NAME`)"
    );
}

async fn proxy_cmd(args: ProxyArgs) -> Result<()> {
    let upstream = args.proxy.upstream.clone();
    let idp = idp_dir(&args.dir, &args.idp)?;
    let proxy = build_proxy(&args.dir, idp, args.proxy, args.quiet)?;
    let shutdown = shutdown_signal();
    let (listener, local) = bind(&args.listen, "proxy").await?;
    proxy_banner(local, &upstream);
    proxy.serve(listener, shutdown).await;
    Ok(())
}

async fn run_cmd(args: RunArgs) -> Result<()> {
    let keys = KeyDir::new(&args.dir);
    if let Some(kid) = keys.generate_if_missing()? {
        eprintln!("alb-sim: generated key {kid} in {}", args.dir.display());
    }
    let upstream = args.proxy.upstream.clone();
    let idp = idp_dir(&args.dir, &args.idp)?;
    let idp_path = idp.path().to_owned();
    let proxy = build_proxy(&args.dir, idp.clone(), args.proxy, args.keys.quiet)?;
    let server = key_server(&args.dir, idp, &args.keys);
    let shutdown = shutdown_signal();
    let (keys_listener, keys_local) = bind(&args.keys_listen, "keys").await?;
    let (proxy_listener, proxy_local) = bind(&args.proxy_listen, "proxy").await?;
    eprintln!(
        "alb-sim: serving keys from {} at http://{keys_local}{}<kid>",
        args.dir.display(),
        server.prefix()
    );
    jwks_banner(keys_local, &server, &idp_path);
    proxy_banner(proxy_local, &upstream);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        // Err: the sender is gone, which also means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let keys_task = tokio::spawn(server.serve(keys_listener, stopped(stop_rx.clone())));
    let proxy_task = tokio::spawn(proxy.serve(proxy_listener, stopped(stop_rx)));
    shutdown.await;
    let _ = stop_tx.send(true);
    let (keys_done, proxy_done) = tokio::join!(keys_task, proxy_task);
    for done in [keys_done, proxy_done] {
        done.map_err(|e| Error::Invalid(format!("server task failed: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn claim_syntax() {
        assert_eq!(
            parse_claim("email_verified=true").unwrap(),
            ("email_verified".into(), Value::from("true"))
        );
        assert_eq!(
            parse_claim("custom:groups=admin,staff").unwrap(),
            ("custom:groups".into(), Value::from("admin,staff"))
        );
        assert_eq!(
            parse_claim("groups:=[\"a\",\"b\"]").unwrap(),
            ("groups".into(), serde_json::json!(["a", "b"]))
        );
        assert_eq!(parse_claim("n:=5").unwrap(), ("n".into(), Value::from(5)));
        assert_eq!(parse_claim("e=").unwrap(), ("e".into(), Value::from("")));
        assert!(parse_claim("novalue").is_err());
        assert!(parse_claim("=x").is_err());
        assert!(parse_claim("n:=nojson").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
