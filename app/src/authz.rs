//! The decision point: may this principal do this in that membership? Every
//! membership-scoped handler asks here and nowhere else. A principal with no
//! standing in the membership gets 404 (the membership's existence is not
//! revealed); one whose role falls short gets 403.

use vitalfarm_domain::{FarmId, MembershipId, Permission, Role};
use vitalfarm_storage::entity::farm;
use vitalfarm_storage::repo::{accounts, farms};

use crate::error::{AppError, AppResult};
use crate::principal::Principal;
use crate::state::AppState;

/// Proof that the principal may act in `membership` with `role`.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub membership: MembershipId,
    pub role: Role,
}

/// The principal's role in `membership`, or 404.
pub async fn role_in(state: &AppState, principal: &Principal, membership: MembershipId) -> AppResult<Role> {
    let role = match principal {
        Principal::User { id } => accounts::role_of(&state.db, *id, membership).await?,
        Principal::ApiKey {
            membership: own, role, ..
        } => (*own == membership).then_some(*role),
        // An app acting for a user stands where that user stands, but never
        // as owner: irreversible acts on a membership (erasure) stay with
        // people.
        Principal::App { user: Some(user), .. } => accounts::role_of(&state.db, *user, membership)
            .await?
            .map(|r| r.max(Role::Admin)),
        // client_credentials: no person approved anything, so the app gets a
        // read-only role in its own membership (analyst). Writes in the
        // company's name stay with people and with API keys, whose role an
        // admin chose deliberately; the scopes narrow the reads further.
        Principal::App {
            user: None,
            membership: Some(own),
            ..
        } => (*own == membership).then_some(Role::Analyst),
        Principal::App { .. } => None,
    };
    role.ok_or(AppError::NotFound("membership"))
}

pub async fn authorize(
    state: &AppState,
    principal: &Principal,
    membership: MembershipId,
    permission: Permission,
) -> AppResult<Access> {
    let role = role_in(state, principal, membership).await?;
    if !role.allows(permission) {
        return Err(AppError::Forbidden(format!(
            "your role ({}) does not allow this",
            role.as_str()
        )));
    }
    Ok(Access { membership, role })
}

/// The farm `id` and the principal's access to it, or 404 when the farm
/// does not exist or belongs to a membership the principal has no standing
/// in (the two are indistinguishable).
pub async fn farm(
    state: &AppState,
    principal: &Principal,
    id: FarmId,
    permission: Permission,
) -> AppResult<(farm::Model, Access)> {
    let farm = farms::find(&state.db, id).await?.ok_or(AppError::NotFound("farm"))?;
    let membership = MembershipId::from_uuid(farm.membership_id);
    let role = role_in(state, principal, membership)
        .await
        .map_err(|_| AppError::NotFound("farm"))?;
    if !role.allows(permission) {
        return Err(AppError::Forbidden(format!(
            "your role ({}) does not allow this",
            role.as_str()
        )));
    }
    Ok((farm, Access { membership, role }))
}
