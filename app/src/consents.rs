//! Consent changes as units of work. Each function below is one change
//! (request, approve, deny, direct grant, revoke) inside the caller's
//! transaction: the consent or request row, the audit events of the parties
//! and the outbound events (webhooks, streams) are committed together or not
//! at all, so no consent exists without its audit entries and no audit entry
//! names a consent that does not. Callers have already authorised the change
//! and validated its input; they open the transaction with `begin` and end it
//! with `finish`.

use std::collections::BTreeSet;

use sea_orm::DatabaseTransaction;
use vitalfarm_domain::consent::{self, Consent, Period};
use vitalfarm_domain::{ConsentId, ConsentRequestId, MembershipId, SubjectId, UserId};
use vitalfarm_storage::StorageError;
use vitalfarm_storage::entity::{consent as consent_row, consent_request};
use vitalfarm_storage::repo::consents;

use crate::audit;
use crate::error::{AppError, AppResult};
use crate::events::EventKind;
use crate::faults::{FaultPoint, Faults};
use crate::principal::Principal;
use crate::state::AppState;

/// Opens the transaction of one consent change.
pub async fn begin(state: &AppState) -> AppResult<DatabaseTransaction> {
    Ok(state.db.begin_write().await.map_err(StorageError::from)?)
}

/// Commits `txn` when the change succeeded; rolls it back otherwise and
/// passes the change's error on.
pub async fn finish<T>(txn: DatabaseTransaction, result: AppResult<T>) -> AppResult<T> {
    match result {
        Ok(value) => {
            txn.commit().await.map_err(StorageError::from)?;
            Ok(value)
        }
        Err(err) => {
            if let Err(e) = txn.rollback().await {
                tracing::warn!(error = %e, "rolling back a failed consent change failed");
            }
            Err(err)
        }
    }
}

/// A consent's change in both parties' audit logs: the grantor's (whose
/// data it is) and the grantee's (who gains or loses access).
fn both_parties(principal: &Principal, row: &consent_row::Model, action: &'static str) -> Vec<audit::Event> {
    let grantor = MembershipId::from_uuid(row.grantor_membership_id);
    let grantee = MembershipId::from_uuid(row.grantee_membership_id);
    [(grantor, grantee), (grantee, grantor)]
        .into_iter()
        .map(|(membership, other)| {
            let mut event = audit::Event::by(principal, membership, action, format!("consent/{}", row.id));
            event.consent = Some(ConsentId::from_uuid(row.id));
            if membership == grantee {
                event.actor_membership = Some(other);
            }
            event
        })
        .collect()
}

/// The audit events and outbound events of a consent granted or revoked.
async fn record_consent_change(
    txn: &DatabaseTransaction,
    principal: &Principal,
    row: &consent_row::Model,
    action: &'static str,
    kind: EventKind,
) -> AppResult<()> {
    audit::record_in(txn, both_parties(principal, row, action)).await?;
    crate::webhooks::emit_consent(txn, row, kind).await?;
    Ok(())
}

/// A company asks an individual for access: the request and the
/// requester's `consent.requested`.
pub async fn request(
    txn: &DatabaseTransaction,
    faults: &Faults,
    principal: &Principal,
    new: consents::NewRequest<'_>,
) -> AppResult<consent_request::Model> {
    let requester = new.requester;
    let row = consents::create_request(txn, new).await?;
    faults.check(FaultPoint::ConsentMidway)?;
    audit::record_in(
        txn,
        vec![audit::Event::by(
            principal,
            requester,
            "consent.requested",
            format!("consent_request/{}", row.id),
        )],
    )
    .await?;
    Ok(row)
}

/// The individual approves a pending request: the consent, the request
/// decided, both parties' `consent.granted` and the events. `Conflict` when
/// the request was decided meanwhile.
pub async fn approve(
    txn: &DatabaseTransaction,
    faults: &Faults,
    principal: &Principal,
    request: ConsentRequestId,
    new: consents::NewConsent<'_>,
) -> AppResult<consent_row::Model> {
    let (_, created) = consents::approve(txn, request, new).await?;
    faults.check(FaultPoint::ConsentMidway)?;
    record_consent_change(txn, principal, &created, "consent.granted", EventKind::ConsentGranted).await?;
    Ok(created)
}

/// The individual declines a pending request: the request decided and the
/// requester's `consent.request_denied`. `Conflict` when it was decided
/// meanwhile.
pub async fn deny(
    txn: &DatabaseTransaction,
    faults: &Faults,
    principal: &Principal,
    request: ConsentRequestId,
    by: UserId,
    now_ms: i64,
) -> AppResult<consent_request::Model> {
    let row = consents::deny(txn, request, by, now_ms).await?;
    faults.check(FaultPoint::ConsentMidway)?;
    let event = audit::Event::by(
        principal,
        MembershipId::from_uuid(row.requester_membership_id),
        "consent.request_denied",
        format!("consent_request/{}", row.id),
    )
    .with_outcome(audit::Outcome::Denied);
    audit::record_in(txn, vec![event]).await?;
    Ok(row)
}

/// An individual grants a company access directly: the consent, both
/// parties' `consent.granted` and the events.
pub async fn grant(
    txn: &DatabaseTransaction,
    faults: &Faults,
    principal: &Principal,
    new: consents::NewConsent<'_>,
) -> AppResult<consent_row::Model> {
    let row = consents::create(txn, new).await?;
    faults.check(FaultPoint::ConsentMidway)?;
    record_consent_change(txn, principal, &row, "consent.granted", EventKind::ConsentGranted).await?;
    Ok(row)
}

/// The grantor revokes a consent: the revocation, both parties'
/// `consent.revoked` and the events. `None` when it was revoked already;
/// then nothing is recorded again.
pub async fn revoke(
    txn: &DatabaseTransaction,
    faults: &Faults,
    principal: &Principal,
    id: ConsentId,
    by: Option<UserId>,
    now_ms: i64,
) -> AppResult<Option<consent_row::Model>> {
    let Some(revoked) = consents::revoke(txn, id, by, now_ms).await? else {
        return Ok(None);
    };
    faults.check(FaultPoint::ConsentMidway)?;
    record_consent_change(txn, principal, &revoked, "consent.revoked", EventKind::ConsentRevoked).await?;
    Ok(Some(revoked))
}

/// The consent approving `row` creates at `now_ms` (and the consent
/// preview shows) for `subjects` of
/// `grantor`, limited to `metrics` and `farm_paths`: the request's
/// purpose, access, duration and data period.
pub fn consent_of(
    row: &consent_request::Model,
    grantor: MembershipId,
    subjects: BTreeSet<SubjectId>,
    metrics: BTreeSet<String>,
    farm_paths: BTreeSet<String>,
    now_ms: i64,
) -> AppResult<Consent> {
    let bad = || AppError::Internal(anyhow::anyhow!("consent request {} does not parse", row.id));
    Ok(Consent {
        grantor,
        grantee: MembershipId::from_uuid(row.requester_membership_id),
        subjects,
        metrics,
        farm_paths,
        purpose: consent::Purpose::parse(&row.purpose).ok_or_else(bad)?,
        access: consent::Access::parse(&row.access).ok_or_else(bad)?,
        valid: Period {
            from: Some(now_ms),
            until: Some(now_ms.saturating_add(row.duration_secs.saturating_mul(1000))),
        },
        data: Period {
            from: row.data_from_ms,
            until: row.data_until_ms,
        },
        revoked_at: None,
    })
}
