//! OAuth2 for third-party apps: app registration, the token and revocation
//! endpoints (RFC 6749, RFC 7009) and the server metadata (RFC 8414).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Whether an app can keep a secret (RFC 6749 section 2.1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    /// Runs on a server: gets a client secret and may use client_credentials.
    Confidential,
    /// Runs on the user's device (mobile, single-page): no secret, PKCE only.
    Public,
}

impl ClientType {
    pub const fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confidential" => Some(ClientType::Confidential),
            "public" => Some(ClientType::Public),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Sleep Coach",
    "client_type": "confidential",
    "redirect_uris": ["https://sleepcoach.example/oauth/callback"],
    "scopes": ["profile", "readings.read", "offline_access"]
}))]
pub struct CreateAppRequest {
    /// Shown to people on the consent page.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub client_type: ClientType,
    /// 1 to 10 URIs, matched byte for byte at authorization: https, or
    /// http to a loopback address (127.0.0.1, [::1], localhost); no
    /// fragment.
    #[schema(min_items = 1, max_items = 10)]
    pub redirect_uris: Vec<String>,
    /// The scopes the app may ask for: `profile`, `readings.read`,
    /// `readings.write`, `files.read`, `files.write`, `devices.read`,
    /// `devices.write`, `consents.read`, `analytics.read`, `alerts.read`,
    /// `alerts.write`, `webhooks.manage`, `offline_access`.
    #[schema(min_items = 1)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "01935c6e-0000-7000-8000-000000000010",
    "client_id": "01935c6e-0000-7000-8000-000000000010",
    "membership_id": "01935c6e-0000-7000-8000-000000000002",
    "name": "Sleep Coach",
    "client_type": "confidential",
    "redirect_uris": ["https://sleepcoach.example/oauth/callback"],
    "scopes": ["profile", "readings.read", "offline_access"],
    "created_at": "2026-11-22T10:00:00Z"
}))]
pub struct App {
    pub id: Uuid,
    /// What the app sends as `client_id` (the same as `id`).
    pub client_id: String,
    /// The membership that registered the app.
    pub membership_id: Uuid,
    pub name: String,
    pub client_type: ClientType,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "app": {
        "id": "01935c6e-0000-7000-8000-000000000010",
        "client_id": "01935c6e-0000-7000-8000-000000000010",
        "membership_id": "01935c6e-0000-7000-8000-000000000002",
        "name": "Sleep Coach",
        "client_type": "confidential",
        "redirect_uris": ["https://sleepcoach.example/oauth/callback"],
        "scopes": ["profile", "readings.read", "offline_access"],
        "created_at": "2026-11-22T10:00:00Z"
    },
    "client_secret": "vf_cs_c2VjcmV0IHNhdWNlIGZvciB0aGUgYXBw..."
}))]
pub struct CreatedApp {
    pub app: App,
    /// A confidential client's secret, shown only now (stored hashed);
    /// `null` for a public client.
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [{
        "id": "01935c6e-0000-7000-8000-000000000010",
        "client_id": "01935c6e-0000-7000-8000-000000000010",
        "membership_id": "01935c6e-0000-7000-8000-000000000002",
        "name": "Sleep Coach",
        "client_type": "public",
        "redirect_uris": ["http://127.0.0.1:8765/callback"],
        "scopes": ["profile"],
        "created_at": "2026-11-22T10:00:00Z"
    }],
    "next_cursor": null
}))]
pub struct AppPage {
    pub items: Vec<App>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The query of `GET /oauth/authorize` (RFC 6749 section 4.1.1, RFC 7636).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// The app's `client_id`.
    pub client_id: Option<String>,
    /// One of the app's registered redirect URIs, byte for byte.
    pub redirect_uri: Option<String>,
    /// Space-separated scopes, within the app's registered ones (default:
    /// all of them).
    pub scope: Option<String>,
    /// Returned unchanged with the code; use it against CSRF.
    pub state: Option<String>,
    /// base64url(SHA-256(code_verifier)), 43 characters.
    pub code_challenge: Option<String>,
    /// Must be `S256`; `plain` is refused.
    pub code_challenge_method: Option<String>,
}

/// The consent form of `POST /oauth/authorize`: the authorization
/// parameters again, the request token the page carried, the person's
/// credentials and their decision.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "response_type": "code",
    "client_id": "01935c6e-0000-7000-8000-000000000010",
    "redirect_uri": "https://sleepcoach.example/oauth/callback",
    "scope": "profile readings.read",
    "state": "af0ifjsldkj",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
    "request_token": "eyJhbGciOiJFZERTQSJ9...",
    "email": "ada@example.org",
    "password": "correct horse battery staple",
    "decision": "approve"
}))]
pub struct AuthorizeForm {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// The signed, short-lived token the consent page carried.
    pub request_token: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    /// `approve` or `deny`.
    pub decision: Option<String>,
}

/// A token request (RFC 6749 sections 4.1.3, 4.4.2 and 6), as
/// `application/x-www-form-urlencoded`. Clients authenticate with HTTP
/// Basic or `client_id` + `client_secret` here; public clients send only
/// `client_id`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "grant_type": "authorization_code",
    "code": "vf_ac_SplxlOBeZQQYbYS6WxSbIA...",
    "redirect_uri": "https://sleepcoach.example/oauth/callback",
    "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    "client_id": "01935c6e-0000-7000-8000-000000000010"
}))]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token` or `client_credentials`.
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    /// For `refresh_token` (narrowing) and `client_credentials`.
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// A successful token response (RFC 6749 section 5.1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6IjNmMWM5YTBiNTJkNGU2YTcifQ...",
    "token_type": "Bearer",
    "expires_in": 900,
    "refresh_token": "vf_art_dGhpcyBpcyBub3QgYSByZWFsIHRva2Vu...",
    "scope": "offline_access profile readings.read"
}))]
pub struct OAuthTokenResponse {
    /// A JWT (EdDSA) carrying `app`, `grant` and `scope` claims.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: u64,
    /// Only with the `offline_access` scope; single-use, each refresh
    /// returns the next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scopes granted, space-separated.
    pub scope: String,
}

/// An error of the token or revocation endpoint (RFC 6749 section 5.2).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": "invalid_grant", "error_description": "the authorization code is invalid, expired or already used"}))]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type` or `invalid_scope`.
    pub error: String,
    pub error_description: String,
}

/// A revocation request (RFC 7009), as `application/x-www-form-urlencoded`,
/// with the same client authentication as the token endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"token": "vf_art_dGhpcyBpcyBub3QgYSByZWFsIHRva2Vu...", "token_type_hint": "refresh_token", "client_id": "01935c6e-0000-7000-8000-000000000010"}))]
pub struct RevokeRequest {
    /// An access token or a refresh token of the calling app.
    pub token: Option<String>,
    /// `access_token` or `refresh_token`; a hint only.
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// Authorization server metadata (RFC 8414).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "issuer": "https://api.vitalfarm.example",
    "authorization_endpoint": "https://api.vitalfarm.example/oauth/authorize",
    "token_endpoint": "https://api.vitalfarm.example/oauth/token",
    "revocation_endpoint": "https://api.vitalfarm.example/oauth/revoke",
    "jwks_uri": "https://api.vitalfarm.example/.well-known/jwks.json",
    "scopes_supported": ["profile", "readings.read", "readings.write", "files.read", "files.write", "devices.read", "devices.write", "consents.read", "analytics.read", "alerts.read", "alerts.write", "webhooks.manage", "offline_access"],
    "response_types_supported": ["code"],
    "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
    "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
    "code_challenge_methods_supported": ["S256"],
    "service_documentation": "https://api.vitalfarm.example/docs"
}))]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub jwks_uri: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub service_documentation: String,
}

/// An app the signed-in person authorized to act for them, and not revoked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Authorization {
    pub app_id: Uuid,
    /// The app's name as its developer registered it.
    pub app_name: String,
    /// The membership that registered the app.
    pub app_membership_id: Uuid,
    /// Every scope the person granted the app, over all their approvals.
    pub scopes: Vec<String>,
    /// When the person first approved the app (of the approvals still in
    /// force).
    pub granted_at: DateTime<Utc>,
    /// When the app last presented one of these tokens (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [{
        "app_id": "01935c6e-0000-7000-8000-000000000010",
        "app_name": "Sleep Coach",
        "app_membership_id": "01935c6e-0000-7000-8000-000000000002",
        "scopes": ["profile", "readings.read", "offline_access"],
        "granted_at": "2026-11-22T10:00:00Z",
        "last_used_at": "2026-11-23T07:12:00Z"
    }],
    "next_cursor": null
}))]
pub struct AuthorizationPage {
    pub items: Vec<Authorization>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
