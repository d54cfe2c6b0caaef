//! A company's staff: invite, list, change roles, remove.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{Duration, Utc};
use serde_json::json;
use vitalfarm_domain::{Email, MembershipId, MembershipKind, Permission, Role, UserId};
use vitalfarm_openapi::doc::{ConflictResponse, ForbiddenResponse};
use vitalfarm_openapi::members::{
    AddMemberRequest, AddMemberResponse, Member, MemberPage, MemberStatus, RemoveMemberQuery, UpdateMemberRequest,
};
use vitalfarm_storage::repo::{accounts, api_keys, members};

use super::RouteSet;
use crate::error::{ApiResult, AppError, AppResult};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, Json, PageQuery, PathMembershipId, PathUserId, Query};
use vitalfarm_app::audit::{self, Event};
use vitalfarm_app::auth::secrets;
use vitalfarm_app::authz::{self, Claimed};
use vitalfarm_app::mail::messages;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/memberships/{mid}/members", add_member);
    r.add(Method::GET, "/v1/memberships/{mid}/members", list_members);
    r.add(Method::PATCH, "/v1/memberships/{mid}/members/{uid}", update_member);
    r.add(Method::DELETE, "/v1/memberships/{mid}/members/{uid}", remove_member);
}

fn member_dto(m: &members::Member) -> Member {
    Member {
        user_id: m.user.id,
        email: m.user.email.clone(),
        display_name: m.user.display_name.clone(),
        role: m.role,
        status: if m.user.password_hash.is_some() {
            MemberStatus::Active
        } else {
            MemberStatus::Invited
        },
        since: m.since,
    }
}

/// Staff exist only in companies: an individual's membership has its owner
/// and no one else.
pub async fn require_company(state: &AppState, mid: MembershipId) -> ApiResult<()> {
    let (m, _) = accounts::find_membership(&state.db, mid)
        .await?
        .ok_or(AppError::NotFound("membership"))?;
    if MembershipKind::parse(&m.kind) != Some(MembershipKind::Company) {
        return Err(AppError::Conflict("only company memberships have staff and API keys".into()).into());
    }
    Ok(())
}

/// Invites someone by email. Nobody is added by this call alone: someone
/// without an account gets a mailed invitation token that completes their
/// account (and proves their address); an existing account gets a mailed
/// notice and an invitation it accepts (with a verified address) at
/// `POST /v1/me/invitations/{id}/accept`. The answer is the same in both
/// cases, so it does not tell whether the address has an account. Owners
/// may grant any role, admins any but `owner`.
#[utoipa::path(post, path = "/v1/memberships/{mid}/members", tag = "members",
    params(("mid" = Uuid, Path, description = "Membership id (a company)")),
    request_body = AddMemberRequest,
    security(("bearer_jwt" = [])),
    responses(
        (status = 201, description = "Invited; the invitee accepts by mail or from their account.", body = AddMemberResponse),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn add_member(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Json(body): Json<AddMemberRequest>,
) -> ApiResult<HttpResponse> {
    let email = Email::parse(&body.email).map_err(|m| AppError::field("email", m))?;
    let attempt = || {
        Event::by(&auth.0, mid.0.for_audit(), "member.added", "members")
            .with_detail(json!({"role": body.role.as_str()}))
    };
    let authorized = authz::authorize(&state, &auth.0, mid.0, Permission::ManageMembers).await;
    let access = audit::guard(&state, attempt(), authorized).await?;
    let inviter = audit::guard(&state, attempt(), auth.user()).await?;
    let membership = access.membership();
    require_company(&state, membership).await?;
    if !access.role().may_assign(body.role) {
        let refused = Err(AppError::Forbidden(format!(
            "your role ({}) may not grant the role {}",
            access.role().as_str(),
            body.role.as_str()
        )));
        return Ok(audit::guard(&state, attempt(), refused).await?);
    }
    let token = secrets::generate(secrets::INVITE_PREFIX)?;
    let expires_at =
        Utc::now() + Duration::seconds(i64::try_from(state.config.invitation_ttl_secs).unwrap_or(i64::MAX / 1000));
    let added = members::add(
        &state.db,
        membership,
        &email,
        body.role,
        members::Invite {
            token_hash: secrets::digest(&token),
            expires_at,
            invited_by: Some(inviter),
        },
    )
    .await?;
    let company = accounts::find_membership(&state.db, membership)
        .await?
        .map(|(m, _)| m.name)
        .unwrap_or_default();
    let base = state.config.issuer();
    let (member, mail) = match added {
        members::Added::NewAccount(member) => {
            let mail = messages::invitation_new_account(&base, email.as_str(), &company, body.role.as_str(), &token);
            (member_dto(&member), mail)
        }
        members::Added::Pending {
            invitation,
            user,
            token_used,
        } => {
            let mail = if token_used {
                messages::invitation_new_account(&base, email.as_str(), &company, body.role.as_str(), &token)
            } else {
                messages::invitation_existing_account(&base, email.as_str(), &company, body.role.as_str())
            };
            // Shaped like a new account's placeholder: the invitee's own
            // name stays theirs until they accept.
            let member = Member {
                user_id: user.id,
                email: user.email.clone(),
                display_name: email.local_part().to_owned(),
                role: body.role,
                status: MemberStatus::Invited,
                since: invitation.created_at,
            };
            (member, mail)
        }
    };
    state.mail.send_later(mail);
    audit::record(
        &state,
        Event::by(
            &auth.0,
            membership,
            "member.added",
            format!("member/{}", member.user_id),
        )
        .with_detail(json!({"role": body.role.as_str(), "invited": true})),
    )
    .await?;
    Ok(HttpResponse::Created().json(AddMemberResponse {
        member,
        invitation_expires_at: expires_at,
    }))
}

/// The membership's members with their roles, invited ones included.
#[utoipa::path(get, path = "/v1/memberships/{mid}/members", tag = "members",
    params(("mid" = Uuid, Path, description = "Membership id"), PageQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of members.", body = MemberPage)))]
pub async fn list_members(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<MemberPage>> {
    let (limit, after) = (page.limit()?, page.after()?);
    let access = authz::authorize(&state, &auth.0, mid.0, Permission::ReadMembership).await?;
    let page = members::list(&state.db, access.membership(), after, limit).await?;
    Ok(web::Json(MemberPage {
        items: page.items.iter().map(member_dto).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// Looks up the target member, checking that the caller may act on them: only
/// owners act on owners.
async fn target(
    state: &AppState,
    auth: &Auth,
    mid: Claimed<MembershipId>,
    uid: UserId,
) -> AppResult<(authz::Access, members::Member)> {
    let access = authz::authorize(state, &auth.0, mid, Permission::ManageMembers).await?;
    auth.user()?;
    let member = members::get(&state.db, access.membership(), uid)
        .await
        .map_err(|_| AppError::NotFound("member"))?;
    if !access.role().may_assign(member.role) {
        return Err(AppError::Forbidden(format!(
            "your role ({}) may not change a member with the role {}",
            access.role().as_str(),
            member.role.as_str()
        )));
    }
    Ok((access, member))
}

/// Changes a member's role. The last owner cannot be demoted.
#[utoipa::path(patch, path = "/v1/memberships/{mid}/members/{uid}", tag = "members",
    params(("mid" = Uuid, Path, description = "Membership id"), ("uid" = Uuid, Path, description = "The member's user id")),
    request_body = UpdateMemberRequest,
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "The member with the new role.", body = Member),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn update_member(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    uid: PathUserId,
    Json(body): Json<UpdateMemberRequest>,
) -> ApiResult<web::Json<Member>> {
    let attempt = || {
        Event::by(
            &auth.0,
            mid.0.for_audit(),
            "member.role_changed",
            format!("member/{}", uid.0),
        )
        .with_detail(json!({"role": body.role.as_str()}))
    };
    let (access, _) = audit::guard(&state, attempt(), target(&state, &auth, mid.0, uid.0).await).await?;
    if !access.role().may_assign(body.role) {
        let refused = Err(AppError::Forbidden(format!(
            "your role ({}) may not grant the role {}",
            access.role().as_str(),
            body.role.as_str()
        )));
        return Ok(audit::guard(&state, attempt(), refused).await?);
    }
    let member = members::set_role(&state.db, access.membership(), uid.0, body.role).await?;
    audit::record(
        &state,
        Event::by(
            &auth.0,
            access.membership(),
            "member.role_changed",
            format!("member/{}", uid.0),
        )
        .with_detail(json!({"role": body.role.as_str()})),
    )
    .await?;
    Ok(web::Json(member_dto(&member)))
}

/// Removes a member. Anyone may leave; removing others needs `owner` or
/// `admin`. The last owner cannot be removed. The API keys the member
/// created are revoked with the removal, unless an owner hands them to
/// another member with `reassign_keys_to` in the same call.
#[utoipa::path(delete, path = "/v1/memberships/{mid}/members/{uid}", tag = "members",
    params(("mid" = Uuid, Path, description = "Membership id"), ("uid" = Uuid, Path, description = "The member's user id"), RemoveMemberQuery),
    security(("bearer_jwt" = [])),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn remove_member(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    uid: PathUserId,
    Query(query): Query<RemoveMemberQuery>,
) -> ApiResult<HttpResponse> {
    let leaving_self = matches!(&auth.0, vitalfarm_app::principal::Principal::User { id } if *id == uid.0);
    let attempt = || {
        Event::by(
            &auth.0,
            mid.0.for_audit(),
            "member.removed",
            format!("member/{}", uid.0),
        )
    };
    // Anyone may leave: any standing in the membership will do (every role
    // reads the membership).
    let access = if leaving_self {
        authz::authorize(&state, &auth.0, mid.0, Permission::ReadMembership).await?
    } else {
        audit::guard(&state, attempt(), target(&state, &auth, mid.0, uid.0).await)
            .await?
            .0
    };
    let (membership, role) = (access.membership(), access.role());
    let keys = match query.reassign_keys_to {
        None => api_keys::OnCreatorLeaving::Revoke,
        Some(_) if role != Role::Owner => {
            let refused = Err(AppError::Forbidden(
                "only an owner may hand a leaving member's API keys to someone else".into(),
            ));
            return Ok(audit::guard(&state, attempt(), refused).await?);
        }
        Some(heir) => api_keys::OnCreatorLeaving::ReassignTo(UserId::from_uuid(heir)),
    };
    let keys_touched = members::remove(&state.db, membership, uid.0, keys)
        .await
        .map_err(|e| match e {
            vitalfarm_storage::StorageError::NotFound => AppError::NotFound("member"),
            vitalfarm_storage::StorageError::Conflict(m @ (api_keys::HEIR_NOT_A_MEMBER | api_keys::HEIR_TOO_WEAK)) => {
                AppError::InvalidParameter {
                    field: "reassign_keys_to".into(),
                    message: m.into(),
                }
            }
            other => other.into(),
        })?;
    let keys_outcome = if query.reassign_keys_to.is_some() {
        "reassigned"
    } else {
        "revoked"
    };
    tracing::info!(membership_id = %membership, keys = keys_touched, keys_outcome, "member removed");
    audit::record(
        &state,
        Event::by(&auth.0, membership, "member.removed", format!("member/{}", uid.0)).with_detail(json!({
            "left": leaving_self,
            "api_keys": keys_touched,
            "api_keys_outcome": keys_outcome,
            "api_keys_to": query.reassign_keys_to,
        })),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
