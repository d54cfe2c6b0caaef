//! Who is calling: resolves the `Authorization` header into a `Principal`.
//! A user's JWT is checked offline (signature, expiry); an API key is looked
//! up by its hash. Nothing about a credential is logged.

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use vitalfarm_domain::{ApiKeyId, MembershipId, Role, UserId};
use vitalfarm_storage::repo::api_keys;

use crate::auth::secrets;
use crate::error::ApiError;
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
    Ok(Principal::User {
        id: UserId::from_uuid(claims.sub),
    })
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
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))?;
            resolve(&state, header).await.map(Auth)
        })
    }
}
