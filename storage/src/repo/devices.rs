//! Device models and devices: registration (one or thousands at once, all
//! or nothing), life cycle, secrets, claiming and assignment.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;
use vitalfarm_domain::{DeviceId, DeviceModelId, DeviceStatus, MembershipId, SubjectId};

use crate::entity::{device, device_model};
use crate::page::{self, Keyset};
use crate::{Database, Page, StorageError};

/// Rows per INSERT: far below SQLite's and PostgreSQL's bound-parameter
/// limits for a 14-column table.
const INSERT_BATCH: usize = 500;

pub async fn create_model(
    db: &Database,
    membership: MembershipId,
    name: &str,
    manufacturer: &str,
    metrics: &[String],
) -> Result<device_model::Model, StorageError> {
    Ok(device_model::ActiveModel {
        id: Set(DeviceModelId::new().as_uuid()),
        membership_id: Set(membership.as_uuid()),
        name: Set(name.to_owned()),
        manufacturer: Set(manufacturer.to_owned()),
        metrics: Set(serde_json::to_string(metrics).unwrap_or_else(|_| "[]".into())),
        created_at: Set(Utc::now()),
    }
    .insert(db.conn())
    .await?)
}

pub async fn list_models(
    db: &Database,
    membership: MembershipId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<device_model::Model>, StorageError> {
    let q = device_model::Entity::find().filter(device_model::Column::MembershipId.eq(membership.as_uuid()));
    page::fetch(
        db.conn(),
        q,
        Keyset::after(device_model::Column::Id, after, limit),
        |m| m.id,
    )
    .await
}

pub async fn find_model_in(
    db: &Database,
    membership: MembershipId,
    id: Uuid,
) -> Result<Option<device_model::Model>, StorageError> {
    Ok(device_model::Entity::find_by_id(id)
        .filter(device_model::Column::MembershipId.eq(membership.as_uuid()))
        .one(db.conn())
        .await?)
}

pub struct NewDevice {
    pub id: DeviceId,
    pub serial: String,
    pub model_id: Option<Uuid>,
    pub secret_hash: String,
    pub claim_code_hash: String,
    pub claim_expires_at: DateTime<Utc>,
}

/// Registers `devices` in `owner`'s fleet, all or none. Serials already in
/// the fleet come back as `(index, message)` and nothing is stored.
pub async fn register(
    db: &Database,
    owner: MembershipId,
    devices: Vec<NewDevice>,
) -> Result<Result<Vec<device::Model>, Vec<(usize, String)>>, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let mut clashes = Vec::new();
    for (chunk_no, chunk) in devices.chunks(INSERT_BATCH).enumerate() {
        let serials: Vec<&str> = chunk.iter().map(|d| d.serial.as_str()).collect();
        let taken: Vec<String> = device::Entity::find()
            .select_only()
            .column(device::Column::Serial)
            .filter(device::Column::OwnerMembershipId.eq(owner.as_uuid()))
            .filter(device::Column::Serial.is_in(serials))
            .into_tuple()
            .all(&txn)
            .await?;
        for (i, d) in chunk.iter().enumerate() {
            if taken.contains(&d.serial) {
                clashes.push((
                    chunk_no * INSERT_BATCH + i,
                    format!("serial {} is already registered in this fleet", d.serial),
                ));
            }
        }
    }
    if !clashes.is_empty() {
        txn.rollback().await?;
        return Ok(Err(clashes));
    }
    let mut out = Vec::with_capacity(devices.len());
    for chunk in devices.chunks(INSERT_BATCH) {
        let models: Vec<device::Model> = chunk
            .iter()
            .map(|d| device::Model {
                id: d.id.as_uuid(),
                owner_membership_id: owner.as_uuid(),
                model_id: d.model_id,
                serial: d.serial.clone(),
                status: DeviceStatus::Provisioned.as_str().to_owned(),
                secret_hash: d.secret_hash.clone(),
                claim_code_hash: Some(d.claim_code_hash.clone()),
                claim_expires_at: Some(d.claim_expires_at),
                bound_membership_id: None,
                subject_id: None,
                last_seen_at: None,
                offline_due_ms: None,
                offline_at_ms: None,
                last_error: None,
                last_error_at: None,
                created_at: now,
                updated_at: now,
            })
            .collect();
        let active: Vec<device::ActiveModel> = models.iter().cloned().map(Into::into).collect();
        device::Entity::insert_many(active)
            .exec(&txn)
            .await
            .map_err(|e| StorageError::unique(e, "a serial was registered concurrently; retry"))?;
        out.extend(models);
    }
    txn.commit().await?;
    Ok(Ok(out))
}

pub async fn find(db: &Database, id: DeviceId) -> Result<Option<device::Model>, StorageError> {
    Ok(device::Entity::find_by_id(id.as_uuid()).one(db.conn()).await?)
}

#[derive(Default)]
pub struct DeviceFilter {
    pub status: Option<DeviceStatus>,
    pub model_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
}

/// Devices the membership owns (its fleet) or that record its subjects.
pub async fn list(
    db: &Database,
    membership: MembershipId,
    filter: DeviceFilter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<device::Model>, StorageError> {
    let mut q = device::Entity::find().filter(
        Condition::any()
            .add(device::Column::OwnerMembershipId.eq(membership.as_uuid()))
            .add(device::Column::BoundMembershipId.eq(membership.as_uuid())),
    );
    if let Some(s) = filter.status {
        q = q.filter(device::Column::Status.eq(s.as_str()));
    }
    if let Some(m) = filter.model_id {
        q = q.filter(device::Column::ModelId.eq(m));
    }
    if let Some(s) = filter.subject_id {
        q = q.filter(device::Column::SubjectId.eq(s));
    }
    page::fetch(db.conn(), q, Keyset::after(device::Column::Id, after, limit), |d| d.id).await
}

pub async fn set_status(db: &Database, id: DeviceId, status: DeviceStatus) -> Result<device::Model, StorageError> {
    device::Entity::update_many()
        .col_expr(device::Column::Status, Expr::value(status.as_str()))
        .col_expr(device::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(device::Column::Id.eq(id.as_uuid()))
        .exec(db.conn())
        .await?;
    find(db, id).await?.ok_or(StorageError::NotFound)
}

pub async fn set_secret(db: &Database, id: DeviceId, secret_hash: String) -> Result<(), StorageError> {
    device::Entity::update_many()
        .col_expr(device::Column::SecretHash, Expr::value(secret_hash))
        .col_expr(device::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(device::Column::Id.eq(id.as_uuid()))
        .exec(db.conn())
        .await?;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// No device has this code (or it was claimed already: codes are single
    /// use).
    Unknown,
    Expired,
    Retired,
}

/// Binds the device with this claim code to `subject` of `membership`. The
/// code is spent in the same conditional update, so it works exactly once.
pub async fn claim(
    db: &Database,
    claim_code_hash: &str,
    membership: MembershipId,
    subject: SubjectId,
) -> Result<Result<device::Model, ClaimError>, StorageError> {
    let now = Utc::now();
    let Some(dev) = device::Entity::find()
        .filter(device::Column::ClaimCodeHash.eq(claim_code_hash))
        .one(db.conn())
        .await?
    else {
        return Ok(Err(ClaimError::Unknown));
    };
    if dev.claim_expires_at.is_some_and(|t| t <= now) {
        return Ok(Err(ClaimError::Expired));
    }
    if dev.status == DeviceStatus::Retired.as_str() {
        return Ok(Err(ClaimError::Retired));
    }
    let changed = bind(db.conn(), &dev, membership, subject, Some(claim_code_hash)).await?;
    if changed != 1 {
        return Ok(Err(ClaimError::Unknown));
    }
    Ok(Ok(find(db, DeviceId::from_uuid(dev.id))
        .await?
        .ok_or(StorageError::NotFound)?))
}

/// Binds a fleet device to one of its owner's subjects. The claim code dies:
/// an assigned device cannot be claimed away.
pub async fn assign(
    db: &Database,
    id: DeviceId,
    membership: MembershipId,
    subject: SubjectId,
) -> Result<device::Model, StorageError> {
    let dev = find(db, id).await?.ok_or(StorageError::NotFound)?;
    bind(db.conn(), &dev, membership, subject, None).await?;
    find(db, id).await?.ok_or(StorageError::NotFound)
}

/// Binds `dev` to `subject` of `membership` and spends its claim code; a
/// provisioned device becomes active. With `only_with_code`, only while the
/// device still has that code (so a claim code works once); returns the
/// rows changed.
async fn bind(
    db: &impl sea_orm::ConnectionTrait,
    dev: &device::Model,
    membership: MembershipId,
    subject: SubjectId,
    only_with_code: Option<&str>,
) -> Result<u64, StorageError> {
    let status = if dev.status == DeviceStatus::Provisioned.as_str() {
        DeviceStatus::Active.as_str()
    } else {
        dev.status.as_str()
    };
    let mut q = device::Entity::update_many()
        .col_expr(device::Column::ClaimCodeHash, Expr::value(Option::<String>::None))
        .col_expr(
            device::Column::ClaimExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            device::Column::BoundMembershipId,
            Expr::value(Some(membership.as_uuid())),
        )
        .col_expr(device::Column::SubjectId, Expr::value(Some(subject.as_uuid())))
        .col_expr(device::Column::Status, Expr::value(status))
        .col_expr(device::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(device::Column::Id.eq(dev.id));
    if let Some(code) = only_with_code {
        q = q.filter(device::Column::ClaimCodeHash.eq(code));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// Records contact from the device at most once a minute, so a chatty
/// device does not turn every message into an extra write; it clears the
/// offline flag and moves the time its silence would make it offline to
/// `offline_after` from now (always written when flagged or when that
/// period is short enough for a skipped write to matter).
/// Records why a message of the device was dropped (a short reason, never
/// the message itself, which may hold health values).
pub async fn record_error(db: &Database, id: uuid::Uuid, reason: &str) -> Result<(), StorageError> {
    device::Entity::update_many()
        .col_expr(
            device::Column::LastError,
            Expr::value(Some(reason.chars().take(300).collect::<String>())),
        )
        .col_expr(device::Column::LastErrorAt, Expr::value(Some(Utc::now())))
        .filter(device::Column::Id.eq(id))
        .exec(db.conn())
        .await?;
    Ok(())
}

pub async fn touch(db: &Database, dev: &device::Model, offline_after: chrono::Duration) -> Result<(), StorageError> {
    let now = Utc::now();
    let quiet = offline_after > chrono::Duration::minutes(2) && dev.offline_at_ms.is_none();
    if quiet && dev.last_seen_at.is_some_and(|t| now - t < chrono::Duration::minutes(1)) {
        return Ok(());
    }
    device::Entity::update_many()
        .col_expr(device::Column::LastSeenAt, Expr::value(Some(now)))
        .col_expr(
            device::Column::OfflineDueMs,
            Expr::value(Some((now + offline_after).timestamp_millis())),
        )
        .col_expr(device::Column::OfflineAtMs, Expr::value(Option::<i64>::None))
        .filter(device::Column::Id.eq(dev.id))
        .exec(db.conn())
        .await?;
    Ok(())
}
