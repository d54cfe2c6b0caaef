//! A membership's webhook endpoints: registration (the secret is shown
//! once), listing, removal, secret rotation, delivery history and a test
//! ping. Sending is `vitalfarm_app::webhooks`' business.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;
use vitalfarm_domain::{MembershipId, Permission};
use vitalfarm_openapi::doc::ForbiddenResponse;
use vitalfarm_openapi::webhooks::{
    CreateWebhookRequest, CreatedWebhook, Delivery, DeliveryAttempt, DeliveryPage, DeliveryStatus, TestDelivery,
    Webhook, WebhookPage, WebhookSecret,
};
use vitalfarm_storage::entity::{webhook, webhook_delivery};
use vitalfarm_storage::repo::webhooks as repo;

use super::RouteSet;
use crate::error::{ApiError, ApiResult, AppError, AppResult};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, Json, PageQuery, PathMembershipId, PathWebhookId, Query};
use vitalfarm_app::audit::{self, Event};
use vitalfarm_app::authz::{self, Access, Claimed};
use vitalfarm_app::events::EventKind;
use vitalfarm_app::state::AppState;
use vitalfarm_app::views::ms_to_time;
use vitalfarm_app::webhooks::{self as hooks, TEST_KIND};

/// A webhook sends the membership's events (alert values included) out of
/// vitalfarm, as an export does: the same people decide (owners, admins).
const PERMISSION: Permission = Permission::Export;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/memberships/{mid}/webhooks", create);
    r.add(Method::GET, "/v1/memberships/{mid}/webhooks", list);
    r.add(Method::GET, "/v1/memberships/{mid}/webhooks/{wid}", get);
    r.add(Method::DELETE, "/v1/memberships/{mid}/webhooks/{wid}", delete);
    r.add(
        Method::POST,
        "/v1/memberships/{mid}/webhooks/{wid}/rotate-secret",
        rotate_secret,
    );
    r.add(
        Method::GET,
        "/v1/memberships/{mid}/webhooks/{wid}/deliveries",
        deliveries,
    );
    r.add(Method::POST, "/v1/memberships/{mid}/webhooks/{wid}/test", test);
}

fn dto(w: &webhook::Model) -> Webhook {
    Webhook {
        id: w.id,
        membership_id: w.membership_id,
        url: w.url.clone(),
        events: repo::kinds_of(w),
        description: w.description.clone(),
        enabled: w.enabled,
        created_at: w.created_at,
        updated_at: w.updated_at,
    }
}

fn delivery_dto(d: &webhook_delivery::Model) -> AppResult<Delivery> {
    let status = match d.status.as_str() {
        repo::DELIVERED => DeliveryStatus::Delivered,
        repo::FAILED => DeliveryStatus::Failed,
        _ => DeliveryStatus::Pending,
    };
    let attempts: Vec<DeliveryAttempt> = serde_json::from_str(&d.attempt_log).unwrap_or_default();
    Ok(Delivery {
        id: d.id,
        event_id: d.event_id,
        kind: d.event_kind.clone(),
        status,
        attempts,
        next_attempt_at: d.next_attempt_at_ms.map(ms_to_time).transpose()?,
        created_at: d.created_at,
    })
}

async fn access(
    state: &AppState,
    auth: &Auth,
    mid: Claimed<MembershipId>,
    attempt: Option<Event>,
) -> AppResult<Access> {
    let authorized = authz::authorize(state, &auth.0, mid, PERMISSION).await;
    match attempt {
        Some(attempt) => audit::guard(state, attempt, authorized).await,
        None => authorized,
    }
}

async fn find(state: &AppState, mid: MembershipId, wid: Uuid) -> ApiResult<webhook::Model> {
    repo::find_in(&state.db, mid, wid)
        .await?
        .ok_or(AppError::NotFound("webhook").into())
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    (AppError::InvalidParameter {
        field: field.into(),
        message: message.into(),
    })
    .into()
}

/// Registers an endpoint for some of the membership's events. Deliveries
/// are POSTs of `{"type", "timestamp", "data"}` with the Standard Webhooks
/// headers `webhook-id` (the event id, the same on every retry),
/// `webhook-timestamp` and `webhook-signature` (`v1,` and the base64
/// HMAC-SHA256 of `{id}.{timestamp}.{body}`). The secret is in this
/// response only.
#[utoipa::path(post, path = "/v1/memberships/{mid}/webhooks", tag = "webhooks",
    params(("mid" = Uuid, Path, description = "Membership id")),
    request_body = CreateWebhookRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Registered; keep the secret now, it is not shown again.", body = CreatedWebhook),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Json(body): Json<CreateWebhookRequest>,
) -> ApiResult<HttpResponse> {
    let attempt = Event::by(&auth.0, mid.0.for_audit(), "webhook.created", "webhooks");
    let mid = access(&state, &auth, mid.0, Some(attempt)).await?.membership();
    let url = hooks::check_url(body.url.trim(), state.config.webhook_allow_private_networks)
        .map_err(|m| invalid("url", m))?;
    if body.events.is_empty() {
        return Err(invalid("events", "must name at least one event kind"));
    }
    let mut kinds: Vec<String> = Vec::with_capacity(body.events.len());
    for (i, k) in body.events.iter().enumerate() {
        let kind = EventKind::parse(k).ok_or_else(|| {
            invalid(
                &format!("events[{i}]"),
                "must be one of alert.opened, alert.resolved, consent.granted, consent.revoked, device.offline, export.ready",
            )
        })?;
        if !kinds.iter().any(|x| x == kind.as_str()) {
            kinds.push(kind.as_str().to_owned());
        }
    }
    let description = body.description.as_deref().map(str::trim).filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.chars().count() > 500 || d.chars().any(char::is_control)) {
        return Err(invalid(
            "description",
            "must be at most 500 characters without control characters",
        ));
    }
    let id = Uuid::now_v7();
    let (secret, sealed) = hooks::new_secret(&state.master_key, id)?;
    let row = repo::create(
        &state.db,
        repo::NewWebhook {
            id,
            membership: mid,
            url: url.as_str(),
            description,
            events: &kinds,
            secret_sealed: sealed,
            origin: auth.0.app_origin(),
        },
    )
    .await?;
    tracing::info!(membership_id = %mid, webhook_id = %id, events = kinds.len(), "webhook registered");
    audit::record(
        &state,
        Event::by(&auth.0, mid, "webhook.created", format!("webhook/{id}")).with_detail(json!({"events": kinds})),
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedWebhook {
        webhook: dto(&row),
        secret,
    }))
}

/// The membership's endpoints, without their secrets.
#[utoipa::path(get, path = "/v1/memberships/{mid}/webhooks", tag = "webhooks",
    params(("mid" = Uuid, Path, description = "Membership id"), PageQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of endpoints.", body = WebhookPage),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<WebhookPage>> {
    let (limit, after) = (page.limit()?, page.after()?);
    let mid = access(&state, &auth, mid.0, None).await?.membership();
    let page = repo::list(&state.db, mid, after, limit).await?;
    Ok(web::Json(WebhookPage {
        items: page.items.iter().map(dto).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// One endpoint, without its secret.
#[utoipa::path(get, path = "/v1/memberships/{mid}/webhooks/{wid}", tag = "webhooks",
    params(("mid" = Uuid, Path, description = "Membership id"), ("wid" = Uuid, Path, description = "Webhook id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint.", body = Webhook),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    wid: PathWebhookId,
) -> ApiResult<web::Json<Webhook>> {
    let mid = access(&state, &auth, mid.0, None).await?.membership();
    Ok(web::Json(dto(&find(&state, mid, wid.0).await?)))
}

/// Removes an endpoint with its delivery history; deliveries not yet made
/// are dropped.
#[utoipa::path(delete, path = "/v1/memberships/{mid}/webhooks/{wid}", tag = "webhooks",
    params(("mid" = Uuid, Path, description = "Membership id"), ("wid" = Uuid, Path, description = "Webhook id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn delete(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    wid: PathWebhookId,
) -> ApiResult<HttpResponse> {
    let attempt = Event::by(
        &auth.0,
        mid.0.for_audit(),
        "webhook.deleted",
        format!("webhook/{}", wid.0),
    );
    let mid = access(&state, &auth, mid.0, Some(attempt)).await?.membership();
    if !repo::delete(&state.db, mid, wid.0).await? {
        return Err(AppError::NotFound("webhook").into());
    }
    tracing::info!(membership_id = %mid, webhook_id = %wid.0, "webhook removed");
    audit::record(
        &state,
        Event::by(&auth.0, mid, "webhook.deleted", format!("webhook/{}", wid.0)),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces the signing secret; attempts from now on are signed with the
/// new one. The secret is in this response only.
#[utoipa::path(post, path = "/v1/memberships/{mid}/webhooks/{wid}/rotate-secret", tag = "webhooks",
    params(("mid" = Uuid, Path, description = "Membership id"), ("wid" = Uuid, Path, description = "Webhook id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The new secret.", body = WebhookSecret),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    wid: PathWebhookId,
) -> ApiResult<web::Json<WebhookSecret>> {
    let attempt = Event::by(
        &auth.0,
        mid.0.for_audit(),
        "webhook.secret_rotated",
        format!("webhook/{}", wid.0),
    );
    let mid = access(&state, &auth, mid.0, Some(attempt)).await?.membership();
    find(&state, mid, wid.0).await?;
    let (secret, sealed) = hooks::new_secret(&state.master_key, wid.0)?;
    if !repo::set_secret(&state.db, mid, wid.0, sealed).await? {
        return Err(AppError::NotFound("webhook").into());
    }
    tracing::info!(membership_id = %mid, webhook_id = %wid.0, "webhook secret rotated");
    audit::record(
        &state,
        Event::by(&auth.0, mid, "webhook.secret_rotated", format!("webhook/{}", wid.0)),
    )
    .await?;
    Ok(web::Json(WebhookSecret { secret }))
}

/// `?status=&limit=&cursor=` of the delivery history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// Items per page, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{22}$")]
    pub cursor: Option<String>,
}

/// The endpoint's deliveries, newest first, with every attempt (time,
/// status code, duration, error class; never response bodies).
#[utoipa::path(get, path = "/v1/memberships/{mid}/webhooks/{wid}/deliveries", tag = "webhooks",
    params(("mid" = Uuid, Path, description = "Membership id"), ("wid" = Uuid, Path, description = "Webhook id"), DeliveryQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of deliveries.", body = DeliveryPage),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn deliveries(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    wid: PathWebhookId,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<web::Json<DeliveryPage>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (limit, before) = (page.limit()?, page.after()?);
    let mid = access(&state, &auth, mid.0, None).await?.membership();
    let hook = find(&state, mid, wid.0).await?;
    let status = q.status.map(|s| match s {
        DeliveryStatus::Pending => repo::PENDING,
        DeliveryStatus::Delivered => repo::DELIVERED,
        DeliveryStatus::Failed => repo::FAILED,
    });
    let page = repo::deliveries(&state.db, hook.id, status, before, limit).await?;
    Ok(web::Json(DeliveryPage {
        items: page.items.iter().map(delivery_dto).collect::<AppResult<_>>()?,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// Queues a `webhook.test` ping to the endpoint (signed like any delivery,
/// retried like any delivery); follow it in the deliveries. A disabled
/// endpoint (its app's authorization ended) is 409.
#[utoipa::path(post, path = "/v1/memberships/{mid}/webhooks/{wid}/test", tag = "webhooks",
    params(("mid" = Uuid, Path, description = "Membership id"), ("wid" = Uuid, Path, description = "Webhook id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Queued.", body = TestDelivery),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = vitalfarm_openapi::doc::ConflictResponse),
    ))]
pub async fn test(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    wid: PathWebhookId,
) -> ApiResult<HttpResponse> {
    let mid = access(&state, &auth, mid.0, None).await?.membership();
    let hook = find(&state, mid, wid.0).await?;
    if !hook.enabled {
        return Err(AppError::Conflict(
            "the endpoint is disabled: the app that registered it is no longer authorized".into(),
        )
        .into());
    }
    let event_id = Uuid::now_v7();
    let body = hooks::body_of(TEST_KIND, Utc::now(), json!({"webhook_id": hook.id}));
    let d = repo::enqueue(&state.db, &hook, event_id, TEST_KIND, body).await?;
    Ok(HttpResponse::Accepted().json(TestDelivery {
        delivery_id: d.id,
        event_id,
    }))
}
