//! Erasing a membership (`DELETE /v1/memberships/{mid}`): the database part
//! is one transaction (`vitalfarm_storage::repo::erasure::erase`, whose
//! comments give the order and the reasons); what lives outside the
//! database is removed after the commit, idempotently, and retried by the
//! sweeps if this process dies first.

use std::future::Future;
use std::pin::Pin;

use sea_orm::DatabaseTransaction;
use vitalfarm_domain::{FarmId, MembershipId, UserId};
use vitalfarm_storage::StorageError;
use vitalfarm_storage::export_objects;
use vitalfarm_storage::repo::erasure::{self, Erased};
use vitalfarm_storage::repo::{audit as audit_repo, consents, events as events_repo};

use crate::audit;
use crate::state::AppState;

/// Inside the erasure's transaction, so either all of it happens or none:
/// revokes every consent the membership gave (its grantees lose access at
/// once) or received, withdraws its pending requests, and removes its audit
/// log and event log, whose record of who read what goes with the rest of its data. The
/// erasure's own minimal record is written after the commit.
pub fn revoke_consents_and_audit<'t>(
    txn: &'t DatabaseTransaction,
    membership: MembershipId,
    actor: UserId,
) -> Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 't>> {
    Box::pin(async move {
        let now = chrono::Utc::now().timestamp_millis();
        crate::webhooks::erase_in(txn, membership).await?;
        consents::end_all_of(txn, membership, Some(actor), now).await?;
        audit_repo::delete_all_in(txn, membership).await?;
        events_repo::delete_all_in(txn, membership).await?;
        vitalfarm_storage::repo::alerts::delete_all_in(txn, membership).await?;
        Ok(())
    })
}

/// Erases `membership` on behalf of `actor` (already authorised and
/// re-authenticated). `NotFound` when it is unknown or already erased.
pub async fn erase(state: &AppState, membership: MembershipId, actor: UserId) -> Result<Erased, StorageError> {
    // The consents this erasure ends, for the other parties' logs.
    let ended = consents::open_of(&state.db, membership).await?;
    // What names the membership in mail written to the outbox, read before
    // the rows go.
    let names = outbox_needles(state, membership).await?;
    let erased = erasure::erase(&state.db, membership, |txn| {
        revoke_consents_and_audit(txn, membership, actor)
    })
    .await?;
    record_erasure(state, membership, actor, &erased, &ended).await;
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
    if let Err(e) = crate::workers::maintenance::sweep_blobs(state).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "removing an erased farm's blobs failed; the sweep retries"
        );
    }
    // Whatever the database no longer names: objects of uploads that a
    // crash cut short (staging files) and exports, finished or not.
    if let Some(farm) = erased.farm
        && let Err(e) = state.blobs.remove_farm(FarmId::from_uuid(farm)).await
    {
        tracing::warn!(
            error = format!("{e:#}"),
            "removing an erased farm's objects failed; the sweep retries"
        );
    }
    if let Err(e) = remove_exports(state, membership).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "removing an erased membership's exports failed; the sweep retries"
        );
    }
    match state.mail.forget(&names).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(messages = n, "outbox messages naming the erased membership removed"),
        Err(e) => tracing::warn!(
            error = format!("{e:#}"),
            "removing outbox messages of an erased membership failed"
        ),
    }
    // The database files still hold the deleted rows' bytes until they are
    // scrubbed (checkpoint or rewrite); that runs in the background and is
    // retried by the sweeper until done.
    let db = state.db.clone();
    tokio::spawn(async move {
        if let Err(e) = scrub(&db).await {
            tracing::warn!(error = %e, "scrubbing the database after an erasure failed; the sweep retries");
        }
    });
    Ok(erased)
}

/// The membership's name and its members' addresses: what outbox messages
/// about it (verification, invitations, resets) contain.
async fn outbox_needles(state: &AppState, membership: MembershipId) -> Result<Vec<String>, StorageError> {
    let mut needles = Vec::new();
    if let Some((m, _)) = vitalfarm_storage::repo::accounts::find_membership(&state.db, membership).await? {
        needles.push(m.name);
    }
    let mut after = None;
    loop {
        let page = vitalfarm_storage::repo::members::list(&state.db, membership, after, 500).await?;
        needles.extend(page.items.iter().map(|m| m.user.email.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(needles)
}

/// Scrubs the database files for the erasures that are still owed it
/// (`vitalfarm_storage::repo::erasure::scrub_pending`). One at a time per
/// process: a second caller waits and then usually finds nothing left.
pub async fn scrub(db: &vitalfarm_storage::Database) -> Result<usize, StorageError> {
    static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = RUNNING.lock().await;
    erasure::scrub_pending(db).await
}

/// The audit records of a committed erasure: the erased membership's new
/// chain starts with the erasure itself (who, when, how much), and every
/// other party of an ended consent finds `consent.revoked` in its own log.
/// The erasure stands whatever happens here, so a failure is logged.
async fn record_erasure(
    state: &AppState,
    membership: MembershipId,
    actor: UserId,
    erased: &Erased,
    ended: &[vitalfarm_storage::entity::consent::Model],
) {
    let mut events = vec![
        audit::Event::new(
            membership,
            audit::Actor::User(actor),
            "membership.erased",
            format!("membership/{membership}"),
        )
        .with_detail(serde_json::json!({
            "readings": erased.readings,
            "subjects": erased.subjects,
            "files": erased.files,
            "consents_revoked": ended.len(),
        })),
    ];
    for c in ended {
        let other = if c.grantor_membership_id == membership.as_uuid() {
            c.grantee_membership_id
        } else {
            c.grantor_membership_id
        };
        let mut event = audit::Event::new(
            MembershipId::from_uuid(other),
            audit::Actor::User(actor),
            "consent.revoked",
            format!("consent/{}", c.id),
        )
        .with_detail(serde_json::json!({"reason": "membership_erased"}));
        event.consent = Some(vitalfarm_domain::ConsentId::from_uuid(c.id));
        event.actor_membership = Some(membership);
        events.push(event);
    }
    for event in events {
        if let Err(e) = audit::record(state, event).await {
            tracing::error!(error = %e, "an erasure's audit record was not written");
        }
    }
}

/// Removes every export object of `membership`, by prefix, so an object
/// whose job row is already gone (or whose upload finished during the
/// erasure) goes too.
pub async fn remove_exports(state: &AppState, membership: MembershipId) -> anyhow::Result<usize> {
    Ok(export_objects::delete_all_of(&state.blobs, membership.as_uuid()).await?)
}
