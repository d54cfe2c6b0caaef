//! Subjects of a membership.

use chrono::{NaiveDate, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;
use vitalfarm_domain::{MembershipId, Sex, SubjectId, SubjectKind};

use crate::entity::subject;
use crate::page::{self, Keyset};
use crate::{Database, Page, StorageError};

pub struct NewSubject<'a> {
    pub kind: SubjectKind,
    pub display_name: &'a str,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub external_ref: Option<&'a str>,
}

pub async fn create(
    db: &Database,
    membership: MembershipId,
    s: NewSubject<'_>,
) -> Result<subject::Model, StorageError> {
    let now = Utc::now();
    Ok(subject::ActiveModel {
        id: Set(SubjectId::new().as_uuid()),
        membership_id: Set(membership.as_uuid()),
        kind: Set(s.kind.as_str().to_owned()),
        display_name: Set(s.display_name.to_owned()),
        birth_date: Set(s.birth_date),
        sex: Set(s.sex.map(|x| x.as_str().to_owned())),
        external_ref: Set(s.external_ref.map(str::to_owned)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db.conn())
    .await?)
}

pub async fn find(db: &Database, id: SubjectId) -> Result<Option<subject::Model>, StorageError> {
    Ok(subject::Entity::find_by_id(id.as_uuid()).one(db.conn()).await?)
}

pub async fn list(
    db: &Database,
    membership: MembershipId,
    kind: Option<SubjectKind>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<subject::Model>, StorageError> {
    let mut q = subject::Entity::find().filter(subject::Column::MembershipId.eq(membership.as_uuid()));
    if let Some(kind) = kind {
        q = q.filter(subject::Column::Kind.eq(kind.as_str()));
    }
    page::fetch(db.conn(), q, Keyset::after(subject::Column::Id, after, limit), |s| s.id).await
}

/// Changes of a subject; `None` leaves a field as it is.
#[derive(Default)]
pub struct SubjectChanges {
    pub display_name: Option<String>,
    pub birth_date: Option<Option<NaiveDate>>,
    pub sex: Option<Option<Sex>>,
    pub external_ref: Option<Option<String>>,
}

pub async fn update(
    db: &Database,
    membership: MembershipId,
    id: SubjectId,
    c: SubjectChanges,
) -> Result<subject::Model, StorageError> {
    let current = subject::Entity::find_by_id(id.as_uuid())
        .filter(subject::Column::MembershipId.eq(membership.as_uuid()))
        .one(db.conn())
        .await?
        .ok_or(StorageError::NotFound)?;
    let mut active: subject::ActiveModel = current.into();
    if let Some(name) = c.display_name {
        active.display_name = Set(name);
    }
    if let Some(date) = c.birth_date {
        active.birth_date = Set(date);
    }
    if let Some(sex) = c.sex {
        active.sex = Set(sex.map(|x| x.as_str().to_owned()));
    }
    if let Some(r) = c.external_ref {
        active.external_ref = Set(r);
    }
    active.updated_at = Set(Utc::now());
    Ok(active.update(db.conn()).await?)
}
