//! The decision point: may this principal do this in that membership? Every
//! membership-scoped handler asks here and nowhere else. A principal with no
//! standing in the membership gets 404 (the membership's existence is not
//! revealed); one whose role falls short gets 403.
//!
//! The types make the question impossible to skip. An id a client named
//! arrives as a [`Claimed`] id, which hides its value; the functions here
//! take claims and answer with proof: an [`Access`] (which nothing outside
//! this module can make) and the resource itself. A handler gets the ids it
//! reads and writes with from that proof, so one that forgets to ask has no
//! id to pass to storage and does not compile.

use vitalfarm_domain::{DeviceId, FarmId, MembershipId, Permission, Role, SubjectId};
use vitalfarm_storage::entity::{device, farm, subject};
use vitalfarm_storage::repo::{accounts, devices, farms, subjects};

use crate::error::{AppError, AppResult};
use crate::principal::Principal;
use crate::state::AppState;

/// An id as a client named it (in a path, a body, a query), not yet
/// checked. Its value stays inside: the authorizing functions of this
/// module and of `sharing` take it and hand back the resource and the
/// proof of access, and reads and writes use the ids of that proof.
///
/// ```compile_fail
/// use vitalfarm_app::authz::Claimed;
/// use vitalfarm_domain::MembershipId;
///
/// let claimed = Claimed::new(MembershipId::new());
/// // The id is private: a claim cannot be read past the check.
/// let _id: MembershipId = claimed.0;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed<T>(T);

impl<T: Copy> Claimed<T> {
    /// A claim on `id`: what a client asked for, to be authorized.
    pub const fn new(id: T) -> Self {
        Claimed(id)
    }

    /// Names the attempt in an audit record; never for reads or writes.
    /// (A refusal is recorded against the membership the client named,
    /// before there is any proof to take the id from.)
    pub fn for_audit(&self) -> T {
        self.0
    }

    /// The id, for the deciding functions of this crate (`authz`,
    /// `sharing`) to look the resource up and decide on it. Crate-private:
    /// the HTTP adapter has no way past the check.
    pub(crate) fn to_decide(self) -> T {
        self.0
    }
}

/// Proof that the principal may act in `membership` with `role`. Its
/// fields are private and only this module makes one, so holding an
/// `Access` means the question was asked.
///
/// ```compile_fail
/// use vitalfarm_app::authz::Access;
/// use vitalfarm_domain::{MembershipId, Role};
///
/// // Nobody outside `authz` forges the proof.
/// let _forged = Access { membership: MembershipId::new(), role: Role::Owner };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    membership: MembershipId,
    role: Role,
}

impl Access {
    /// The membership the principal was authorized in.
    pub const fn membership(&self) -> MembershipId {
        self.membership
    }

    /// The principal's role there.
    pub const fn role(&self) -> Role {
        self.role
    }
}

/// The principal's role in `membership`, or 404. Crate-private: outside
/// the application layer a role comes only with an `Access`.
pub(crate) async fn role_in(state: &AppState, principal: &Principal, membership: MembershipId) -> AppResult<Role> {
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

/// `role` allowing `permission` in `membership`, as proof; 403 otherwise.
fn grant(membership: MembershipId, role: Role, permission: Permission) -> AppResult<Access> {
    if !role.allows(permission) {
        return Err(AppError::Forbidden(format!(
            "your role ({}) does not allow this",
            role.as_str()
        )));
    }
    Ok(Access { membership, role })
}

/// The principal's access to the membership it claims, for `permission`:
/// 404 without standing there, 403 when the role falls short.
pub async fn authorize(
    state: &AppState,
    principal: &Principal,
    membership: Claimed<MembershipId>,
    permission: Permission,
) -> AppResult<Access> {
    let membership = membership.0;
    let role = role_in(state, principal, membership).await?;
    grant(membership, role, permission)
}

/// The farm `id` and the principal's access to it, or 404 when the farm
/// does not exist or belongs to a membership the principal has no standing
/// in (the two are indistinguishable).
pub async fn farm(
    state: &AppState,
    principal: &Principal,
    id: Claimed<FarmId>,
    permission: Permission,
) -> AppResult<(farm::Model, Access)> {
    let farm = farms::find(&state.db, id.0).await?.ok_or(AppError::NotFound("farm"))?;
    let membership = MembershipId::from_uuid(farm.membership_id);
    let role = role_in(state, principal, membership)
        .await
        .map_err(|_| AppError::NotFound("farm"))?;
    Ok((farm, grant(membership, role, permission)?))
}

/// The subject `id` of the principal's own membership and its access
/// there, for changing it (reads of shared subjects go through
/// `sharing::subject`); 404 for a subject of a membership the principal
/// has no standing in.
pub async fn subject(
    state: &AppState,
    principal: &Principal,
    id: Claimed<SubjectId>,
    permission: Permission,
) -> AppResult<(subject::Model, Access)> {
    let subject = subjects::find(&state.db, id.0)
        .await?
        .ok_or(AppError::NotFound("subject"))?;
    let membership = MembershipId::from_uuid(subject.membership_id);
    let role = role_in(state, principal, membership)
        .await
        .map_err(|_| AppError::NotFound("subject"))?;
    Ok((subject, grant(membership, role, permission)?))
}

/// Which of a device's memberships speaks for it when the principal
/// stands in both its fleet owner and the membership it records for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSide {
    /// The fleet owner first: the device as its maker or operator sees
    /// it (the device routes).
    Fleet,
    /// The membership it records for first: a `MEASURE` result is that
    /// membership's health data (the command routes).
    Recorder,
}

/// The device `id` and the principal's access to it through one of its
/// two memberships (the fleet owner, the one it records for), asked in the
/// order `first` gives: the first where the principal has standing decides,
/// with 403 when the role there falls short. 404 for anyone with standing
/// in neither.
pub async fn device(
    state: &AppState,
    principal: &Principal,
    id: Claimed<DeviceId>,
    permission: Permission,
    first: DeviceSide,
) -> AppResult<(device::Model, Access)> {
    let dev = devices::find(&state.db, id.0)
        .await?
        .ok_or(AppError::NotFound("device"))?;
    let candidates = match first {
        DeviceSide::Fleet => [Some(dev.owner_membership_id), dev.bound_membership_id],
        DeviceSide::Recorder => [dev.bound_membership_id, Some(dev.owner_membership_id)],
    };
    for membership in candidates.into_iter().flatten() {
        let membership = MembershipId::from_uuid(membership);
        if let Ok(role) = role_in(state, principal, membership).await {
            let access = grant(membership, role, permission)?;
            return Ok((dev, access));
        }
    }
    Err(AppError::NotFound("device"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_names_its_id_only_for_the_audit_log() {
        let id = MembershipId::new();
        let claimed = Claimed::new(id);
        assert_eq!(claimed.for_audit(), id);
        // Debug shows the id (for logs of refusals); there is no other way
        // out, as the `compile_fail` example on `Claimed` proves.
        assert!(format!("{claimed:?}").contains(&id.to_string()));
    }

    #[test]
    fn a_role_short_of_the_permission_is_refused_with_403() {
        let m = MembershipId::new();
        let refused = grant(m, Role::Analyst, Permission::WriteData);
        assert!(matches!(refused, Err(AppError::Forbidden(ref text)) if text.contains("analyst")));
        let access = grant(m, Role::Admin, Permission::WriteData).ok();
        assert_eq!(access.map(|a| (a.membership(), a.role())), Some((m, Role::Admin)));
    }
}
