//! A company's server-to-server API keys.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{Duration, Utc};
use serde_json::json;
use vitalfarm_domain::{ApiKeyId, Permission, Role, ValidationErrors};
use vitalfarm_openapi::doc::{ConflictResponse, ForbiddenResponse};
use vitalfarm_openapi::members::{ApiKey, ApiKeyPage, CreateApiKeyRequest, CreatedApiKey, KeyCreator};
use vitalfarm_storage::entity::api_key;
use vitalfarm_storage::repo::api_keys;

use super::RouteSet;
use super::members::require_company;
use crate::error::{ApiResult, AppError};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, Json, PageQuery, PathApiKeyId, PathMembershipId, Query};
use vitalfarm_app::audit::{self, Event};
use vitalfarm_app::auth::secrets;
use vitalfarm_app::authz;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/memberships/{mid}/api-keys", create_key);
    r.add(Method::GET, "/v1/memberships/{mid}/api-keys", list_keys);
    r.add(Method::DELETE, "/v1/memberships/{mid}/api-keys/{kid}", revoke_key);
}

fn key_dto(k: &api_key::Model, creator_email: Option<String>) -> ApiResult<ApiKey> {
    Ok(ApiKey {
        id: k.id,
        name: k.name.clone(),
        role: Role::parse(&k.role)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("api key {} has unknown role", k.id)))?,
        prefix: k.prefix.clone(),
        created_at: k.created_at,
        expires_at: k.expires_at,
        last_used_at: k.last_used_at,
        created_by: KeyCreator {
            user_id: k.created_by,
            email: creator_email,
        },
    })
}

/// Creates an API key. The secret is in this response only. A key acts with
/// its role (never `owner`, and never above the creator's own role) and
/// cannot manage members or other keys' creation.
#[utoipa::path(post, path = "/v1/memberships/{mid}/api-keys", tag = "api-keys",
    params(("mid" = Uuid, Path, description = "Membership id (a company)")),
    request_body = CreateApiKeyRequest,
    security(("bearer_jwt" = [])),
    responses(
        (status = 201, description = "Created; keep the secret now, it is not shown again.", body = CreatedApiKey),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn create_key(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Json(body): Json<CreateApiKeyRequest>,
) -> ApiResult<HttpResponse> {
    let mut errors = ValidationErrors::new();
    let name = body.name.trim();
    errors.check("name", vitalfarm_domain::validation::check_name(name, 200));
    let role = body.role.map_or(Role::Developer, Role::from);
    if body.expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        errors.add("expires_in_days", "must be between 1 and 3650");
    }
    errors.into_result()?;
    let attempt = || {
        Event::by(&auth.0, mid.0.for_audit(), "api_key.created", "api_keys").with_detail(json!({"role": role.as_str()}))
    };
    let authorized = authz::authorize(&state, &auth.0, mid.0, Permission::ManageApiKeys).await;
    let access = audit::guard(&state, attempt(), authorized).await?;
    let creator = audit::guard(&state, attempt(), auth.user()).await?;
    let membership = access.membership();
    require_company(&state, membership).await?;
    // Roles order from most to least powerful.
    if role < access.role() {
        let refused = Err(AppError::Forbidden(format!(
            "a key cannot have more power ({}) than its creator ({})",
            role.as_str(),
            access.role().as_str()
        )));
        return Ok(audit::guard(&state, attempt(), refused).await?);
    }
    let secret = secrets::generate(secrets::API_KEY_PREFIX)?;
    let key = api_keys::create(
        &state.db,
        membership,
        api_keys::NewApiKey {
            id: ApiKeyId::new(),
            name,
            role,
            prefix: secret.chars().take(secrets::API_KEY_PREFIX.len() + 4).collect(),
            secret_hash: secrets::digest(&secret),
            created_by: creator,
            expires_at: body.expires_in_days.map(|d| Utc::now() + Duration::days(i64::from(d))),
        },
    )
    .await?;
    tracing::info!(membership_id = %membership, key_id = %key.id, "api key created");
    audit::record(
        &state,
        Event::by(&auth.0, membership, "api_key.created", format!("api_key/{}", key.id))
            .with_detail(json!({"role": role.as_str()})),
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedApiKey {
        key: key_dto(
            &key,
            api_keys::creator_emails(&state.db, std::slice::from_ref(&key))
                .await?
                .remove(&key.created_by),
        )?,
        secret,
    }))
}

/// The membership's live (unrevoked) keys, without their secrets.
#[utoipa::path(get, path = "/v1/memberships/{mid}/api-keys", tag = "api-keys",
    params(("mid" = Uuid, Path, description = "Membership id"), PageQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of keys.", body = ApiKeyPage),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn list_keys(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<ApiKeyPage>> {
    let (limit, after) = (page.limit()?, page.after()?);
    let access = authz::authorize(&state, &auth.0, mid.0, Permission::ManageApiKeys).await?;
    let page = api_keys::list(&state.db, access.membership(), after, limit).await?;
    let emails = api_keys::creator_emails(&state.db, &page.items).await?;
    Ok(web::Json(ApiKeyPage {
        items: page
            .items
            .iter()
            .map(|k| key_dto(k, emails.get(&k.created_by).cloned()))
            .collect::<ApiResult<_>>()?,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// Revokes a key; it stops working on the next request.
#[utoipa::path(delete, path = "/v1/memberships/{mid}/api-keys/{kid}", tag = "api-keys",
    params(("mid" = Uuid, Path, description = "Membership id"), ("kid" = Uuid, Path, description = "API key id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn revoke_key(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    kid: PathApiKeyId,
) -> ApiResult<HttpResponse> {
    let attempt = || {
        Event::by(
            &auth.0,
            mid.0.for_audit(),
            "api_key.revoked",
            format!("api_key/{}", kid.0),
        )
    };
    let authorized = authz::authorize(&state, &auth.0, mid.0, Permission::ManageApiKeys).await;
    let access = audit::guard(&state, attempt(), authorized).await?;
    let membership = access.membership();
    let key = api_keys::find_in(&state.db, membership, kid.0)
        .await?
        .ok_or(AppError::NotFound("API key"))?;
    let key_role = Role::parse(&key.role).unwrap_or(Role::Admin);
    // The same rule as creation: nobody disarms a key stronger than
    // themself (a developer cannot revoke the admins' keys).
    if key_role < access.role() {
        let refused = Err(AppError::Forbidden(format!(
            "your role ({}) may not revoke a key with the role {}",
            access.role().as_str(),
            key_role.as_str()
        )));
        return Ok(audit::guard(&state, attempt(), refused).await?);
    }
    api_keys::revoke(&state.db, membership, kid.0)
        .await
        .map_err(|e| match e {
            vitalfarm_storage::StorageError::NotFound => AppError::NotFound("API key"),
            other => other.into(),
        })?;
    tracing::info!(membership_id = %membership, key_id = %kid.0, "api key revoked");
    audit::record(
        &state,
        Event::by(&auth.0, membership, "api_key.revoked", format!("api_key/{}", kid.0)),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
