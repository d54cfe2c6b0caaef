//! Standard Webhooks signing (<https://www.standardwebhooks.com/>): a
//! delivery carries `webhook-id`, `webhook-timestamp` (unix seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`,
//! keyed with the endpoint's secret, shown to its owner as
//! `whsec_<base64 of the key bytes>`. Pure: no clock, no randomness.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What a secret starts with, so a leaked one is recognisable.
pub const SECRET_PREFIX: &str = "whsec_";

/// How many random bytes a secret holds.
pub const SECRET_LEN: usize = 32;

/// The secret as shown to the endpoint's owner.
pub fn format_secret(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes behind a `whsec_` secret, or `None` when it is not one.
pub fn parse_secret(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

/// The `webhook-signature` header value for one delivery attempt.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; the fallback
    // keeps the function total without a panic path.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The expected values were computed outside Rust, with Python's
    // `hmac.new(bytes(range(32)), msg, hashlib.sha256)` and `base64`.
    const KEY_TEXT: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn signs_a_known_vector() {
        let key: Vec<u8> = (0u8..32).collect();
        assert_eq!(format_secret(&key), KEY_TEXT);
        assert_eq!(parse_secret(KEY_TEXT).as_deref(), Some(key.as_slice()));
        assert_eq!(
            sign(
                &key,
                "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
                1_674_087_231,
                r#"{"type":"alert.opened"}"#
            ),
            "v1,w70Rii+cfdrgdaj3zeag8tkbl1ycA0NCFTgxU3h7+o4="
        );
    }

    #[test]
    fn any_change_changes_the_signature() {
        let key = [7u8; 32];
        let base = sign(&key, "id", 10, "{}");
        assert_ne!(base, sign(&key, "id2", 10, "{}"));
        assert_ne!(base, sign(&key, "id", 11, "{}"));
        assert_ne!(base, sign(&key, "id", 10, "{ }"));
        assert_ne!(base, sign(&[8u8; 32], "id", 10, "{}"));
    }

    #[test]
    fn rejects_what_is_not_a_secret() {
        assert_eq!(parse_secret("AAECAw=="), None);
        assert_eq!(parse_secret("whsec_not base64!"), None);
    }
}
