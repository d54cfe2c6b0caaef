//! A membership's OAuth2 apps: registration, listing, deletion and secret
//! rotation. The client secret of a confidential app is shown once, at
//! registration or rotation; only its hash is stored.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use vitalfarm_domain::oauth::{self as rules, Scopes};
use vitalfarm_domain::{AppId, Permission, ValidationErrors};
use vitalfarm_openapi::doc::ForbiddenResponse;
use vitalfarm_openapi::oauth::{App, AppPage, ClientType, CreateAppRequest, CreatedApp};
use vitalfarm_storage::StorageError;
use vitalfarm_storage::entity::oauth_app;
use vitalfarm_storage::repo::oauth;

use super::RouteSet;
use crate::error::{ApiResult, AppError};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, Json, PageQuery, PathAppId, PathMembershipId, Query};
use vitalfarm_app::audit;
use vitalfarm_app::auth::secrets;
use vitalfarm_app::authz;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/memberships/{mid}/apps", create_app);
    r.add(Method::GET, "/v1/memberships/{mid}/apps", list_apps);
    r.add(Method::GET, "/v1/memberships/{mid}/apps/{app_id}", get_app);
    r.add(Method::DELETE, "/v1/memberships/{mid}/apps/{app_id}", delete_app);
    r.add(
        Method::POST,
        "/v1/memberships/{mid}/apps/{app_id}/rotate-secret",
        rotate_secret,
    );
}

/// The registered redirect URIs of an app, byte for byte.
pub fn redirect_uris(app: &oauth_app::Model) -> Vec<String> {
    serde_json::from_str(&app.redirect_uris).unwrap_or_default()
}

pub fn app_dto(a: &oauth_app::Model) -> ApiResult<App> {
    Ok(App {
        id: a.id,
        client_id: a.id.to_string(),
        membership_id: a.membership_id,
        name: a.name.clone(),
        client_type: ClientType::parse(&a.client_type)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("app {} has unknown client type", a.id)))?,
        redirect_uris: redirect_uris(a),
        scopes: a
            .scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: a.created_at,
    })
}

/// Registers an app. A confidential client's secret is in this response
/// only.
#[utoipa::path(post, path = "/v1/memberships/{mid}/apps", tag = "oauth",
    params(("mid" = Uuid, Path, description = "Membership id")),
    request_body = CreateAppRequest,
    security(("bearer_jwt" = [])),
    responses(
        (status = 201, description = "Registered; keep the client secret now, it is not shown again.", body = CreatedApp),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn create_app(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Json(body): Json<CreateAppRequest>,
) -> ApiResult<HttpResponse> {
    let mut errors = ValidationErrors::new();
    let name = body.name.trim();
    errors.check("name", vitalfarm_domain::validation::check_name(name, 200));
    if body.redirect_uris.is_empty() || body.redirect_uris.len() > 10 {
        errors.add("redirect_uris", "must list 1 to 10 URIs");
    }
    for (i, uri) in body.redirect_uris.iter().enumerate() {
        if let Err(message) = rules::check_redirect_uri(uri) {
            errors.add(format!("redirect_uris[{i}]"), message);
        }
    }
    let mut scopes = Scopes::default();
    if body.scopes.is_empty() || body.scopes.len() > 20 {
        errors.add("scopes", "must list 1 to 20 scopes");
    }
    for (i, scope) in body.scopes.iter().enumerate() {
        match Scopes::parse(scope) {
            Ok(one) if !one.is_empty() && !scope.contains(' ') => {
                scopes = scopes.iter().chain(one.iter()).collect();
            }
            Ok(_) => errors.add(format!("scopes[{i}]"), "must be one scope name"),
            Err(message) => errors.add(format!("scopes[{i}]"), message),
        }
    }
    errors.into_result()?;
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ManageApps)
        .await?
        .membership();
    let creator = auth.user()?;
    let secret = match body.client_type {
        ClientType::Confidential => Some(secrets::generate(secrets::CLIENT_SECRET_PREFIX)?),
        ClientType::Public => None,
    };
    let mut uris: Vec<&String> = Vec::new();
    for uri in &body.redirect_uris {
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    let app = oauth::create_app(
        &state.db,
        mid,
        oauth::NewApp {
            id: AppId::new(),
            name,
            client_type: body.client_type.as_str(),
            secret_hash: secret.as_deref().map(secrets::digest),
            redirect_uris: serde_json::to_string(&uris).map_err(anyhow::Error::from)?,
            scopes: scopes.to_string(),
            created_by: creator,
        },
    )
    .await?;
    tracing::info!(membership_id = %mid, app_id = %app.id, "oauth app registered");
    audit::record(
        &state,
        audit::Event::by(&auth.0, mid, "app.registered", format!("app/{}", app.id))
            .with_detail(serde_json::json!({"client_type": app.client_type, "scopes": app.scopes})),
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedApp {
        app: app_dto(&app)?,
        client_secret: secret,
    }))
}

/// The membership's apps, without secrets.
#[utoipa::path(get, path = "/v1/memberships/{mid}/apps", tag = "oauth",
    params(("mid" = Uuid, Path, description = "Membership id"), PageQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of apps.", body = AppPage),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn list_apps(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<AppPage>> {
    let (limit, after) = (page.limit()?, page.after()?);
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ManageApps)
        .await?
        .membership();
    let page = oauth::list_apps(&state.db, mid, after, limit).await?;
    Ok(web::Json(AppPage {
        items: page.items.iter().map(app_dto).collect::<ApiResult<_>>()?,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// One app of the membership.
#[utoipa::path(get, path = "/v1/memberships/{mid}/apps/{app_id}", tag = "oauth",
    params(("mid" = Uuid, Path, description = "Membership id"), ("app_id" = Uuid, Path, description = "App id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The app.", body = App),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn get_app(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    app_id: PathAppId,
) -> ApiResult<web::Json<App>> {
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ManageApps)
        .await?
        .membership();
    let app = oauth::find_app_in(&state.db, mid, app_id.0)
        .await?
        .ok_or(AppError::NotFound("app"))?;
    Ok(web::Json(app_dto(&app)?))
}

/// Deletes an app: every token it holds stops working on the next request,
/// and what it created for the people who authorized it (webhooks, alert
/// rules, share links) is disabled.
#[utoipa::path(delete, path = "/v1/memberships/{mid}/apps/{app_id}", tag = "oauth",
    params(("mid" = Uuid, Path, description = "Membership id"), ("app_id" = Uuid, Path, description = "App id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn delete_app(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    app_id: PathAppId,
) -> ApiResult<HttpResponse> {
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ManageApps)
        .await?
        .membership();
    let disabled = oauth::delete_app(&state.db, mid, app_id.0).await.map_err(|e| match e {
        StorageError::NotFound => AppError::NotFound("app"),
        other => other.into(),
    })?;
    tracing::info!(membership_id = %mid, app_id = %app_id.0, "oauth app deleted");
    audit::record(
        &state,
        audit::Event::by(&auth.0, mid, "app.deleted", format!("app/{}", app_id.0)),
    )
    .await?;
    record_disabled(&state, audit::Actor::of(&auth.0), app_id.0, &disabled).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Writes, to the log of each membership concerned, what the end of an
/// app's authorization disabled there.
pub async fn record_disabled(
    state: &AppState,
    actor: audit::Actor,
    app: AppId,
    disabled: &oauth::Disabled,
) -> ApiResult<()> {
    for membership in disabled.memberships() {
        let (webhooks, alert_rules, share_links) = disabled.counts_in(membership);
        tracing::info!(membership_id = %membership, app_id = %app, webhooks, alert_rules, share_links, "app resources disabled");
        audit::record(
            state,
            audit::Event::new(
                vitalfarm_domain::MembershipId::from_uuid(membership),
                actor,
                "app.resources_disabled",
                format!("app/{app}"),
            )
            .with_detail(serde_json::json!({
                "webhooks": webhooks,
                "alert_rules": alert_rules,
                "share_links": share_links,
            })),
        )
        .await?;
    }
    Ok(())
}

/// Replaces a confidential app's client secret; the old one stops working
/// at once. Tokens already issued keep working until they expire or are
/// revoked.
#[utoipa::path(post, path = "/v1/memberships/{mid}/apps/{app_id}/rotate-secret", tag = "oauth",
    params(("mid" = Uuid, Path, description = "Membership id"), ("app_id" = Uuid, Path, description = "App id")),
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "The new secret, shown only now.", body = CreatedApp),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = vitalfarm_openapi::doc::ConflictResponse),
    ))]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    app_id: PathAppId,
) -> ApiResult<web::Json<CreatedApp>> {
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ManageApps)
        .await?
        .membership();
    auth.user()?;
    let app = oauth::find_app_in(&state.db, mid, app_id.0)
        .await?
        .ok_or(AppError::NotFound("app"))?;
    if ClientType::parse(&app.client_type) != Some(ClientType::Confidential) {
        return Err(AppError::Conflict("a public client has no secret to rotate".into()).into());
    }
    let secret = secrets::generate(secrets::CLIENT_SECRET_PREFIX)?;
    oauth::set_secret(&state.db, mid, app_id.0, secrets::digest(&secret))
        .await
        .map_err(|e| match e {
            StorageError::NotFound => AppError::NotFound("app"),
            other => other.into(),
        })?;
    tracing::info!(membership_id = %mid, app_id = %app_id.0, "oauth app secret rotated");
    audit::record(
        &state,
        audit::Event::by(&auth.0, mid, "app.secret_rotated", format!("app/{}", app_id.0)),
    )
    .await?;
    Ok(web::Json(CreatedApp {
        app: app_dto(&app)?,
        client_secret: Some(secret),
    }))
}
