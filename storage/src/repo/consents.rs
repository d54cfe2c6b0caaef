//! Consents and consent requests. The decision itself is
//! `vitalfarm_domain::consent::evaluate`; this module stores consents and
//! hands them back as domain values.

use std::collections::BTreeSet;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use uuid::Uuid;
use vitalfarm_domain::consent::{Access, Consent, Period, Purpose};
use vitalfarm_domain::{ConsentId, ConsentRequestId, MembershipId, SubjectId, UserId};

use crate::entity::{consent as consent_row, consent_request};
use crate::page::{self, Keyset};
use crate::{Database, Page, StorageError};

fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serialising sets of strings and uuids cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn from_json<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

/// The stored row as the domain's consent; `None` for a row whose enums no
/// longer parse, which then permits nothing.
pub fn to_domain(row: &consent_row::Model) -> Option<Consent> {
    Some(Consent {
        grantor: MembershipId::from_uuid(row.grantor_membership_id),
        grantee: MembershipId::from_uuid(row.grantee_membership_id),
        subjects: from_json::<Vec<Uuid>>(&row.subject_ids)
            .into_iter()
            .map(SubjectId::from_uuid)
            .collect(),
        metrics: from_json(&row.metrics),
        farm_paths: from_json(&row.farm_paths),
        purpose: Purpose::parse(&row.purpose)?,
        access: Access::parse(&row.access)?,
        valid: Period {
            from: row.valid_from_ms,
            until: row.valid_until_ms,
        },
        data: Period {
            from: row.data_from_ms,
            until: row.data_until_ms,
        },
        revoked_at: row.revoked_at_ms,
    })
}

pub fn subjects_of(row: &consent_row::Model) -> Vec<SubjectId> {
    from_json::<Vec<Uuid>>(&row.subject_ids)
        .into_iter()
        .map(SubjectId::from_uuid)
        .collect()
}

pub fn strings_of(json: &str) -> Vec<String> {
    from_json(json)
}

pub struct NewConsent<'a> {
    pub consent: &'a Consent,
    pub granted_by: UserId,
    pub request: Option<ConsentRequestId>,
    pub now_ms: i64,
}

fn active_model(c: &NewConsent<'_>) -> consent_row::ActiveModel {
    let subjects: Vec<Uuid> = c.consent.subjects.iter().map(|s| s.as_uuid()).collect();
    consent_row::ActiveModel {
        id: Set(ConsentId::new().as_uuid()),
        grantor_membership_id: Set(c.consent.grantor.as_uuid()),
        grantee_membership_id: Set(c.consent.grantee.as_uuid()),
        subject_ids: Set(to_json(&subjects)),
        metrics: Set(to_json(&c.consent.metrics)),
        farm_paths: Set(to_json(&c.consent.farm_paths)),
        purpose: Set(c.consent.purpose.as_str().to_owned()),
        access: Set(c.consent.access.as_str().to_owned()),
        valid_from_ms: Set(c.consent.valid.from),
        valid_until_ms: Set(c.consent.valid.until),
        data_from_ms: Set(c.consent.data.from),
        data_until_ms: Set(c.consent.data.until),
        revoked_at_ms: Set(None),
        revoked_by: Set(None),
        granted_by: Set(Some(c.granted_by.as_uuid())),
        request_id: Set(c.request.map(|r| r.as_uuid())),
        created_at_ms: Set(c.now_ms),
    }
}

/// Stores a new consent on `conn` (pass the transaction of the consent
/// change, so its audit events and outbound events go with it).
pub async fn create(conn: &impl ConnectionTrait, c: NewConsent<'_>) -> Result<consent_row::Model, StorageError> {
    Ok(active_model(&c).insert(conn).await?)
}

pub async fn find(db: &Database, id: ConsentId) -> Result<Option<consent_row::Model>, StorageError> {
    Ok(consent_row::Entity::find_by_id(id.as_uuid()).one(db.conn()).await?)
}

/// The consents `grantor` has given any of `grantees`, not revoked, in
/// creation order: what a read of the grantor's data is evaluated against.
/// Expired ones are included; the evaluation tells them apart.
pub async fn between(
    db: &Database,
    grantor: MembershipId,
    grantees: &[MembershipId],
) -> Result<Vec<consent_row::Model>, StorageError> {
    if grantees.is_empty() {
        return Ok(Vec::new());
    }
    Ok(consent_row::Entity::find()
        .filter(consent_row::Column::GrantorMembershipId.eq(grantor.as_uuid()))
        .filter(consent_row::Column::GranteeMembershipId.is_in(grantees.iter().map(|g| g.as_uuid())))
        .filter(consent_row::Column::RevokedAtMs.is_null())
        .order_by_asc(consent_row::Column::Id)
        .all(db.conn())
        .await?)
}

/// Which consents to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Grantor,
    Grantee,
    Either,
}

/// Consents where one of `memberships` is on `side`, newest last, paginated.
pub async fn list(
    db: &Database,
    memberships: &[MembershipId],
    side: Side,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<consent_row::Model>, StorageError> {
    let ids: Vec<Uuid> = memberships.iter().map(|m| m.as_uuid()).collect();
    let cond = match side {
        Side::Grantor => Condition::all().add(consent_row::Column::GrantorMembershipId.is_in(ids)),
        Side::Grantee => Condition::all().add(consent_row::Column::GranteeMembershipId.is_in(ids)),
        Side::Either => Condition::any()
            .add(consent_row::Column::GrantorMembershipId.is_in(ids.clone()))
            .add(consent_row::Column::GranteeMembershipId.is_in(ids)),
    };
    let q = consent_row::Entity::find().filter(cond);
    page::fetch(
        db.conn(),
        q,
        Keyset::after(consent_row::Column::Id, after, limit),
        |r| r.id,
    )
    .await
}

/// Consents given to `grantees`, not revoked and not past `valid_until`
/// at `now_ms`: what `GET /v1/shared-with-me` shows.
pub async fn live_for_grantees(
    db: &Database,
    grantees: &[MembershipId],
    now_ms: i64,
) -> Result<Vec<consent_row::Model>, StorageError> {
    if grantees.is_empty() {
        return Ok(Vec::new());
    }
    Ok(consent_row::Entity::find()
        .filter(consent_row::Column::GranteeMembershipId.is_in(grantees.iter().map(|g| g.as_uuid())))
        .filter(consent_row::Column::RevokedAtMs.is_null())
        .filter(
            Condition::any()
                .add(consent_row::Column::ValidUntilMs.is_null())
                .add(consent_row::Column::ValidUntilMs.gt(now_ms)),
        )
        .order_by_asc(consent_row::Column::Id)
        .all(db.conn())
        .await?)
}

/// Revokes the consent; final. `Ok(None)` when it was revoked already (the
/// first revocation's time stands).
pub async fn revoke(
    conn: &impl ConnectionTrait,
    id: ConsentId,
    by: Option<UserId>,
    now_ms: i64,
) -> Result<Option<consent_row::Model>, StorageError> {
    let res = consent_row::Entity::update_many()
        .col_expr(consent_row::Column::RevokedAtMs, Expr::value(now_ms))
        .col_expr(consent_row::Column::RevokedBy, Expr::value(by.map(|u| u.as_uuid())))
        .filter(consent_row::Column::Id.eq(id.as_uuid()))
        .filter(consent_row::Column::RevokedAtMs.is_null())
        .exec(conn)
        .await?;
    if res.rows_affected == 0 {
        return Ok(None);
    }
    Ok(consent_row::Entity::find_by_id(id.as_uuid()).one(conn).await?)
}

/// Consents where `membership` is either party and that are not revoked:
/// what an erasure of it ends.
pub async fn open_of(db: &Database, membership: MembershipId) -> Result<Vec<consent_row::Model>, StorageError> {
    Ok(consent_row::Entity::find()
        .filter(
            Condition::any()
                .add(consent_row::Column::GrantorMembershipId.eq(membership.as_uuid()))
                .add(consent_row::Column::GranteeMembershipId.eq(membership.as_uuid())),
        )
        .filter(consent_row::Column::RevokedAtMs.is_null())
        .all(db.conn())
        .await?)
}

/// Inside `txn`: revokes every consent `membership` gave or received, and
/// withdraws its pending requests (an erased membership neither shares
/// nor reads).
pub async fn end_all_of(
    txn: &impl sea_orm::ConnectionTrait,
    membership: MembershipId,
    by: Option<UserId>,
    now_ms: i64,
) -> Result<(), StorageError> {
    consent_row::Entity::update_many()
        .col_expr(consent_row::Column::RevokedAtMs, Expr::value(now_ms))
        .col_expr(consent_row::Column::RevokedBy, Expr::value(by.map(|u| u.as_uuid())))
        .filter(
            Condition::any()
                .add(consent_row::Column::GrantorMembershipId.eq(membership.as_uuid()))
                .add(consent_row::Column::GranteeMembershipId.eq(membership.as_uuid())),
        )
        .filter(consent_row::Column::RevokedAtMs.is_null())
        .exec(txn)
        .await?;
    consent_request::Entity::delete_many()
        .filter(consent_request::Column::RequesterMembershipId.eq(membership.as_uuid()))
        .filter(consent_request::Column::Status.eq("pending"))
        .exec(txn)
        .await?;
    Ok(())
}

// ---- requests ----

pub struct NewRequest<'a> {
    pub requester: MembershipId,
    pub requested_by: Option<UserId>,
    pub individual_email: &'a str,
    pub metrics: &'a BTreeSet<String>,
    pub farm_paths: &'a BTreeSet<String>,
    pub purpose: Purpose,
    pub access: Access,
    pub duration_secs: i64,
    pub data: Period,
    pub note: Option<&'a str>,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

pub async fn create_request(
    conn: &impl ConnectionTrait,
    r: NewRequest<'_>,
) -> Result<consent_request::Model, StorageError> {
    Ok(consent_request::ActiveModel {
        id: Set(ConsentRequestId::new().as_uuid()),
        requester_membership_id: Set(r.requester.as_uuid()),
        requested_by: Set(r.requested_by.map(|u| u.as_uuid())),
        individual_email: Set(r.individual_email.to_owned()),
        metrics: Set(to_json(r.metrics)),
        farm_paths: Set(to_json(r.farm_paths)),
        purpose: Set(r.purpose.as_str().to_owned()),
        access: Set(r.access.as_str().to_owned()),
        duration_secs: Set(r.duration_secs),
        data_from_ms: Set(r.data.from),
        data_until_ms: Set(r.data.until),
        note: Set(r.note.map(str::to_owned)),
        status: Set("pending".into()),
        decided_at_ms: Set(None),
        decided_by: Set(None),
        consent_id: Set(None),
        created_at_ms: Set(r.now_ms),
        expires_at_ms: Set(r.expires_at_ms),
    }
    .insert(conn)
    .await?)
}

pub async fn find_request(db: &Database, id: ConsentRequestId) -> Result<Option<consent_request::Model>, StorageError> {
    Ok(consent_request::Entity::find_by_id(id.as_uuid()).one(db.conn()).await?)
}

/// Requests addressed to `email` or made by one of `requesters`, oldest
/// first, paginated.
pub async fn list_requests(
    db: &Database,
    email: Option<&str>,
    requesters: &[MembershipId],
    status: Option<&str>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<consent_request::Model>, StorageError> {
    let mut cond = Condition::any();
    if let Some(email) = email {
        cond = cond.add(consent_request::Column::IndividualEmail.eq(email));
    }
    if !requesters.is_empty() {
        cond = cond.add(consent_request::Column::RequesterMembershipId.is_in(requesters.iter().map(|m| m.as_uuid())));
    }
    if email.is_none() && requesters.is_empty() {
        return Ok(Page {
            items: Vec::new(),
            next: None,
        });
    }
    let mut q = consent_request::Entity::find().filter(cond);
    if let Some(status) = status {
        q = q.filter(consent_request::Column::Status.eq(status));
    }
    page::fetch(
        db.conn(),
        q,
        Keyset::after(consent_request::Column::Id, after, limit),
        |r| r.id,
    )
    .await
}

/// Inside the caller's `txn`: approves a pending request by creating
/// `consent`. A request is decided once, so two approvals racing end with
/// one consent and one `Conflict` (the caller then drops its transaction,
/// which takes the second consent back).
pub async fn approve(
    txn: &DatabaseTransaction,
    request: ConsentRequestId,
    c: NewConsent<'_>,
) -> Result<(consent_request::Model, consent_row::Model), StorageError> {
    let created = active_model(&c).insert(txn).await?;
    let decided = consent_request::Entity::update_many()
        .col_expr(consent_request::Column::Status, Expr::value("approved"))
        .col_expr(consent_request::Column::DecidedAtMs, Expr::value(c.now_ms))
        .col_expr(consent_request::Column::DecidedBy, Expr::value(c.granted_by.as_uuid()))
        .col_expr(consent_request::Column::ConsentId, Expr::value(created.id))
        .filter(consent_request::Column::Id.eq(request.as_uuid()))
        .filter(consent_request::Column::Status.eq("pending"))
        .exec(txn)
        .await?;
    if decided.rows_affected != 1 {
        return Err(StorageError::Conflict("this request has been decided already"));
    }
    let row = consent_request::Entity::find_by_id(request.as_uuid())
        .one(txn)
        .await?
        .ok_or(StorageError::NotFound)?;
    Ok((row, created))
}

/// Denies a pending request on `conn`; `Conflict` when it was decided
/// already.
pub async fn deny(
    conn: &impl ConnectionTrait,
    request: ConsentRequestId,
    by: UserId,
    now_ms: i64,
) -> Result<consent_request::Model, StorageError> {
    let res = consent_request::Entity::update_many()
        .col_expr(consent_request::Column::Status, Expr::value("denied"))
        .col_expr(consent_request::Column::DecidedAtMs, Expr::value(now_ms))
        .col_expr(consent_request::Column::DecidedBy, Expr::value(by.as_uuid()))
        .filter(consent_request::Column::Id.eq(request.as_uuid()))
        .filter(consent_request::Column::Status.eq("pending"))
        .exec(conn)
        .await?;
    if res.rows_affected != 1 {
        return Err(StorageError::Conflict("this request has been decided already"));
    }
    consent_request::Entity::find_by_id(request.as_uuid())
        .one(conn)
        .await?
        .ok_or(StorageError::NotFound)
}
