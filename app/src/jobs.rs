//! The background job worker: claims jobs from the database (any node may
//! run any job), keeps the lease alive while one runs, and records the
//! outcome. It polls on an interval for jobs queued by other nodes and is
//! woken at once when this node queues one (`AppState::jobs_wake`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use vitalfarm_storage::repo::jobs;

use crate::export;
use crate::state::AppState;

fn lease(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(state.config.job_lease_secs).unwrap_or(60))
}

/// Runs jobs until shutdown (`stop`); a job in progress is finished first.
pub async fn worker(state: Arc<AppState>, stop: CancellationToken) {
    let idle = Duration::from_millis(state.config.job_poll_interval_ms);
    while !stop.is_cancelled() {
        match run_one(&state).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "job worker: claiming failed"),
        }
        tokio::select! {
            () = state.jobs_wake.notified() => {}
            () = tokio::time::sleep(idle) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// Claims and runs one job; `false` when there was none to claim.
pub async fn run_one(state: &AppState) -> anyhow::Result<bool> {
    jobs::fail_exhausted(&state.db).await?;
    let Some(claim) = jobs::claim(&state.db, &[export::KIND], lease(state)).await? else {
        return Ok(false);
    };
    run_claimed(state, claim).await;
    Ok(true)
}

/// Runs a claimed job to its end, renewing the lease at a third of its
/// length; if a renewal finds the claim lost, the job stops at its next
/// write and records nothing (the new owner will).
pub async fn run_claimed(state: &AppState, claim: jobs::Claim) {
    let lost = Arc::new(AtomicBool::new(false));
    let keeper = {
        let db = state.db.clone();
        let claim = claim.clone();
        let lost = lost.clone();
        let lease = lease(state);
        let every = Duration::from_millis(u64::try_from(lease.num_milliseconds() / 3).unwrap_or(1000).max(100));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match jobs::renew(&db, &claim, lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        lost.store(true, Ordering::Relaxed);
                        return;
                    }
                    // A passing database error: the lease may still hold at
                    // the next try.
                    Err(e) => tracing::warn!(error = %e, "renewing a job lease failed"),
                }
            }
        })
    };
    let job_id = claim.job.id;
    // A panic in a job must not take the worker loop down with it: it
    // counts as a failed attempt like any other error.
    let outcome = std::panic::AssertUnwindSafe(export::build(state, &claim.job, lost.clone()))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the export panicked")));
    keeper.abort();
    let recorded = match outcome {
        Ok(result) => match serde_json::to_string(&result) {
            Ok(text) => {
                let recorded = jobs::succeed(&state.db, &claim, text).await;
                if matches!(recorded, Ok(true)) {
                    crate::webhooks::emit_export_ready(state, &claim.job).await;
                    if let Err(e) = export::retire_superseded(state, &claim.job).await {
                        tracing::warn!(job_id = %job_id, error = format!("{e:#}"), "retiring older exports failed");
                    }
                }
                if !matches!(recorded, Ok(true)) {
                    // Nobody will ever be pointed at this object (the job
                    // was taken over or erased): it must not linger.
                    let _ = vitalfarm_storage::export_objects::delete(&state.blobs, &result.object_key).await;
                }
                recorded
            }
            Err(e) => {
                tracing::error!(job_id = %job_id, error = %e, "export result not serialisable");
                jobs::fail(&state.db, &claim, "the export failed").await
            }
        },
        Err(e) => {
            tracing::error!(job_id = %job_id, attempt = claim.attempt, error = format!("{e:#}"), "export failed");
            jobs::fail(
                &state.db,
                &claim,
                "the export failed; it is retried a limited number of times",
            )
            .await
        }
    };
    match recorded {
        Ok(true) => tracing::info!(job_id = %job_id, attempt = claim.attempt, "job finished"),
        Ok(false) => tracing::warn!(job_id = %job_id, "job lost to another worker; outcome not recorded"),
        Err(e) => tracing::warn!(job_id = %job_id, error = %e, "recording a job's outcome failed"),
    }
}

/// Removes expired export objects on the blob sweep's interval.
pub async fn export_sweeper(state: Arc<AppState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(state.config.sweep_interval_secs));
    while crate::workers::tick(&stop, &mut tick).await {
        if let Err(e) = export::sweep_expired(&state).await {
            tracing::warn!(error = format!("{e:#}"), "sweeping expired exports failed");
        }
        if let Err(e) = sweep_erased(&state).await {
            tracing::warn!(error = format!("{e:#}"), "sweeping erased memberships' exports failed");
        }
    }
}

/// Removes export and farm objects left behind by erasures of the last
/// week (a crash right after the commit, an upload that finished during
/// it), unfinished uploads included: by listing the store, not by rows,
/// which the erasure deleted.
pub async fn sweep_erased(state: &AppState) -> anyhow::Result<usize> {
    let since = chrono::Utc::now() - chrono::Duration::days(7);
    let mut removed = 0;
    for membership in vitalfarm_storage::repo::erasure::erased_since(&state.db, since).await? {
        removed += crate::erasure::remove_exports(state, vitalfarm_domain::MembershipId::from_uuid(membership)).await?;
        if let Some(farm) = vitalfarm_storage::repo::erasure::farm_of(&state.db, membership).await? {
            removed += state
                .blobs
                .remove_farm(vitalfarm_domain::FarmId::from_uuid(farm))
                .await?;
        }
    }
    Ok(removed)
}
