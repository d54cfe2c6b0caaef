//! What an operator does from the command line, outside any membership.

/// `vitalfarm admin verify-email EMAIL`: marks the account's address
/// verified without the mailed token (the operator vouches for it).
/// Returns the address as stored.
pub async fn verify_email(db: &vitalfarm_storage::Database, email: &str) -> anyhow::Result<String> {
    let parsed = vitalfarm_domain::Email::parse(email).map_err(|m| anyhow::anyhow!("EMAIL {m}"))?;
    let user = vitalfarm_storage::repo::accounts::find_user_by_email(db, &parsed)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no account has the address {}", parsed.as_str()))?;
    let verified =
        vitalfarm_storage::repo::accounts::mark_verified(db, vitalfarm_domain::UserId::from_uuid(user.id), &user.email)
            .await?;
    anyhow::ensure!(verified, "the address of {} could not be marked verified", user.email);
    Ok(user.email)
}
