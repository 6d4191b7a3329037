//! What the store reads and writes: users, memberships, changes.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The current time at the precision both backends store (microseconds),
/// so a value read back equals the value written.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// A group membership of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub name: String,
    /// True when managed by the groups claim (added and removed at login);
    /// false when added by an administrator (never removed by a login).
    pub from_oidc: bool,
}

/// A stored user with its groups (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub created_from_oidc: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
    pub groups: Vec<Membership>,
    /// Django's `is_staff`: a flag for the application (and the filter's
    /// `staff` rule); it grants no permission by itself.
    pub is_staff: bool,
    /// Django's `is_superuser`: every permission. Not implicitly staff.
    pub is_superuser: bool,
    /// Profile fields stored from claims, sorted by field name.
    pub profile: Vec<ProfileField>,
}

/// One stored profile field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileField {
    pub name: String,
    pub value: String,
}

/// What a user may do, following Django's `ModelBackend`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Access {
    /// A superuser's "every permission" (then `permissions` is empty).
    pub all: bool,
    /// The effective permissions (own and through groups), sorted, unique.
    pub permissions: Vec<String>,
}

impl UserRecord {
    pub fn group_names(&self) -> Vec<String> {
        self.groups.iter().map(|m| m.name.clone()).collect()
    }
}

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub created_from_oidc: bool,
    pub last_login: Option<DateTime<Utc>>,
    /// Initial groups (deduplicated and sorted by the caller or not: the
    /// store sorts and deduplicates).
    pub groups: Vec<String>,
    /// Whether the initial memberships are managed by the groups claim.
    pub groups_from_oidc: bool,
    /// Initial profile fields (names unique).
    pub profile: Vec<ProfileField>,
}

/// The new state of an existing user after a login.
#[derive(Debug, Clone)]
pub struct UserUpdate {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub updated_at: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
    /// Groups to add as claim-managed memberships.
    pub add_groups: Vec<String>,
    /// Claim-managed memberships to remove (administrator ones are kept).
    pub remove_groups: Vec<String>,
    /// Profile fields to write (insert or replace).
    pub set_profile: Vec<ProfileField>,
    /// Profile fields to delete.
    pub remove_profile: Vec<String>,
}

/// Result of an administrator group change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupChange {
    Added,
    /// Already a member (a claim-managed membership becomes administrator-managed).
    AlreadyMember,
    Removed,
    NotMember,
}

/// A change of the Django flags; `None` leaves a flag as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserFlags {
    pub staff: Option<bool>,
    pub superuser: Option<bool>,
}

/// Result of granting or revoking a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PermChange {
    Granted,
    AlreadyGranted,
    Revoked,
    NotGranted,
}

/// A group with its member and permission counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSummary {
    pub name: String,
    /// Members whose membership comes from a claim (data or access token).
    pub claim_members: i64,
    /// Members added by an administrator.
    pub admin_members: i64,
    pub permissions: Vec<String>,
}
