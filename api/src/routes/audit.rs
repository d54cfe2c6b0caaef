//! A membership's audit log: listing its events and verifying its hash
//! chain. Owners and admins only (`Permission::ReadAudit`).

use actix_web::http::Method;
use actix_web::web;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;
use vitalfarm_domain::audit::{BreakReason, Outcome, Verifier};
use vitalfarm_domain::{ConsentId, Permission};
use vitalfarm_openapi::audit::{
    AuditActor, AuditBreak, AuditBreakReason, AuditEvent, AuditEventPage, AuditOutcome, AuditVerification,
};
use vitalfarm_openapi::doc::ForbiddenResponse;
use vitalfarm_storage::StorageError;
use vitalfarm_storage::entity::audit_event;
use vitalfarm_storage::repo::audit;

use super::RouteSet;
use crate::error::{ApiResult, AppError, AppResult};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, PageQuery, PathMembershipId, Query};
use vitalfarm_app::authz;
use vitalfarm_app::state::AppState;
use vitalfarm_app::views::ms_to_time;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/memberships/{mid}/audit", list);
    r.add(Method::GET, "/v1/memberships/{mid}/audit/verify", verify);
}

/// How many events a verification reads at a time.
const VERIFY_PAGE: u64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Actions starting with this, e.g. `auth` or `device.claimed`.
    #[param(max_length = 64, pattern = r"^[a-z0-9_.]+$")]
    pub action: Option<String>,
    /// The user, API key or device that acted.
    pub actor_id: Option<Uuid>,
    /// Events under this consent.
    pub consent_id: Option<Uuid>,
    pub outcome: Option<AuditOutcome>,
    /// Events at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Events before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Items per page, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{22}$")]
    pub cursor: Option<String>,
}

fn event_dto(e: &audit_event::Model) -> AppResult<AuditEvent> {
    Ok(AuditEvent {
        id: e.id,
        seq: e.seq,
        at: ms_to_time(e.at_ms)?,
        actor: AuditActor {
            kind: e.actor_kind.clone(),
            id: e.actor_id,
            membership_id: e.actor_membership_id,
        },
        action: e.action.clone(),
        resource: e.resource.clone(),
        consent_id: e.consent_id,
        outcome: e.outcome.clone(),
        // An altered, unparseable detail is shown as the text it is.
        detail: serde_json::from_str(&e.detail).unwrap_or_else(|_| serde_json::Value::String(e.detail.clone())),
        hash: e.hash.clone(),
    })
}

fn outcome(o: AuditOutcome) -> Outcome {
    match o {
        AuditOutcome::Allowed => Outcome::Allowed,
        AuditOutcome::Denied => Outcome::Denied,
        AuditOutcome::Failed => Outcome::Failed,
    }
}

/// The membership's audit events, newest first, optionally narrowed by
/// action prefix, actor, consent, outcome and time.
#[utoipa::path(get, path = "/v1/memberships/{mid}/audit", tag = "audit",
    params(("mid" = Uuid, Path, description = "Membership id"), AuditQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of events, newest first.", body = AuditEventPage),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(q): Query<AuditQuery>,
) -> ApiResult<web::Json<AuditEventPage>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (limit, after) = (page.limit()?, page.after()?);
    if let Some(a) = &q.action
        && (a.is_empty()
            || a.len() > 64
            || !a
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'))
    {
        return Err((AppError::InvalidParameter {
            field: "action".into(),
            message: "must be 1 to 64 characters of a-z, 0-9, '_' and '.'".into(),
        })
        .into());
    }
    crate::extract::query::check_period(q.from, q.to)?;
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ReadAudit)
        .await?
        .membership();
    let filter = audit::Filter {
        action_prefix: q.action,
        actor_id: q.actor_id,
        consent: q.consent_id.map(ConsentId::from_uuid),
        outcome: q.outcome.map(outcome),
        from_ms: q.from.map(|t| t.timestamp_millis()),
        to_ms: q.to.map(|t| t.timestamp_millis()),
    };
    let page = audit::list(&state.db, mid, &filter, after, limit)
        .await
        .map_err(|e| match e {
            StorageError::NotFound => AppError::InvalidParameter {
                field: "cursor".into(),
                message: "is not a cursor this API returned".into(),
            },
            other => other.into(),
        })?;
    Ok(web::Json(AuditEventPage {
        items: page.items.iter().map(event_dto).collect::<AppResult<_>>()?,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// Checks the membership's hash chain from its first event to its newest:
/// every event must follow the one before it (`seq`), name its hash
/// (`prev_hash`), and hash to what it stores. Reports the first event that
/// does not.
#[utoipa::path(get, path = "/v1/memberships/{mid}/audit/verify", tag = "audit",
    params(("mid" = Uuid, Path, description = "Membership id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The result of the check.", body = AuditVerification),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn verify(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
) -> ApiResult<web::Json<AuditVerification>> {
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ReadAudit)
        .await?
        .membership();
    // Read before the events: an append landing during the walk then only
    // adds events past the head, which the walk may also see; the check
    // below accepts a chain that reached its head and went on.
    let head = audit::head(&state.db, mid).await?;
    let mut verifier = Verifier::new();
    let broken = loop {
        let rows = audit::all_in_order(&state.db, mid, verifier.last_seq(), VERIFY_PAGE).await?;
        let Some(broken) = rows.iter().find_map(|row| verifier.push(&audit::as_event(row)).err()) else {
            if (rows.len() as u64) < VERIFY_PAGE {
                break None;
            }
            continue;
        };
        break Some(broken);
    };
    let broken = broken.or_else(|| {
        let head = head.as_ref()?;
        // Events appended after the head was read (seq beyond it) are not a
        // break: the chain still passed through the recorded head.
        if verifier.last_seq() > head.0 {
            return None;
        }
        verifier.finish(Some((head.0, head.1.as_str()))).err()
    });
    Ok(web::Json(AuditVerification {
        ok: broken.is_none(),
        checked: verifier.checked() as u64,
        first_broken: broken.map(|b| AuditBreak {
            seq: b.seq,
            event_id: b.event_id.map(|id| id.as_uuid()),
            reason: match b.reason {
                BreakReason::SeqGap => AuditBreakReason::SeqGap,
                BreakReason::PrevMismatch => AuditBreakReason::PrevMismatch,
                BreakReason::HashMismatch => AuditBreakReason::HashMismatch,
                BreakReason::Truncated => AuditBreakReason::Truncated,
            },
        }),
    }))
}
