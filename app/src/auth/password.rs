//! argon2id password hashing with the OWASP-recommended parameters (19 MiB,
//! two passes, one lane: the `argon2` crate's defaults). Hashing is CPU-bound
//! for tens of milliseconds, so it runs on the blocking pool, never on an
//! async worker.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// A hash of a random password, verified against when the account does not
/// exist, so that "no such user" and "wrong password" take the same time.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let mut pw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut pw).ok()?;
    hasher().hash_password(&pw).ok().map(|h| h.to_string())
});

/// Each hash holds 19 MiB for its duration; more hashes at once than cores
/// only queue in memory. Capping them bounds memory under a login burst.
static PERMITS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from) * 2));

pub async fn hash(password: String) -> anyhow::Result<String> {
    let _permit = PERMITS.acquire().await?;
    tokio::task::spawn_blocking(move || {
        hasher()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))
    })
    .await?
}

/// Checks `password` against `stored`, or against a dummy hash when there is
/// no stored hash, always spending one argon2 computation.
pub async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    let _permit = PERMITS.acquire().await?;
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let Some(hash) = stored.or_else(|| DUMMY_HASH.clone()) else {
            return Ok(false);
        };
        let ok = hasher().verify_password(password.as_bytes(), hash.as_str()).is_ok();
        Ok(ok && known)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery".into()).await.unwrap();
        let b = hash("correct horse battery".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salts differ");
        assert!(verify("correct horse battery".into(), Some(a.clone())).await.unwrap());
        assert!(!verify("wrong horse battery".into(), Some(a)).await.unwrap());
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }
}
