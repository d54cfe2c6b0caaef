//! Access tokens: short-lived JWTs signed with Ed25519 (EdDSA). The signing
//! key is generated on first start and kept in the data directory (or given
//! by configuration); its public half is published at
//! `/.well-known/jwks.json` under a `kid` derived from the key itself, so a
//! rotated key gets a new `kid` and verifiers pick the right one.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vitalfarm_domain::{AppId, GrantId, UserId};
use vitalfarm_openapi::health::{Jwk, Jwks};

/// Audience of every access token vitalfarm issues.
pub const AUDIENCE: &str = "vitalfarm-api";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: Uuid,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// Present only in tokens issued to an OAuth2 app: the app, its grant
    /// and the granted scopes. A token with `app` is never taken for the
    /// user's own token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Audience of the request tokens of the OAuth consent page: signed with the
/// same key as access tokens, but never accepted as one.
pub const CONSENT_AUDIENCE: &str = "vitalfarm-oauth-consent";

/// What the consent page's form carries back: proof that this server
/// rendered it, for these authorization parameters, to this browser.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsentClaims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// SHA-256 of the authorization parameters the page was rendered for.
    pub params: String,
    /// SHA-256 of the browser-bound cookie set with the page.
    pub cookie: String,
}

struct VerifyingKey {
    kid: String,
    x: String,
    key: DecodingKey,
}

pub struct JwtKeys {
    kid: String,
    signing: EncodingKey,
    verifying: Vec<VerifyingKey>,
    issuer: String,
    ttl_secs: u64,
}

impl JwtKeys {
    /// Reads the PKCS#8 PEM key at `path`, creating it first if absent.
    pub fn load_or_generate(path: &Path, issuer: String, ttl_secs: u64) -> anyhow::Result<Self> {
        if !path.exists() {
            generate_key_file(path)?;
        }
        let pem = std::fs::read_to_string(path).with_context(|| format!("reading JWT key {}", path.display()))?;
        Self::from_pkcs8_pem(&pem, issuer, ttl_secs)
            .with_context(|| format!("JWT key {} is not an Ed25519 PKCS#8 PEM key", path.display()))
    }

    pub fn from_pkcs8_pem(pem: &str, issuer: String, ttl_secs: u64) -> anyhow::Result<Self> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body.trim()).context("base64")?;
        let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|e| anyhow::anyhow!("{e}"))?;
        let public = pair.public_key().as_ref().to_vec();
        let kid = hex::encode(&Sha256::digest(&public)[..8]);
        let x = URL_SAFE_NO_PAD.encode(&public);
        let verifying = vec![VerifyingKey {
            kid: kid.clone(),
            key: DecodingKey::from_ed_components(&x)?,
            x,
        }];
        Ok(Self {
            kid,
            signing: EncodingKey::from_ed_der(&der),
            verifying,
            issuer,
            ttl_secs,
        })
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// A fresh access token for `user`, and its lifetime in seconds.
    pub fn issue(&self, user: UserId) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.as_uuid(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + i64::try_from(self.ttl_secs).unwrap_or(i64::MAX / 2),
            jti: Uuid::now_v7(),
            app: None,
            grant: None,
            scope: None,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.signing)?)
    }

    /// An access token for an OAuth2 app: `sub` is the user who approved it,
    /// or the app itself for client_credentials (RFC 9068).
    pub fn issue_app(&self, sub: Uuid, app: AppId, grant: GrantId, scope: &str) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub,
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + i64::try_from(self.ttl_secs).unwrap_or(i64::MAX / 2),
            jti: Uuid::now_v7(),
            app: Some(app.as_uuid()),
            grant: Some(grant.as_uuid()),
            scope: Some(scope.to_owned()),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.signing)?)
    }

    /// A consent page's request token, valid for `ttl_secs`.
    pub fn issue_consent(&self, params: String, cookie: String, ttl_secs: i64) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = ConsentClaims {
            iss: self.issuer.clone(),
            aud: CONSENT_AUDIENCE.to_owned(),
            iat: now,
            exp: now + ttl_secs,
            params,
            cookie,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.signing)?)
    }

    /// The claims of a valid consent request token.
    pub fn verify_consent(&self, token: &str) -> Option<ConsentClaims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let kid = header.kid?;
        let key = self.verifying.iter().find(|k| k.kid == kid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[CONSENT_AUDIENCE]);
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        jsonwebtoken::decode::<ConsentClaims>(token, &key.key, &validation)
            .ok()
            .map(|d| d.claims)
    }

    /// The claims of a valid token: right key, signature, issuer, audience
    /// and not expired. Every failure is the same `None`: callers answer 401
    /// without telling why.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let kid = header.kid?;
        let key = self.verifying.iter().find(|k| k.kid == kid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key.key, &validation)
            .ok()
            .map(|d| d.claims)
    }

    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .verifying
                .iter()
                .map(|k| Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    alg: "EdDSA".into(),
                    key_use: "sig".into(),
                    kid: k.kid.clone(),
                    x: k.x.clone(),
                })
                .collect(),
        }
    }
}

/// Writes a new key to `path` atomically and only if none exists yet: the
/// key goes to a temporary file which is then hard-linked into place, so two
/// processes starting together end up sharing whichever key landed first.
fn generate_key_file(path: &Path) -> anyhow::Result<()> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| anyhow::anyhow!("generating Ed25519 key: {e}"))?;
    let b64 = STANDARD.encode(doc.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk)?);
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");

    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".jwt-key-{}.tmp", Uuid::now_v7()));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    std::fs::remove_file(&tmp)?;
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("writing JWT key {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(dir: &Path) -> JwtKeys {
        JwtKeys::load_or_generate(&dir.join("jwt.pem"), "https://vf.test".into(), 900).unwrap()
    }

    #[test]
    fn issued_tokens_verify_and_carry_kid() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        let user = UserId::new();
        let token = k.issue(user).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(k.jwks().keys[0].kid.as_str()));
        let claims = k.verify(&token).unwrap();
        assert_eq!(claims.sub, user.as_uuid());
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn key_persists_and_foreign_or_tampered_tokens_fail() {
        let dir = tempfile::tempdir().unwrap();
        let a = keys(dir.path());
        let again = keys(dir.path());
        let token = a.issue(UserId::new()).unwrap();
        assert!(again.verify(&token).is_some(), "same file, same key");

        let other_dir = tempfile::tempdir().unwrap();
        let b = keys(other_dir.path());
        assert!(b.verify(&token).is_none(), "another key's token");

        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://vf.test","sub":"00000000-0000-0000-0000-000000000000","aud":"vitalfarm-api","iat":0,"exp":99999999999,"jti":"00000000-0000-0000-0000-000000000000"}"#);
        assert!(a.verify(&parts.join(".")).is_none(), "tampered payload");
        assert!(a.verify("not.a.jwt").is_none());
    }

    #[test]
    fn app_and_consent_tokens_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        let (app, grant) = (AppId::new(), GrantId::new());
        let token = k.issue_app(Uuid::now_v7(), app, grant, "profile").unwrap();
        let claims = k.verify(&token).unwrap();
        assert_eq!(claims.app, Some(app.as_uuid()));
        assert_eq!(claims.grant, Some(grant.as_uuid()));
        assert_eq!(claims.scope.as_deref(), Some("profile"));
        assert!(
            k.verify_consent(&token).is_none(),
            "an access token is no consent token"
        );
        let user = k.verify(&k.issue(UserId::new()).unwrap()).unwrap();
        assert!(user.app.is_none() && user.scope.is_none());

        let consent = k.issue_consent("p".into(), "c".into(), 60).unwrap();
        assert_eq!(k.verify_consent(&consent).unwrap().params, "p");
        assert!(k.verify(&consent).is_none(), "a consent token is no access token");
        let expired = k.issue_consent("p".into(), "c".into(), -1).unwrap();
        assert!(k.verify_consent(&expired).is_none());
    }

    #[test]
    fn expired_tokens_fail() {
        let dir = tempfile::tempdir().unwrap();
        let k = JwtKeys::load_or_generate(&dir.path().join("k.pem"), "iss".into(), 0).unwrap();
        let mut claims = AccessClaims {
            iss: "iss".into(),
            sub: Uuid::now_v7(),
            aud: AUDIENCE.into(),
            iat: 0,
            exp: 1,
            jti: Uuid::now_v7(),
            app: None,
            grant: None,
            scope: None,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(k.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &k.signing).unwrap();
        assert!(k.verify(&token).is_none());
        claims.exp = chrono::Utc::now().timestamp() + 60;
        let token = jsonwebtoken::encode(&header, &claims, &k.signing).unwrap();
        assert!(k.verify(&token).is_some());
    }
}
