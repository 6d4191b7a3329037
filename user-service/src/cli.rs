//! Command line and environment settings.

use std::ffi::OsStr;
use std::net::SocketAddr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::auth::Policy;
use crate::profile::{parse_profile_claims, ProfileClaim};

#[derive(Debug, Parser)]
#[command(
    name = "alb-oidc-user-service",
    version,
    about = "User service for the alb-oidc Envoy filter: maps verified ALB OIDC identities to persistent users over gRPC",
    propagate_version = true
)]
pub struct Cli {
    /// Database: a SQLite file path, a sqlite:// URL, or a postgres:// URL.
    #[arg(
        long,
        global = true,
        env = "ALB_OIDC_DATABASE_URL",
        default_value = "users.db",
        value_name = "URL"
    )]
    pub database: String,

    /// Bound on connecting to the database, in seconds.
    #[arg(
        long,
        global = true,
        env = "ALB_OIDC_DB_CONNECT_TIMEOUT",
        default_value_t = 5,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=300)
    )]
    pub db_connect_timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC service.
    Serve(ServeArgs),
    /// Inspect and administer users.
    Users(UsersArgs),
    /// Add and remove group memberships; list groups.
    Groups(GroupsArgs),
    /// Grant, revoke and list permissions (Django's `app_label.codename`).
    Perms(PermsArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (gRPC over plaintext HTTP/2).
    #[arg(
        long,
        env = "ALB_OIDC_LISTEN",
        default_value = "127.0.0.1:50051",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,

    /// Create unknown users on first login (Django AMZN_OIDC_AUTO_CREATE_USERS).
    #[arg(long, env = "ALB_OIDC_AUTO_CREATE_USERS", value_name = "BOOL",
          default_value = "true", num_args = 0..=1, default_missing_value = "true",
          value_parser = StrictBool)]
    pub auto_create_users: bool,

    /// Let OIDC logins use existing accounts that were not created from OIDC
    /// (Django AMZN_OIDC_LINK_EXISTING_USERS).
    #[arg(long, env = "ALB_OIDC_LINK_EXISTING_USERS", value_name = "BOOL",
          default_value = "false", num_args = 0..=1, default_missing_value = "true",
          value_parser = StrictBool)]
    pub link_existing_users: bool,

    /// Store an email only when email_verified is true (Django AMZN_OIDC_REQUIRE_VERIFIED_EMAIL).
    #[arg(long, env = "ALB_OIDC_REQUIRE_VERIFIED_EMAIL", value_name = "BOOL",
          default_value = "true", num_args = 0..=1, default_missing_value = "true",
          value_parser = StrictBool)]
    pub require_verified_email: bool,

    /// Claim holding the first name (Django AMZN_OIDC_FIRST_NAME_CLAIM).
    #[arg(
        long,
        env = "ALB_OIDC_FIRST_NAME_CLAIM",
        default_value = "given_name",
        value_name = "CLAIM"
    )]
    pub first_name_claim: String,

    /// Claim holding the last name (Django AMZN_OIDC_LAST_NAME_CLAIM).
    #[arg(
        long,
        env = "ALB_OIDC_LAST_NAME_CLAIM",
        default_value = "family_name",
        value_name = "CLAIM"
    )]
    pub last_name_claim: String,

    /// Claim the user's groups are synced from at each login (array of
    /// strings, or a comma/space separated string). Unset: groups are not
    /// touched by logins.
    #[arg(long, env = "ALB_OIDC_GROUPS_CLAIM", value_name = "CLAIM")]
    pub groups_claim: Option<String>,

    /// Claims stored as profile fields at each login, as
    /// `claim=field,claim=field` (at most 32; field names match
    /// `^[a-z][a-z0-9_]{0,63}$`), e.g.
    /// `custom:department=department,custom:employee_id=employee_id`.
    #[arg(
        long,
        env = "ALB_OIDC_PROFILE_CLAIMS",
        value_name = "CLAIM=FIELD,...",
        value_parser = profile_claims_arg
    )]
    pub profile_claims: Option<ProfileClaims>,

    /// Database pool size (SQLite: reader connections; there is always one writer).
    #[arg(
        long,
        env = "ALB_OIDC_DB_MAX_CONNECTIONS",
        default_value_t = 8,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub db_max_connections: u32,

    /// After SIGTERM/SIGINT, how long in-flight calls may take before the
    /// process exits anyway, in seconds.
    #[arg(
        long,
        env = "ALB_OIDC_SHUTDOWN_TIMEOUT",
        default_value_t = 20,
        value_name = "SECONDS"
    )]
    pub shutdown_timeout: u64,

    /// Log format (the level comes from RUST_LOG, default info).
    #[arg(
        long,
        env = "ALB_OIDC_LOG_FORMAT",
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
}

impl ServeArgs {
    pub fn policy(&self) -> Policy {
        Policy {
            auto_create_users: self.auto_create_users,
            link_existing_users: self.link_existing_users,
            require_verified_email: self.require_verified_email,
            first_name_claim: self.first_name_claim.clone(),
            last_name_claim: self.last_name_claim.clone(),
            groups_claim: self.groups_claim.clone().filter(|c| !c.trim().is_empty()),
            profile_claims: self
                .profile_claims
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_default(),
        }
    }
}

/// The parsed `--profile-claims` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileClaims(pub Vec<ProfileClaim>);

fn profile_claims_arg(spec: &str) -> Result<ProfileClaims, String> {
    parse_profile_claims(spec).map(ProfileClaims).map_err(|e| {
        format!("{e} (--profile-claims, environment variable ALB_OIDC_PROFILE_CLAIMS)")
    })
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List all users.
    List,
    /// Show one user with its groups.
    Show { username: String },
    /// Allow a user to log in again.
    Activate { username: String },
    /// Refuse a user's logins (INACTIVE) without deleting it.
    Deactivate { username: String },
    /// Create a local (non-OIDC) account. OIDC logins to it are refused
    /// unless linking existing users is on.
    CreateLocal {
        username: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        /// Group to add (repeatable).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Create the account deactivated.
        #[arg(long)]
        inactive: bool,
    },
    /// Set Django's flags: staff (for the application and the filter's
    /// `staff` rule) and superuser (every permission; not implicitly staff).
    #[command(group(
        ArgGroup::new("flags")
            .required(true)
            .multiple(true)
            .args(["staff", "no_staff", "superuser", "no_superuser"])
    ))]
    Set {
        username: String,
        #[arg(long, conflicts_with = "no_staff")]
        staff: bool,
        #[arg(long)]
        no_staff: bool,
        #[arg(long, conflicts_with = "no_superuser")]
        superuser: bool,
        #[arg(long)]
        no_superuser: bool,
    },
}

#[derive(Debug, Args)]
pub struct GroupsArgs {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: GroupsCommand,
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Add USER to GROUP (administrator-managed: logins never remove it).
    Add { username: String, group: String },
    /// Remove USER from GROUP.
    Remove { username: String, group: String },
    /// List every group with its members and permissions.
    List,
}

#[derive(Debug, Args)]
pub struct PermsArgs {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: PermsCommand,
}

/// Exactly one of a user and a group.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct Grantee {
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// A group; granting to a group that does not exist yet creates it.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

/// At most one of a user and a group.
#[derive(Debug, Clone, Args)]
#[group(required = false, multiple = false)]
pub struct PermsFilter {
    /// The user's effective permissions (own and through groups).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The group's permissions.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PermsCommand {
    /// Grant PERM (`app_label.codename`) to a user or a group.
    Grant {
        permission: String,
        #[command(flatten)]
        to: Grantee,
    },
    /// Revoke PERM from a user or a group.
    Revoke {
        permission: String,
        #[command(flatten)]
        from: Grantee,
    },
    /// List every grant, or one user's effective permissions, or one group's.
    List {
        #[command(flatten)]
        of: PermsFilter,
    },
}

/// Booleans from flags and environment variables: exactly `true`, `false`,
/// `1` or `0`; anything else is a start-up error naming the flag and the
/// environment variable.
#[derive(Debug, Clone, Copy)]
pub struct StrictBool;

impl TypedValueParser for StrictBool {
    type Value = bool;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<bool, clap::Error> {
        match value.to_str() {
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            _ => {
                let flag = arg
                    .and_then(|a| a.get_long())
                    .map(|l| format!("--{l}"))
                    .unwrap_or_else(|| "a boolean setting".to_owned());
                let env = arg
                    .and_then(|a| a.get_env())
                    .map(|e| format!(" (environment variable {})", e.to_string_lossy()))
                    .unwrap_or_default();
                Err(clap::Error::raw(
                    ErrorKind::InvalidValue,
                    format!(
                        "invalid value {:?} for {flag}{env}: expected true, false, 1 or 0\n",
                        value.to_string_lossy()
                    ),
                )
                .with_cmd(cmd))
            }
        }
    }
}
