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
pub use vitalfarm_app::principal::Principal;
use vitalfarm_app::principal::resolve;
use vitalfarm_app::state::AppState;

use crate::error::{ApiError, AppError, AppResult};
use crate::scopes;

/// An authenticated caller: the [`Principal`] behind the request's
/// `Authorization` header, with the endpoint's OAuth scope checked.
pub struct Auth(pub Principal);

impl std::ops::Deref for Auth {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

/// An app may call an endpoint only with the scope `crate::scopes` names
/// for it; other principals are not limited by scopes.
fn check_scope(principal: &Principal, method: &str, pattern: Option<&str>) -> AppResult<()> {
    let Principal::App { scopes: granted, .. } = principal else {
        return Ok(());
    };
    match pattern.and_then(|p| scopes::required(method, p)) {
        Some(needed) if granted.contains(needed) => Ok(()),
        Some(needed) => Err(AppError::InsufficientScope { scope: needed.as_str() }),
        None => Err(AppError::Forbidden(
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
            let state =
                state.ok_or_else(|| ApiError(AppError::Internal(anyhow::anyhow!("application state missing"))))?;
            let principal = resolve(&state, header).await?;
            check_scope(&principal, &method, pattern.as_deref())?;
            Ok(Auth(principal))
        })
    }
}
