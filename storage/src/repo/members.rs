//! A company's staff: who belongs to the membership, with which role.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use uuid::Uuid;
use vitalfarm_domain::{Email, MembershipId, Role, UserId};

use crate::entity::{invitation, member_role, membership, user};
use crate::page::Keyset;
use crate::{Database, Page, StorageError};

#[derive(Debug, Clone)]
pub struct Member {
    pub user: user::Model,
    pub role: Role,
    pub since: DateTime<Utc>,
}

/// The invitation mailed to the invitee: its token's hash and expiry.
pub struct Invite {
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    /// Who invited (for the record; `None` for an API key).
    pub invited_by: Option<UserId>,
}

/// What inviting an address did.
pub enum Added {
    /// No account had the address: a placeholder account was created and
    /// joined at once with status `invited`; the mailed token completes it.
    NewAccount(Member),
    /// An account has the address: an invitation now waits for its owner
    /// to accept it. `token_used` says whether the mailed token works (the
    /// account is itself an unclaimed invitation, so its owner cannot sign
    /// in to accept).
    Pending {
        invitation: invitation::Model,
        user: user::Model,
        token_used: bool,
    },
}

pub async fn list(
    db: &Database,
    membership: MembershipId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<Member>, StorageError> {
    // Keyed on the user, so a member's place does not depend on a row id;
    // joined with the user, so not `page::fetch`.
    let keyset = Keyset::after(member_role::Column::UserId, after, limit);
    let q = member_role::Entity::find()
        .filter(member_role::Column::MembershipId.eq(membership.as_uuid()))
        .find_also_related(user::Entity);
    let rows = keyset.apply(q).all(db.conn()).await?;
    let members = rows.into_iter().filter_map(|(r, u)| to_member(r, u?)).collect();
    Ok(Page::from_overfetch(members, keyset.limit(), |m: &Member| m.user.id))
}

pub async fn get(db: &Database, membership: MembershipId, user_id: UserId) -> Result<Member, StorageError> {
    let row = member_role::Entity::find_by_id((membership.as_uuid(), user_id.as_uuid()))
        .find_also_related(user::Entity)
        .one(db.conn())
        .await?;
    row.and_then(|(r, u)| to_member(r, u?)).ok_or(StorageError::NotFound)
}

fn to_member(r: member_role::Model, u: user::Model) -> Option<Member> {
    Some(Member {
        role: Role::parse(&r.role)?,
        since: r.created_at,
        user: u,
    })
}

/// Invites `email` to the membership with `role`. Someone without an
/// account gets a placeholder account carrying the invitation (completed
/// when they sign up with the mailed token). An existing account is never
/// added here: an invitation waits until its owner accepts it, so taking
/// someone's address before they sign up gains no role.
pub async fn add(
    db: &Database,
    membership: MembershipId,
    email: &Email,
    role: Role,
    invite: Invite,
) -> Result<Added, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let existing = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(&txn)
        .await?;
    let Some(user) = existing else {
        let u = user::ActiveModel {
            id: Set(UserId::new().as_uuid()),
            email: Set(email.as_str().to_owned()),
            password_hash: Set(None),
            display_name: Set(email.local_part().to_owned()),
            invite_token_hash: Set(Some(invite.token_hash)),
            invite_expires_at: Set(Some(invite.expires_at)),
            email_verified_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|e| StorageError::unique(e, "a user with this email was created concurrently; retry"))?;
        let row = member_role::ActiveModel {
            membership_id: Set(membership.as_uuid()),
            user_id: Set(u.id),
            role: Set(role.as_str().to_owned()),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        return Ok(Added::NewAccount(Member {
            user: u,
            role,
            since: row.created_at,
        }));
    };
    let already = member_role::Entity::find_by_id((membership.as_uuid(), user.id))
        .one(&txn)
        .await?;
    if already.is_some() {
        return Err(StorageError::Conflict("this user is already a member"));
    }
    let token_used = user.password_hash.is_none();
    // Inviting again replaces the earlier invitation (new role, new expiry,
    // new mail), so there is at most one per membership and user.
    invitation::Entity::delete_many()
        .filter(invitation::Column::MembershipId.eq(membership.as_uuid()))
        .filter(invitation::Column::UserId.eq(user.id))
        .exec(&txn)
        .await?;
    let invitation = invitation::ActiveModel {
        id: Set(Uuid::now_v7()),
        membership_id: Set(membership.as_uuid()),
        user_id: Set(user.id),
        role: Set(role.as_str().to_owned()),
        invited_by: Set(invite.invited_by.map(|u| u.as_uuid())),
        token_hash: Set(token_used.then_some(invite.token_hash)),
        created_at: Set(now),
        expires_at: Set(invite.expires_at),
    }
    .insert(&txn)
    .await
    .map_err(|e| StorageError::unique(e, "this user was invited concurrently; retry"))?;
    txn.commit().await?;
    Ok(Added::Pending {
        invitation,
        user,
        token_used,
    })
}

/// A pending invitation with the membership it is for.
#[derive(Debug, Clone)]
pub struct PendingInvitation {
    pub invitation: invitation::Model,
    pub membership: membership::Model,
}

/// The user's invitations that have not expired, oldest first.
pub async fn invitations_of_user(db: &Database, user_id: UserId) -> Result<Vec<PendingInvitation>, StorageError> {
    let rows = invitation::Entity::find()
        .filter(invitation::Column::UserId.eq(user_id.as_uuid()))
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
        .find_also_related(membership::Entity)
        .order_by_asc(invitation::Column::Id)
        .all(db.conn())
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(invitation, m)| {
            let membership = m.filter(|m| m.erased_at.is_none())?;
            Some(PendingInvitation { invitation, membership })
        })
        .collect())
}

/// The live invitation whose mailed token has hash `token_hash`.
pub async fn invitation_by_token(db: &Database, token_hash: &str) -> Result<Option<invitation::Model>, StorageError> {
    Ok(invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(token_hash))
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
        .one(db.conn())
        .await?)
}

/// The user accepts their invitation `id`: they join with its role and the
/// invitation is gone, in one transaction. `NotFound` for an invitation
/// that is not theirs, expired or already answered.
pub async fn accept_invitation(db: &Database, user_id: UserId, id: Uuid) -> Result<(MembershipId, Role), StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let inv = invitation::Entity::find_by_id(id)
        .filter(invitation::Column::UserId.eq(user_id.as_uuid()))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .one(&txn)
        .await?
        .ok_or(StorageError::NotFound)?;
    let role = Role::parse(&inv.role).ok_or(StorageError::NotFound)?;
    // An erased membership takes nobody in.
    membership::Entity::find_by_id(inv.membership_id)
        .one(&txn)
        .await?
        .filter(|m| m.erased_at.is_none())
        .ok_or(StorageError::NotFound)?;
    let gone = invitation::Entity::delete_by_id(inv.id).exec(&txn).await?;
    if gone.rows_affected == 0 {
        return Err(StorageError::NotFound);
    }
    member_role::ActiveModel {
        membership_id: Set(inv.membership_id),
        user_id: Set(inv.user_id),
        role: Set(role.as_str().to_owned()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| StorageError::unique(e, "you are already a member"))?;
    txn.commit().await?;
    Ok((MembershipId::from_uuid(inv.membership_id), role))
}

/// The user declines their invitation `id` (it is deleted).
pub async fn decline_invitation(db: &Database, user_id: UserId, id: Uuid) -> Result<MembershipId, StorageError> {
    let inv = invitation::Entity::find_by_id(id)
        .filter(invitation::Column::UserId.eq(user_id.as_uuid()))
        .one(db.conn())
        .await?
        .ok_or(StorageError::NotFound)?;
    let gone = invitation::Entity::delete_by_id(inv.id).exec(db.conn()).await?;
    if gone.rows_affected == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(MembershipId::from_uuid(inv.membership_id))
}

/// Serialises role changes within one membership: on PostgreSQL the
/// membership row is locked for the transaction, so two owners demoting each
/// other at once cannot both see the other as the remaining owner. (SQLite
/// runs one write transaction at a time anyway.)
async fn lock_membership(txn: &impl ConnectionTrait, membership: MembershipId) -> Result<(), StorageError> {
    crate::entity::membership::Entity::find_by_id(membership.as_uuid())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(StorageError::NotFound)?;
    Ok(())
}

/// Refuses a change that would leave the membership without an owner.
async fn ensure_owner_remains(
    txn: &impl ConnectionTrait,
    membership: MembershipId,
    losing: UserId,
) -> Result<(), StorageError> {
    let other_owners = member_role::Entity::find()
        .filter(member_role::Column::MembershipId.eq(membership.as_uuid()))
        .filter(member_role::Column::Role.eq(Role::Owner.as_str()))
        .filter(member_role::Column::UserId.ne(losing.as_uuid()))
        .count(txn)
        .await?;
    if other_owners == 0 {
        return Err(StorageError::Conflict("the last owner cannot be removed or demoted"));
    }
    Ok(())
}

pub async fn set_role(
    db: &Database,
    membership: MembershipId,
    user_id: UserId,
    role: Role,
) -> Result<Member, StorageError> {
    let txn = db.begin_write().await?;
    lock_membership(&txn, membership).await?;
    let current = member_role::Entity::find_by_id((membership.as_uuid(), user_id.as_uuid()))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(StorageError::NotFound)?;
    if current.role == Role::Owner.as_str() && role != Role::Owner {
        ensure_owner_remains(&txn, membership, user_id).await?;
    }
    let mut active: member_role::ActiveModel = current.into();
    active.role = Set(role.as_str().to_owned());
    active.update(&txn).await?;
    txn.commit().await?;
    get(db, membership, user_id).await
}

/// Removes a member, and in the same transaction revokes the API keys they
/// created or hands them to another member (`keys`); returns how many keys
/// were revoked or handed over.
pub async fn remove(
    db: &Database,
    membership: MembershipId,
    user_id: UserId,
    keys: super::api_keys::OnCreatorLeaving,
) -> Result<u64, StorageError> {
    let txn = db.begin_write().await?;
    lock_membership(&txn, membership).await?;
    let current = member_role::Entity::find_by_id((membership.as_uuid(), user_id.as_uuid()))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(StorageError::NotFound)?;
    if current.role == Role::Owner.as_str() {
        ensure_owner_remains(&txn, membership, user_id).await?;
    }
    if let super::api_keys::OnCreatorLeaving::ReassignTo(heir) = keys {
        // Read under the same lock: the heir cannot leave meanwhile.
        let heir_role = member_role::Entity::find_by_id((membership.as_uuid(), heir.as_uuid()))
            .one(&txn)
            .await?
            .and_then(|r| Role::parse(&r.role));
        let Some(heir_role) = heir_role.filter(|_| heir != user_id) else {
            return Err(StorageError::Conflict(super::api_keys::HEIR_NOT_A_MEMBER));
        };
        // Roles order from most to least powerful: a key never holds more
        // power than the person answerable for it.
        let keys = super::api_keys::live_created_by_in(&txn, membership, user_id).await?;
        if keys.iter().any(|k| Role::parse(&k.role).is_none_or(|r| r < heir_role)) {
            return Err(StorageError::Conflict(super::api_keys::HEIR_TOO_WEAK));
        }
    }
    let touched = super::api_keys::on_creator_leaving_in(&txn, membership, user_id, keys).await?;
    member_role::Entity::delete_by_id((membership.as_uuid(), user_id.as_uuid()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(touched)
}
