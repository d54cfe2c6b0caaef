//! Opaque secrets: 256 random bits, base64url, behind a prefix that says
//! what they are (`vf_key_`, `vf_rt_`, `vf_inv_`, `vf_ev_`, `vf_pr_`) so that leaked ones are easy
//! to recognise and scan for. Only their SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const API_KEY_PREFIX: &str = "vf_key_";
pub const REFRESH_PREFIX: &str = "vf_rt_";
pub const INVITE_PREFIX: &str = "vf_inv_";
/// Mailed single-use tokens: address verification and password reset.
pub const EMAIL_VERIFY_PREFIX: &str = "vf_ev_";
pub const PASSWORD_RESET_PREFIX: &str = "vf_pr_";
/// OAuth2: a confidential app's client secret, an authorization code, an
/// app's refresh token, and the consent page's browser-binding cookie.
pub const CLIENT_SECRET_PREFIX: &str = "vf_cs_";
pub const AUTH_CODE_PREFIX: &str = "vf_ac_";
pub const APP_REFRESH_PREFIX: &str = "vf_art_";
pub const CONSENT_COOKIE_PREFIX: &str = "vf_cc_";

pub fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut buf = [0u8; N];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| anyhow::anyhow!("system random source failed"))?;
    Ok(buf)
}

/// A new secret with `prefix`.
pub fn generate(prefix: &str) -> anyhow::Result<String> {
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)))
}

/// Hex SHA-256 of a secret, as stored.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two secrets (or digests) in time independent of where they
/// differ.
pub fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_unique_and_hash_stably() {
        let a = generate(API_KEY_PREFIX).unwrap();
        let b = generate(API_KEY_PREFIX).unwrap();
        assert!(a.starts_with("vf_key_") && a.len() == 7 + 43);
        assert_ne!(a, b);
        assert_eq!(digest(&a), digest(&a));
        assert_eq!(digest(&a).len(), 64);
        assert!(equal(&digest(&a), &digest(&a)));
        assert!(!equal(&digest(&a), &digest(&b)));
        assert!(!equal("abc", "abcd"));
    }
}
