//! The command line of `alb-sim` (see README.md).

use std::path::PathBuf;

use alb_oidc_testkit::token::DEFAULT_EXP_IN;
use alb_sim::idp::{DEFAULT_ACCESS_TOKEN_EXP_IN, DEFAULT_JWKS_PATH};
use clap::{Args, Parser, Subcommand};

const DEFAULT_ISSUER: &str = "https://idp.alb-sim.local";
const DEFAULT_CLIENT: &str = "alb-sim-client";

#[derive(Parser, Debug)]
#[command(
    name = "alb-sim",
    version,
    about = "Local AWS ALB stand-in: ES256 keys, the key endpoint, ALB-format tokens and an injecting reverse proxy"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Manage signing keys (one `<kid>.pem` per key, plus a `current` file).
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Manage the IdP's RSA keys, which sign access tokens (same layout as `keys`).
    IdpKeys {
        #[command(subcommand)]
        cmd: IdpKeysCmd,
    },
    /// Serve public keys like the ALB key endpoint: GET <prefix><kid> -> PEM,
    /// and the IdP's key set (GET /idp/jwks.json).
    ServeKeys(ServeKeysArgs),
    /// Print signed tokens in the ALB's x-amzn-oidc-data format, one per line.
    Mint(MintArgs),
    /// Answer JSON-lines mint requests from stdin, one JSON line each, in
    /// order (how the end-to-end tests mint; protocol: alb_oidc_testkit::batch).
    MintBatch,
    /// Reverse proxy that injects freshly minted x-amzn-oidc-* headers.
    Proxy(ProxyArgs),
    /// keys generate --if-missing + serve-keys + proxy, in one process.
    Run(RunArgs),
    /// Check a filter configuration (JSON) with the filter's own parser: prints OK or the error.
    #[cfg(feature = "check-config")]
    CheckConfig(CheckConfigArgs),
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Generate ES256 key pairs with UUID v4 kids; the last one becomes current.
    Generate {
        /// Key directory (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Number of keys to generate.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Do nothing when the directory already holds a key.
        #[arg(long)]
        if_missing: bool,
    },
    /// List kids, marking the current one.
    List {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print the current signing kid.
    Current {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Make KID the current signing key (a running proxy picks it up).
    Use {
        #[arg(long)]
        dir: PathBuf,
        kid: String,
    },
    /// Print the public key PEM of KID (default: the current key).
    Public {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        kid: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum IdpKeysCmd {
    /// Generate RSA (2048-bit) keys with UUID v4 kids; the last one becomes
    /// current. The others stay in the key set: a rotation.
    Generate {
        /// IdP key directory (created if missing), e.g. <keys dir>/idp.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Do nothing when the directory already holds a key.
        #[arg(long)]
        if_missing: bool,
    },
    /// List kids, marking the current one.
    List {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print the current signing kid.
    Current {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Make KID the current signing key (a running proxy picks it up).
    Use {
        #[arg(long)]
        dir: PathBuf,
        kid: String,
    },
    /// Remove KID from the key set (not the current key): the end of a rotation.
    Remove {
        #[arg(long)]
        dir: PathBuf,
        kid: String,
    },
    /// Print the key set (JWKS) as the key endpoint serves it.
    Jwks {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct IdpOpts {
    /// The IdP's key directory (default: <dir>/idp; one key is generated if it holds none).
    #[arg(long)]
    pub idp_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeKeysArgs {
    /// Key directory.
    #[arg(long)]
    pub dir: PathBuf,
    #[command(flatten)]
    pub idp: IdpOpts,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: String,
    #[command(flatten)]
    pub keys: KeyServeOpts,
}

#[derive(Args, Debug)]
pub struct KeyServeOpts {
    /// Path prefix before the kid, e.g. /aws-elb-public-keys-prod-us-gov-west-1/ for GovCloud.
    #[arg(long, default_value = "/")]
    pub path_prefix: String,
    /// Path of the IdP's key set (the filter's access_token.jwks_path).
    #[arg(long, default_value = DEFAULT_JWKS_PATH)]
    pub jwks_path: String,
    /// Do not log each request.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct TokenOpts {
    /// ALB ARN put in the header `signer`.
    #[arg(long)]
    pub signer: String,
    /// Issuer put in the header and payload `iss`.
    #[arg(long, default_value = DEFAULT_ISSUER)]
    pub issuer: String,
    /// OIDC client id put in the header `client`.
    #[arg(long, default_value = DEFAULT_CLIENT)]
    pub client: String,
    /// Token lifetime in seconds (negative: already expired).
    #[arg(long, default_value_t = DEFAULT_EXP_IN, allow_negative_numbers = true)]
    pub exp_in: i64,
    /// Sign with this kid (default: the directory's current key).
    #[arg(long)]
    pub kid: Option<String>,
}

#[derive(Args, Debug)]
pub struct MintArgs {
    /// Key directory.
    #[arg(long)]
    pub dir: PathBuf,
    #[command(flatten)]
    pub token: TokenOpts,
    /// Start from this identity's claims (see --identities).
    #[arg(long)]
    pub user: Option<String>,
    /// Identities file for --user (default: the built-in alice, bob, carol).
    #[arg(long)]
    pub identities: Option<PathBuf>,
    /// Claims JSON object from FILE, or `-` for stdin (applied after --user).
    #[arg(long, value_name = "FILE|-")]
    pub claims_json: Option<String>,
    /// One claim: `key=value` (string) or `key:=json` (any JSON value); repeatable, applied last.
    #[arg(long = "claim", value_name = "KEY=VALUE|KEY:=JSON")]
    pub claims: Vec<String>,
    /// Number of tokens to print (each one distinct: randomized signatures).
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Also put a random UUID in this claim of each token, so payloads differ too.
    #[arg(long, value_name = "NAME")]
    pub nonce_claim: Option<String>,
    /// Deterministic RFC 6979 signatures (same input, same token).
    #[arg(long)]
    pub deterministic: bool,
}

#[derive(Args, Debug)]
pub struct ProxyOpts {
    /// Upstream to forward to, http://host:port (e.g. Envoy's listener).
    #[arg(long)]
    pub upstream: String,
    #[command(flatten)]
    pub token: TokenOpts,
    /// Identities file: {"name": {claims}, ...} (default: built-in alice, bob, carol).
    #[arg(long)]
    pub identities: Option<PathBuf>,
    /// Identity used when a request has no x-alb-sim-user header
    /// (default: the first identity; `anonymous` for no token).
    #[arg(long)]
    pub default_user: Option<String>,
    /// Access-token lifetime in seconds (a token is reused for half of it).
    #[arg(long, default_value_t = DEFAULT_ACCESS_TOKEN_EXP_IN)]
    pub access_token_exp_in: i64,
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Key directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub idp: IdpOpts,
    #[command(flatten)]
    pub proxy: ProxyOpts,
    /// Do not log each request.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Key directory (one key is generated if it holds none).
    #[arg(long)]
    pub dir: PathBuf,
    /// Address of the key endpoint.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub keys_listen: String,
    /// Address of the proxy.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub proxy_listen: String,
    #[command(flatten)]
    pub idp: IdpOpts,
    #[command(flatten)]
    pub proxy: ProxyOpts,
    #[command(flatten)]
    pub keys: KeyServeOpts,
}

#[cfg(feature = "check-config")]
#[derive(Args, Debug)]
pub struct CheckConfigArgs {
    /// The filter configuration as JSON (Envoy `configuration` value, Istio
    /// `pluginConfig` converted to JSON); `-` or nothing reads stdin.
    #[arg(value_name = "FILE|-")]
    pub file: Option<String>,
}
