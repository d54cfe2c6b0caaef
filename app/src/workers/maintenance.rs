//! The platform's housekeeping loops: expired tokens and counters, stale
//! commands, and the objects of replaced or deleted files.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vitalfarm_domain::FarmId;
use vitalfarm_storage::Database;
use vitalfarm_storage::repo::{farms, rate_limits, refresh_tokens};

use crate::state::AppState;

/// Deletes expired refresh tokens and stale rate-limit counters every ten
/// minutes. Deletes are idempotent, so every node may run it.
pub async fn janitor(db: Database, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    while crate::workers::tick(&stop, &mut tick).await {
        if let Err(e) = refresh_tokens::purge_expired(&db).await {
            tracing::warn!(error = %e, "purging expired refresh tokens failed");
        }
        if let Err(e) = rate_limits::purge_stale(&db, chrono::Duration::days(1)).await {
            tracing::warn!(error = %e, "purging rate-limit counters failed");
        }
        // Networks accounts signed in from are known for 90 days.
        if let Err(e) = rate_limits::purge_remembered(&db, chrono::Duration::days(90)).await {
            tracing::warn!(error = %e, "purging known sign-in networks failed");
        }
        if let Err(e) = vitalfarm_storage::repo::oauth::purge_stale(&db).await {
            tracing::warn!(error = %e, "purging stale OAuth codes, tokens and grants failed");
        }
        if let Err(e) = vitalfarm_storage::repo::email_tokens::purge_expired(&db).await {
            tracing::warn!(error = %e, "purging expired email tokens failed");
        }
    }
}

/// Marks commands past their expiry as expired, every few seconds, so a
/// device that comes back late is not sent stale commands. Idempotent.
pub async fn expirer(state: Arc<AppState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    while crate::workers::tick(&stop, &mut tick).await {
        if let Err(e) = crate::commands::expire_due(&state).await {
            tracing::warn!(error = format!("{e:#}"), "expiring commands failed");
        }
    }
}

/// Removes the objects of replaced and deleted files and of uploads that
/// died, on an interval. Claims are conditional deletes, so nodes running it
/// at once never remove the same blob twice nor one that went live.
pub async fn sweeper(state: Arc<AppState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(state.config.sweep_interval_secs));
    while crate::workers::tick(&stop, &mut tick).await {
        if let Err(e) = sweep_blobs(&state).await {
            tracing::warn!(error = format!("{e:#}"), "sweeping farm blobs failed");
        }
        // An erasure's scrub that did not finish (a busy database, a crash)
        // is retried here, so it is done within one interval of the cause
        // going away.
        if let Err(e) = crate::erasure::scrub(&state.db).await {
            tracing::warn!(error = %e, "scrubbing the database after an erasure failed");
        }
    }
}

/// One sweep; returns how many blobs were removed.
pub async fn sweep_blobs(state: &AppState) -> anyhow::Result<usize> {
    let grace = chrono::Duration::seconds(i64::try_from(state.config.orphan_grace_secs).unwrap_or(i64::MAX / 1000));
    let cutoff = chrono::Utc::now() - grace;
    // Uploads a crash cut short leave staging files that no row names (the
    // rows of their blobs go below, but only the finished object's key);
    // found by listing the store itself.
    let staging_cutoff = std::time::SystemTime::from(cutoff);
    let mut removed = state.blobs.sweep_staging(staging_cutoff).await?;
    loop {
        let batch = farms::sweepable_blobs(&state.db, cutoff, 500).await?;
        if batch.is_empty() {
            return Ok(removed);
        }
        let mut claimed_any = false;
        for blob in &batch {
            if farms::claim_for_sweep(&state.db, blob, cutoff).await? {
                claimed_any = true;
                state.blobs.delete(FarmId::from_uuid(blob.farm_id), blob.id).await?;
                removed += 1;
            }
        }
        if !claimed_any {
            return Ok(removed);
        }
    }
}
