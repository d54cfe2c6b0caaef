//! Who is calling: a signed-in person, a company's API key, or an OAuth2
//! app acting for a person or its own membership. `resolve` turns a bearer
//! credential into a `Principal`: a user's JWT is checked offline
//! (signature, expiry); an API key is looked up by its hash; an app's JWT
//! also names its grant, which is looked up so that a revoked
//! authorization stops working on the next request. Nothing about a
//! credential is logged.

use vitalfarm_domain::oauth::Scopes;
use vitalfarm_domain::{ApiKeyId, AppId, GrantId, MembershipId, Role, UserId};
use vitalfarm_storage::repo::{api_keys, oauth};

use crate::auth::secrets;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in person; their role is looked up per membership.
    User { id: UserId },
    /// A company's API key, bound to its membership with a fixed role.
    ApiKey {
        id: ApiKeyId,
        membership: MembershipId,
        role: Role,
    },
    /// A third-party app with an OAuth2 access token: acting for the `user`
    /// who approved it (authorization code) or, with client_credentials,
    /// for its own `membership`; limited to `scopes`.
    App {
        app: AppId,
        grant: Option<GrantId>,
        user: Option<UserId>,
        membership: Option<MembershipId>,
        scopes: Scopes,
    },
}

impl Principal {
    /// Which app and authorization a row this principal creates belongs
    /// to, so that it ends with the authorization (`oauth::disable_tied_in`).
    pub fn app_origin(&self) -> oauth::AppOrigin {
        match self {
            Principal::App { app, grant, .. } => oauth::AppOrigin {
                app: Some(app.as_uuid()),
                grant: grant.map(|g| g.as_uuid()),
            },
            Principal::User { .. } | Principal::ApiKey { .. } => oauth::AppOrigin::default(),
        }
    }

    /// The user behind the request, for operations only people may do.
    pub fn user(&self) -> AppResult<UserId> {
        match self {
            Principal::User { id } => Ok(*id),
            Principal::ApiKey { .. } => Err(AppError::Forbidden(
                "this operation needs a signed-in user, not an API key".into(),
            )),
            Principal::App { .. } => Err(AppError::Forbidden(
                "this operation needs a signed-in user, not an app".into(),
            )),
        }
    }

    /// The user the request acts for: the signed-in user, or the user who
    /// approved the calling app (whose scope the extractor already checked).
    pub fn acting_user(&self) -> AppResult<UserId> {
        match self {
            Principal::App { user: Some(user), .. } => Ok(*user),
            _ => self.user(),
        }
    }
}

/// Who presents `header` (the whole `Authorization` value), or why nobody
/// does.
pub async fn resolve(state: &AppState, header: Option<String>) -> AppResult<Principal> {
    let header = header.ok_or(AppError::Unauthorized("missing Authorization header"))?;
    let (scheme, credential) = header
        .split_once(' ')
        .ok_or(AppError::Unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AppError::Unauthorized("unsupported authorization scheme; use Bearer"));
    }
    let credential = credential.trim();
    if credential.starts_with(secrets::API_KEY_PREFIX) {
        let hash = secrets::digest(credential);
        let key = api_keys::find_active(&state.db, &hash)
            .await?
            .filter(|k| secrets::equal(&k.secret_hash, &hash))
            .ok_or(AppError::Unauthorized("invalid, expired or revoked API key"))?;
        let role = Role::parse(&key.role).ok_or(AppError::Unauthorized("invalid API key"))?;
        api_keys::touch(&state.db, &key).await?;
        return Ok(Principal::ApiKey {
            id: ApiKeyId::from_uuid(key.id),
            membership: MembershipId::from_uuid(key.membership_id),
            role,
        });
    }
    let claims = state
        .jwt
        .verify(credential)
        .ok_or(AppError::Unauthorized("invalid or expired access token"))?;
    let Some(app) = claims.app else {
        return Ok(Principal::User {
            id: UserId::from_uuid(claims.sub),
        });
    };
    let revoked = AppError::Unauthorized("the app's authorization was revoked");
    let grant_id = claims.grant.ok_or(AppError::Unauthorized("invalid access token"))?;
    let grant = oauth::find_live_grant(&state.db, GrantId::from_uuid(grant_id))
        .await?
        .filter(|g| g.app_id == app)
        .ok_or(revoked)?;
    let scopes = Scopes::parse(claims.scope.as_deref().unwrap_or_default())
        .map_err(|_| AppError::Unauthorized("invalid access token"))?;
    oauth::touch_grant(&state.db, &grant).await?;
    Ok(Principal::App {
        app: AppId::from_uuid(app),
        grant: Some(GrantId::from_uuid(grant.id)),
        user: grant.user_id.map(UserId::from_uuid),
        membership: grant.membership_id.map(MembershipId::from_uuid),
        scopes,
    })
}
