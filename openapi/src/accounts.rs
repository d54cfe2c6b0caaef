//! Sign-up, sign-in, tokens, the current user and memberships.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use vitalfarm_domain::{MembershipKind, Role};

// Names (display names, membership and key names) carry the same schema
// pattern: 1 to 200 characters, not only spaces, no control characters. The
// server checks the same rule in `check_name`.

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "email": "ada@example.org",
    "password": "correct horse battery staple",
    "display_name": "Ada Lovelace",
    "membership": {"kind": "individual", "name": "Ada's health"}
}))]
pub struct SignupRequest {
    /// The sign-in email; compared case-insensitively.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// At least 10 characters, and not the email address.
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub display_name: String,
    /// The membership to create, owned by the new user.
    pub membership: NewMembership,
}

/// Completes the account of someone a company invited.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "invitation_token": "vf_inv_b3BlbiBzZXNhbWU...",
    "password": "correct horse battery staple",
    "display_name": "Grace Hopper"
}))]
pub struct AcceptInvitationRequest {
    /// The token the invitation returned.
    #[schema(min_length = 1, max_length = 512)]
    pub invitation_token: String,
    /// At least 10 characters, and not the email address.
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMembership {
    pub kind: MembershipKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "user": {"id": "01935c6e-0000-7000-8000-000000000001", "email": "ada@example.org", "email_verified": true, "display_name": "Ada Lovelace", "created_at": "2026-11-21T10:00:00Z"},
    "membership": {"id": "01935c6e-0000-7000-8000-000000000002", "kind": "individual", "name": "Ada's health", "farm_id": "01935c6e-0000-7000-8000-000000000003", "created_at": "2026-11-21T10:00:00Z"},
    "self_subject_id": "01935c6e-0000-7000-8000-000000000004",
    "tokens": {"access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6IjNmMWM5YTBiNTJkNGU2YTcifQ...", "refresh_token": "vf_rt_Q2hhbmdlIG1lIQ...", "token_type": "Bearer", "expires_in": 900}
}))]
pub struct SignupResponse {
    pub user: User,
    /// The membership created (or, for an accepted invitation, the one
    /// joined).
    pub membership: Membership,
    /// For an individual: the `self` subject that records their own data.
    pub self_subject_id: Option<Uuid>,
    /// Tokens for the new user, so no separate login is needed.
    pub tokens: TokenResponse,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.org", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    #[schema(min_length = 1, max_length = 254)]
    pub email: String,
    #[schema(max_length = 1024)]
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "vf_rt_Q2hhbmdlIG1lIQ..."}))]
pub struct RefreshRequest {
    #[schema(min_length = 1, max_length = 512)]
    pub refresh_token: String,
}

/// An OAuth 2.0-style token response (RFC 6749 section 5.1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6IjNmMWM5YTBiNTJkNGU2YTcifQ...", "refresh_token": "vf_rt_Q2hhbmdlIG1lIQ...", "token_type": "Bearer", "expires_in": 900}))]
pub struct TokenResponse {
    /// A JWT (EdDSA) to send as `Authorization: Bearer ...`.
    pub access_token: String,
    /// Single-use: exchange it at `/v1/auth/refresh` for a new pair.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-000000000001", "email": "ada@example.org", "email_verified": true, "display_name": "Ada Lovelace", "created_at": "2026-11-21T10:00:00Z"}))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    /// Whether the user confirmed the address (`POST
    /// /v1/auth/verify-email`). Until then the account can sign in but
    /// cannot join a company, accept an invitation or receive consent
    /// requests.
    pub email_verified: bool,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-000000000002", "kind": "company", "name": "Acme Cardio", "farm_id": "01935c6e-0000-7000-8000-000000000003", "created_at": "2026-11-21T10:00:00Z"}))]
pub struct Membership {
    pub id: Uuid,
    pub kind: MembershipKind,
    pub name: String,
    /// The membership's farm (its file space).
    pub farm_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-000000000002", "kind": "company", "name": "Acme Cardio", "farm_id": "01935c6e-0000-7000-8000-000000000003", "role": "analyst", "created_at": "2026-11-21T10:00:00Z"}))]
pub struct MembershipWithRole {
    pub id: Uuid,
    pub kind: MembershipKind,
    pub name: String,
    pub farm_id: Option<Uuid>,
    /// The caller's role in this membership.
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "user": {"id": "01935c6e-0000-7000-8000-000000000001", "email": "ada@example.org", "email_verified": true, "display_name": "Ada Lovelace", "created_at": "2026-11-21T10:00:00Z"},
    "memberships": [{"id": "01935c6e-0000-7000-8000-000000000002", "kind": "individual", "name": "Ada's health", "farm_id": "01935c6e-0000-7000-8000-000000000003", "role": "owner", "created_at": "2026-11-21T10:00:00Z"}]
}))]
pub struct MeResponse {
    pub user: User,
    pub memberships: Vec<MembershipWithRole>,
}

/// The token from the verification mail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "vf_ev_b3BlbiBzZXNhbWU..."}))]
pub struct VerifyEmailRequest {
    #[schema(min_length = 1, max_length = 512)]
    pub token: String,
}

/// Asks for a password-reset mail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.org"}))]
pub struct PasswordResetRequest {
    #[schema(min_length = 1, max_length = 254)]
    pub email: String,
}

/// Sets a new password with the token from the reset mail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "vf_pr_b3BlbiBzZXNhbWU...", "new_password": "a brand new passphrase"}))]
pub struct PasswordResetConfirmRequest {
    #[schema(min_length = 1, max_length = 512)]
    pub token: String,
    /// At least 10 characters, and not the email address.
    #[schema(min_length = 10, max_length = 1024)]
    pub new_password: String,
}

/// Changes the signed-in user's password.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "correct horse battery staple", "new_password": "a brand new passphrase"}))]
pub struct ChangePasswordRequest {
    #[schema(max_length = 1024)]
    pub current_password: String,
    /// At least 10 characters, and not the email address.
    #[schema(min_length = 10, max_length = 1024)]
    pub new_password: String,
}

/// An invitation waiting for the signed-in user's answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-000000000009", "membership_id": "01935c6e-0000-7000-8000-000000000002", "membership_name": "Acme Cardio", "role": "analyst", "invited_at": "2026-11-21T10:00:00Z", "expires_at": "2026-11-28T10:00:00Z"}))]
pub struct Invitation {
    pub id: Uuid,
    pub membership_id: Uuid,
    /// The inviting company's name (as it chose it).
    pub membership_name: String,
    /// The role accepting gives.
    pub role: Role,
    pub invited_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [{"id": "01935c6e-0000-7000-8000-000000000009", "membership_id": "01935c6e-0000-7000-8000-000000000002", "membership_name": "Acme Cardio", "role": "analyst", "invited_at": "2026-11-21T10:00:00Z", "expires_at": "2026-11-28T10:00:00Z"}]}))]
pub struct InvitationList {
    pub items: Vec<Invitation>,
}
