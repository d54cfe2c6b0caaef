//! Company staff and API keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use vitalfarm_domain::Role;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// Has an account and can sign in.
    Active,
    /// Invited by email; has not completed sign-up (or, for an existing
    /// account, accepted) yet.
    Invited,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "01935c6e-0000-7000-8000-000000000005", "email": "grace@acme.example", "display_name": "Grace Hopper", "role": "analyst", "status": "active", "since": "2026-11-21T10:00:00Z"}))]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub status: MemberStatus,
    /// When the user joined (or was invited to) the membership.
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [{"user_id": "01935c6e-0000-7000-8000-000000000005", "email": "grace@acme.example", "display_name": "Grace Hopper", "role": "analyst", "status": "active", "since": "2026-11-21T10:00:00Z"}],
    "next_cursor": null
}))]
pub struct MemberPage {
    pub items: Vec<Member>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "grace@acme.example", "role": "analyst"}))]
pub struct AddMemberRequest {
    /// Email of an existing user (added at once) or of someone without an
    /// account yet (invited).
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "member": {"user_id": "01935c6e-0000-7000-8000-000000000005", "email": "grace@acme.example", "display_name": "grace", "role": "analyst", "status": "invited", "since": "2026-11-21T10:00:00Z"},
    "invitation_expires_at": "2026-11-28T10:00:00Z"
}))]
pub struct AddMemberResponse {
    pub member: Member,
    /// When the invitation lapses. The invitation goes to the invitee by
    /// mail only (its token would otherwise let the inviter complete an
    /// account for an address they do not own); the answer is the same
    /// whether or not the address has an account.
    pub invitation_expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "admin"}))]
pub struct UpdateMemberRequest {
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ingest pipeline", "role": "developer", "expires_in_days": 90}))]
pub struct CreateApiKeyRequest {
    /// What the key is for, to tell keys apart.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    /// The role the key acts with. Default `developer`.
    #[serde(default)]
    pub role: Option<ApiKeyRole>,
    /// Lifetime in days (1 to 3650); no expiry when omitted.
    #[serde(default, deserialize_with = "crate::serde_num::opt_u32")]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// The roles a key may carry: a key is a machine, never an owner.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyRole {
    Admin,
    Developer,
    Analyst,
    Viewer,
}

impl From<ApiKeyRole> for Role {
    fn from(r: ApiKeyRole) -> Role {
        match r {
            ApiKeyRole::Admin => Role::Admin,
            ApiKeyRole::Developer => Role::Developer,
            ApiKeyRole::Analyst => Role::Analyst,
            ApiKeyRole::Viewer => Role::Viewer,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-000000000006", "name": "ingest pipeline", "role": "developer", "prefix": "vf_key_Zm9v", "created_at": "2026-11-21T10:00:00Z", "expires_at": null, "last_used_at": null, "created_by": {"user_id": "01935c6e-0000-7000-8000-000000000001", "email": "owner@acme.example"}}))]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The member answerable for the key: who created it, or to whom it was
    /// handed when its creator left. A key is revoked when this member
    /// leaves, unless an owner hands it on.
    pub created_by: KeyCreator,
}

/// Who answers for an API key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyCreator {
    pub user_id: Uuid,
    /// `null` when the account no longer exists.
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "key": {"id": "01935c6e-0000-7000-8000-000000000006", "name": "ingest pipeline", "role": "developer", "prefix": "vf_key_Zm9v", "created_at": "2026-11-21T10:00:00Z", "expires_at": null, "last_used_at": null, "created_by": {"user_id": "01935c6e-0000-7000-8000-000000000001", "email": "owner@acme.example"}},
    "secret": "vf_key_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0"
}))]
pub struct CreatedApiKey {
    pub key: ApiKey,
    /// The key itself, to send as `Authorization: Bearer ...`. Shown only
    /// now: vitalfarm stores only its hash.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [{"id": "01935c6e-0000-7000-8000-000000000006", "name": "ingest pipeline", "role": "developer", "prefix": "vf_key_Zm9v", "created_at": "2026-11-21T10:00:00Z", "expires_at": null, "last_used_at": "2026-11-21T11:00:00Z", "created_by": {"user_id": "01935c6e-0000-7000-8000-000000000001", "email": "owner@acme.example"}}],
    "next_cursor": "AZNcbgAAcACAAAAAAAAABg"
}))]
pub struct ApiKeyPage {
    pub items: Vec<ApiKey>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The query of `DELETE /v1/memberships/{mid}/members/{uid}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RemoveMemberQuery {
    /// Hand the API keys the leaving member created to this member (an
    /// owner's decision; the heir's role must cover each key's role).
    /// Without it the keys are revoked with the removal.
    pub reassign_keys_to: Option<Uuid>,
}
