//! Liveness, readiness and key publication.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    /// `ok` when the process serves requests.
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok", "checks": [{"name": "database", "status": "ok"}]}))]
pub struct Readiness {
    /// `ok` when every check passed, `unavailable` otherwise.
    pub status: String,
    pub checks: Vec<ReadinessCheck>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadinessCheck {
    /// What was checked: `database`.
    pub name: String,
    /// `ok` or `failed`.
    pub status: String,
}

/// A JSON Web Key Set (RFC 7517) with the public keys that verify access
/// tokens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "3f1c9a0b52d4e6a7", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}))]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// Key type: `OKP` (RFC 8037).
    pub kty: String,
    /// Curve: `Ed25519`.
    pub crv: String,
    /// Algorithm: `EdDSA`.
    pub alg: String,
    /// Intended use: `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// Key id, matched against the `kid` header of a token.
    pub kid: String,
    /// The public key, base64url without padding.
    pub x: String,
}
