//! Users, memberships and signup.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use vitalfarm_domain::{Email, MembershipId, MembershipKind, Role, SubjectKind, UserId};

use crate::entity::{farm, member_role, membership, subject, user};
use crate::{Database, StorageError};

pub struct NewSignup<'a> {
    pub email: &'a Email,
    pub password_hash: String,
    pub display_name: &'a str,
    pub kind: MembershipKind,
    pub membership_name: &'a str,
    pub farm_quota_bytes: i64,
}

#[derive(Debug, Clone)]
pub struct Signup {
    pub user: user::Model,
    pub membership: membership::Model,
    pub farm: farm::Model,
    pub subject: Option<subject::Model>,
}

/// One of a user's memberships, as `/v1/me` shows it.
#[derive(Debug, Clone)]
pub struct MembershipOfUser {
    pub membership: membership::Model,
    pub role: Role,
    pub farm_id: Option<uuid::Uuid>,
}

/// Creates the user, the membership with the user as owner, its farm, and
/// for an individual the `self` subject, all or nothing.
pub async fn signup(db: &Database, s: NewSignup<'_>) -> Result<Signup, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let user = user::ActiveModel {
        id: Set(UserId::new().as_uuid()),
        email: Set(s.email.as_str().to_owned()),
        password_hash: Set(Some(s.password_hash)),
        display_name: Set(s.display_name.to_owned()),
        invite_token_hash: Set(None),
        invite_expires_at: Set(None),
        email_verified_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| StorageError::unique(e, "email is already registered"))?;
    let (membership, farm, subject) =
        create_membership(&txn, &user, s.kind, s.membership_name, s.farm_quota_bytes, now).await?;
    txn.commit().await?;
    Ok(Signup {
        user,
        membership,
        farm,
        subject,
    })
}

async fn create_membership(
    txn: &impl ConnectionTrait,
    owner: &user::Model,
    kind: MembershipKind,
    name: &str,
    farm_quota_bytes: i64,
    now: DateTime<Utc>,
) -> Result<(membership::Model, farm::Model, Option<subject::Model>), StorageError> {
    let membership = membership::ActiveModel {
        id: Set(MembershipId::new().as_uuid()),
        kind: Set(kind.as_str().to_owned()),
        name: Set(name.to_owned()),
        created_at: Set(now),
        erased_at: Set(None),
    }
    .insert(txn)
    .await?;
    member_role::ActiveModel {
        membership_id: Set(membership.id),
        user_id: Set(owner.id),
        role: Set(Role::Owner.as_str().to_owned()),
        created_at: Set(now),
    }
    .insert(txn)
    .await?;
    let farm = farm::ActiveModel {
        id: Set(vitalfarm_domain::FarmId::new().as_uuid()),
        membership_id: Set(membership.id),
        quota_bytes: Set(farm_quota_bytes),
        used_bytes: Set(0),
        file_count: Set(0),
        created_at: Set(now),
        wrapped_key: Set(None),
        master_key_id: Set(None),
        max_file_bytes: Set(None),
    }
    .insert(txn)
    .await?;
    let subject = match kind {
        MembershipKind::Individual => Some(
            subject::ActiveModel {
                id: Set(vitalfarm_domain::SubjectId::new().as_uuid()),
                membership_id: Set(membership.id),
                kind: Set(SubjectKind::Myself.as_str().to_owned()),
                display_name: Set(owner.display_name.clone()),
                birth_date: Set(None),
                sex: Set(None),
                external_ref: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(txn)
            .await?,
        ),
        MembershipKind::Company => None,
    };
    Ok((membership, farm, subject))
}

/// Completes the account of a user a company invited: sets the password and
/// the name, clears the invitation and marks the address verified (the
/// token that proves the invitation arrived by mail at it). The update is conditional on the
/// account still being unclaimed, so two racing sign-ups cannot both win.
pub async fn claim_invited(
    db: &Database,
    user_id: UserId,
    password_hash: String,
    display_name: &str,
) -> Result<user::Model, StorageError> {
    let now = Utc::now();
    let res = user::Entity::update_many()
        .col_expr(
            user::Column::PasswordHash,
            sea_orm::sea_query::Expr::value(Some(password_hash)),
        )
        .col_expr(
            user::Column::DisplayName,
            sea_orm::sea_query::Expr::value(display_name.to_owned()),
        )
        .col_expr(
            user::Column::InviteTokenHash,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .col_expr(
            user::Column::InviteExpiresAt,
            sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            user::Column::EmailVerifiedAt,
            sea_orm::sea_query::Expr::value(Some(now)),
        )
        .col_expr(user::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
        .filter(user::Column::Id.eq(user_id.as_uuid()))
        .filter(user::Column::PasswordHash.is_null())
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        return Err(StorageError::Conflict("email is already registered"));
    }
    find_user(db, user_id).await?.ok_or(StorageError::NotFound)
}

pub async fn find_user(db: &Database, id: UserId) -> Result<Option<user::Model>, StorageError> {
    Ok(user::Entity::find_by_id(id.as_uuid()).one(db.conn()).await?)
}

/// The not-yet-activated user an invitation token (by its hash) belongs to.
pub async fn find_invited(db: &Database, invite_token_hash: &str) -> Result<Option<user::Model>, StorageError> {
    Ok(user::Entity::find()
        .filter(user::Column::InviteTokenHash.eq(invite_token_hash))
        .filter(user::Column::PasswordHash.is_null())
        .one(db.conn())
        .await?)
}

pub async fn find_user_by_email(db: &Database, email: &Email) -> Result<Option<user::Model>, StorageError> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db.conn())
        .await?)
}

pub async fn find_membership(
    db: &Database,
    id: MembershipId,
) -> Result<Option<(membership::Model, Option<farm::Model>)>, StorageError> {
    let Some(m) = membership::Entity::find_by_id(id.as_uuid()).one(db.conn()).await? else {
        return Ok(None);
    };
    let farm = farm::Entity::find()
        .filter(farm::Column::MembershipId.eq(m.id))
        .one(db.conn())
        .await?;
    Ok(Some((m, farm)))
}

/// The user's role in the membership, or `None` when the user is not a
/// member: the single question behind every membership-scoped request.
pub async fn role_of(db: &Database, user: UserId, membership: MembershipId) -> Result<Option<Role>, StorageError> {
    let row = member_role::Entity::find_by_id((membership.as_uuid(), user.as_uuid()))
        .one(db.conn())
        .await?;
    Ok(row.and_then(|r| Role::parse(&r.role)))
}

pub async fn memberships_of_user(db: &Database, user: UserId) -> Result<Vec<MembershipOfUser>, StorageError> {
    let rows = member_role::Entity::find()
        .filter(member_role::Column::UserId.eq(user.as_uuid()))
        .find_also_related(membership::Entity)
        .order_by_asc(member_role::Column::MembershipId)
        .all(db.conn())
        .await?;
    let ids: Vec<uuid::Uuid> = rows.iter().map(|(r, _)| r.membership_id).collect();
    let farms = farm::Entity::find()
        .filter(farm::Column::MembershipId.is_in(ids))
        .all(db.conn())
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(role, m)| {
            let m = m?;
            let farm_id = farms.iter().find(|f| f.membership_id == m.id).map(|f| f.id);
            Some(MembershipOfUser {
                role: Role::parse(&role.role)?,
                membership: m,
                farm_id,
            })
        })
        .collect())
}

/// Marks the user's address verified, if it is still `email` (the address
/// the proof was for). Returns whether the account now counts as verified.
pub async fn mark_verified(db: &Database, user_id: UserId, email: &str) -> Result<bool, StorageError> {
    let now = Utc::now();
    user::Entity::update_many()
        .col_expr(
            user::Column::EmailVerifiedAt,
            sea_orm::sea_query::Expr::value(Some(now)),
        )
        .col_expr(user::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
        .filter(user::Column::Id.eq(user_id.as_uuid()))
        .filter(user::Column::Email.eq(email))
        .filter(user::Column::EmailVerifiedAt.is_null())
        .exec(db.conn())
        .await?;
    Ok(find_user(db, user_id)
        .await?
        .is_some_and(|u| u.email == email && u.email_verified_at.is_some()))
}

/// Replaces the user's password hash (only of an account that has one).
pub async fn set_password(db: &Database, user_id: UserId, password_hash: String) -> Result<(), StorageError> {
    let res = user::Entity::update_many()
        .col_expr(
            user::Column::PasswordHash,
            sea_orm::sea_query::Expr::value(Some(password_hash)),
        )
        .col_expr(user::Column::UpdatedAt, sea_orm::sea_query::Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(user_id.as_uuid()))
        .filter(user::Column::PasswordHash.is_not_null())
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}
