//! Erasing a membership (`DELETE /v1/memberships/{mid}`): the database part
//! is one transaction (`vitalfarm_storage::repo::erasure::erase`, whose
//! comments give the order and the reasons); what lives outside the
//! database is removed after the commit, idempotently, and retried by the
//! sweeps if this process dies first.

use std::future::Future;
use std::pin::Pin;

use sea_orm::DatabaseTransaction;
use vitalfarm_domain::{MembershipId, UserId};
use vitalfarm_storage::StorageError;
use vitalfarm_storage::export_objects;
use vitalfarm_storage::repo::erasure::{self, Erased};

use crate::state::AppState;

/// Revokes the consents `membership` granted and writes the audit record of
/// its erasure, inside the erasure's transaction, so either both happen
/// with the erasure or neither does. Consents and the audit trail are not
/// in this schema yet: this is the place they join, and until then the
/// erasure's record is the log line `erase` writes after the commit.
pub fn revoke_consents_and_audit<'t>(
    _txn: &'t DatabaseTransaction,
    _membership: MembershipId,
    _actor: UserId,
) -> Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 't>> {
    Box::pin(async { Ok(()) })
}

/// Erases `membership` on behalf of `actor` (already authorised and
/// re-authenticated). `NotFound` when it is unknown or already erased.
pub async fn erase(state: &AppState, membership: MembershipId, actor: UserId) -> Result<Erased, StorageError> {
    let erased = erasure::erase(&state.db, membership, |txn| {
        revoke_consents_and_audit(txn, membership, actor)
    })
    .await?;
    tracing::info!(
        membership_id = %membership,
        user_id = %actor,
        readings = erased.readings,
        subjects = erased.subjects,
        files = erased.files,
        users_deleted = erased.users_deleted,
        "membership erased"
    );
    // After the commit: the blobs are already unreadable (their key is
    // gone); removing them now rather than at the next sweep keeps the
    // bytes around for as short a time as possible.
    if let Err(e) = crate::server::sweep_blobs(state).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "removing an erased farm's blobs failed; the sweep retries"
        );
    }
    if let Err(e) = remove_exports(state, membership).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "removing an erased membership's exports failed; the sweep retries"
        );
    }
    Ok(erased)
}

/// Removes every export object of `membership`, by prefix, so an object
/// whose job row is already gone (or whose upload finished during the
/// erasure) goes too.
pub async fn remove_exports(state: &AppState, membership: MembershipId) -> anyhow::Result<usize> {
    Ok(export_objects::delete_all_of(&state.blobs, membership.as_uuid()).await?)
}
