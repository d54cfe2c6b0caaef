//! Who is calling: resolves the `Authorization` header into a `Principal`.
//! A user's JWT is checked offline (signature, expiry); an API key is looked
//! up by its hash. Nothing about a credential is logged.
//!
//! An OAuth2 app's JWT also names its grant, which is looked up so that a
//! revoked authorization stops working on the next request, and the
//! endpoint's scope (`crate::scopes`, by the matched route pattern) is
//! checked here, once for every endpoint.

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use vitalfarm_domain::oauth::Scopes;
use vitalfarm_domain::{ApiKeyId, AppId, GrantId, MembershipId, Role, UserId};
use vitalfarm_storage::repo::{api_keys, oauth};

use crate::auth::secrets;
use crate::error::ApiError;
use crate::scopes;
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
}

/// An authenticated caller.
pub struct Auth(pub Principal);

impl Auth {
    /// The user behind the request, for operations only people may do.
    pub fn user(&self) -> Result<UserId, ApiError> {
        match &self.0 {
            Principal::User { id } => Ok(*id),
            Principal::ApiKey { .. } => Err(ApiError::Forbidden(
                "this operation needs a signed-in user, not an API key".into(),
            )),
            Principal::App { .. } => Err(ApiError::Forbidden(
                "this operation needs a signed-in user, not an app".into(),
            )),
        }
    }

    /// The user the request acts for: the signed-in user, or the user who
    /// approved the calling app (whose scope the extractor already checked).
    pub fn acting_user(&self) -> Result<UserId, ApiError> {
        match &self.0 {
            Principal::App { user: Some(user), .. } => Ok(*user),
            _ => self.user(),
        }
    }
}

async fn resolve(state: &AppState, header: Option<String>) -> Result<Principal, ApiError> {
    let header = header.ok_or(ApiError::Unauthorized("missing Authorization header"))?;
    let (scheme, credential) = header
        .split_once(' ')
        .ok_or(ApiError::Unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized("unsupported authorization scheme; use Bearer"));
    }
    let credential = credential.trim();
    if credential.starts_with(secrets::API_KEY_PREFIX) {
        let hash = secrets::digest(credential);
        let key = api_keys::find_active(&state.db, &hash)
            .await?
            .filter(|k| secrets::equal(&k.secret_hash, &hash))
            .ok_or(ApiError::Unauthorized("invalid, expired or revoked API key"))?;
        let role = Role::parse(&key.role).ok_or(ApiError::Unauthorized("invalid API key"))?;
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
        .ok_or(ApiError::Unauthorized("invalid or expired access token"))?;
    let Some(app) = claims.app else {
        return Ok(Principal::User {
            id: UserId::from_uuid(claims.sub),
        });
    };
    let revoked = ApiError::Unauthorized("the app's authorization was revoked");
    let grant_id = claims.grant.ok_or(ApiError::Unauthorized("invalid access token"))?;
    let grant = oauth::find_live_grant(&state.db, GrantId::from_uuid(grant_id))
        .await?
        .filter(|g| g.app_id == app)
        .ok_or(revoked)?;
    let scopes = Scopes::parse(claims.scope.as_deref().unwrap_or_default())
        .map_err(|_| ApiError::Unauthorized("invalid access token"))?;
    oauth::touch_grant(&state.db, &grant).await?;
    Ok(Principal::App {
        app: AppId::from_uuid(app),
        grant: Some(GrantId::from_uuid(grant.id)),
        user: grant.user_id.map(UserId::from_uuid),
        membership: grant.membership_id.map(MembershipId::from_uuid),
        scopes,
    })
}

/// An app may call an endpoint only with the scope `crate::scopes` names
/// for it; other principals are not limited by scopes.
fn check_scope(principal: &Principal, method: &str, pattern: Option<&str>) -> Result<(), ApiError> {
    let Principal::App { scopes: granted, .. } = principal else {
        return Ok(());
    };
    match pattern.and_then(|p| scopes::required(method, p)) {
        Some(needed) if granted.contains(needed) => Ok(()),
        Some(needed) => Err(ApiError::InsufficientScope { scope: needed.as_str() }),
        None => Err(ApiError::Forbidden(
            "apps may not call this endpoint; it is for signed-in people or API keys".into(),
        )),
    }
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let method = req.method().as_str().to_owned();
        let pattern = req.match_pattern();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))?;
            let principal = resolve(&state, header).await?;
            check_scope(&principal, &method, pattern.as_deref())?;
            Ok(Auth(principal))
        })
    }
}
