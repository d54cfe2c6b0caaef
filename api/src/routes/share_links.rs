//! Share links: download one file without signing in, until the link
//! expires or is revoked. Every use, served or refused, is recorded.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use serde_json::json;
use vitalfarm_domain::{FarmId, FarmPath, MembershipId, Permission};
use vitalfarm_openapi::doc::{ForbiddenResponse, GoneResponse, RangeNotSatisfiableResponse, RateLimitedResponse};
use vitalfarm_openapi::farms::{
    CreateShareLinkRequest, CreatedShareLink, ShareLink, ShareLinkPage, ShareLinkUse, ShareLinkUsePage,
};
use vitalfarm_storage::entity::share_link;
use vitalfarm_storage::repo::{farms, share_links};

use super::RouteSet;
use super::auth::client_ip;
use crate::error::{ApiResult, AppError, AppResult};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, Json, PageQuery, PathFarmId, PathShareLinkId, Query};
use crate::transfer::LinkSlot;
use vitalfarm_app::audit::{self, Actor, Event, Outcome};
use vitalfarm_app::auth::secrets;
use vitalfarm_app::authz;
use vitalfarm_app::principal::Principal;
use vitalfarm_app::state::AppState;

pub const SHARE_PREFIX: &str = "vf_share_";

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/farms/{fid}/share-links", create);
    r.add(Method::GET, "/v1/farms/{fid}/share-links", list);
    r.add(Method::DELETE, "/v1/farms/{fid}/share-links/{lid}", revoke);
    r.add(Method::GET, "/v1/farms/{fid}/share-links/{lid}/uses", uses);
    r.add(Method::GET, "/v1/shared/{token}", download);
}

/// Where clients reach this service (see [`super::public_base`]).
fn public_base(req: &HttpRequest, state: &AppState) -> String {
    super::public_base(req, state)
}

fn link_dto(v: &share_links::LinkView) -> ShareLink {
    ShareLink {
        id: v.link.id,
        path: v.path.clone(),
        created_at: v.link.created_at,
        expires_at: v.link.expires_at,
        revoked_at: v.link.revoked_at,
        use_count: v.use_count,
        last_used_at: v.last_used_at,
    }
}

/// Creates a link to one file. The URL (with its token) is in this response
/// only; the link follows the file through moves and dies with it.
#[utoipa::path(post, path = "/v1/farms/{fid}/share-links", tag = "share-links",
    params(("fid" = Uuid, Path, description = "Farm id")),
    request_body = CreateShareLinkRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created; hand out the URL.", body = CreatedShareLink),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
    Json(body): Json<CreateShareLinkRequest>,
) -> ApiResult<HttpResponse> {
    let mut errors = vitalfarm_domain::ValidationErrors::new();
    let path = errors.check("path", FarmPath::parse(&body.path));
    if !(60..=30 * 24 * 3600).contains(&body.expires_in) {
        errors.add("expires_in", "must be between 60 and 2592000 seconds");
    }
    errors.into_result()?;
    let Some(path) = path else {
        return Err(AppError::field("path", "is invalid").into());
    };
    let (farm, access) = authz::farm(&state, &auth.0, fid.0, Permission::WriteData).await?;
    let fid = FarmId::from_uuid(farm.id);
    let file = farms::find_file(&state.db, fid, &path)
        .await?
        .ok_or(AppError::NotFound("file"))?;
    let token = secrets::generate(SHARE_PREFIX)?;
    let expires_at = Utc::now() + Duration::seconds(i64::from(body.expires_in));
    let created_by = match &auth.0 {
        Principal::User { id } => id.as_uuid(),
        Principal::ApiKey { id, .. } => id.as_uuid(),
        Principal::App { app, .. } => app.as_uuid(),
    };
    let link = share_links::create(
        &state.db,
        fid,
        &file,
        secrets::digest(&token),
        created_by,
        expires_at,
        auth.0.app_origin(),
    )
    .await?;
    let view = share_links::get(&state.db, fid, vitalfarm_domain::ShareLinkId::from_uuid(link.id)).await?;
    tracing::info!(farm_id = %fid, link_id = %link.id, "share link created");
    audit::record(
        &state,
        Event::by(
            &auth.0,
            access.membership(),
            "share_link.created",
            format!("share_link/{}", link.id),
        )
        .with_detail(json!({"file_id": file.id, "expires_in": body.expires_in})),
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedShareLink {
        link: link_dto(&view),
        url: format!("{}/v1/shared/{token}", public_base(&req, &state)),
        expires_at,
    }))
}

/// The farm's share links, with how often each was used.
#[utoipa::path(get, path = "/v1/farms/{fid}/share-links", tag = "share-links",
    params(("fid" = Uuid, Path, description = "Farm id"), PageQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of links.", body = ShareLinkPage)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<ShareLinkPage>> {
    let (limit, after) = (page.limit()?, page.after()?);
    let (farm, _) = authz::farm(&state, &auth.0, fid.0, Permission::ReadData).await?;
    let fid = FarmId::from_uuid(farm.id);
    let page = share_links::list(&state.db, fid, after, limit).await?;
    Ok(web::Json(ShareLinkPage {
        items: page.items.iter().map(link_dto).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// Revokes a link; it stops working on the next request.
#[utoipa::path(delete, path = "/v1/farms/{fid}/share-links/{lid}", tag = "share-links",
    params(("fid" = Uuid, Path, description = "Farm id"), ("lid" = Uuid, Path, description = "Share link id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 204, description = "Revoked."), (status = 403, response = ForbiddenResponse)))]
pub async fn revoke(
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
    lid: PathShareLinkId,
) -> ApiResult<HttpResponse> {
    let (farm, access) = authz::farm(&state, &auth.0, fid.0, Permission::WriteData).await?;
    let fid = FarmId::from_uuid(farm.id);
    share_links::revoke(&state.db, fid, lid.0).await.map_err(|e| match e {
        vitalfarm_storage::StorageError::NotFound => AppError::NotFound("share link"),
        other => other.into(),
    })?;
    audit::record(
        &state,
        Event::by(
            &auth.0,
            access.membership(),
            "share_link.revoked",
            format!("share_link/{}", lid.0),
        ),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every use of a link: when, from where, and whether it was served.
#[utoipa::path(get, path = "/v1/farms/{fid}/share-links/{lid}/uses", tag = "share-links",
    params(("fid" = Uuid, Path, description = "Farm id"), ("lid" = Uuid, Path, description = "Share link id"), PageQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of uses, oldest first.", body = ShareLinkUsePage)))]
pub async fn uses(
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
    lid: PathShareLinkId,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<ShareLinkUsePage>> {
    let (limit, after) = (page.limit()?, page.after()?);
    let (farm, _) = authz::farm(&state, &auth.0, fid.0, Permission::ReadData).await?;
    let fid = FarmId::from_uuid(farm.id);
    let page = share_links::uses(&state.db, fid, lid.0, after, limit)
        .await
        .map_err(|e| match e {
            vitalfarm_storage::StorageError::NotFound => AppError::NotFound("share link"),
            other => other.into(),
        })?;
    Ok(web::Json(ShareLinkUsePage {
        items: page
            .items
            .iter()
            .map(|u| ShareLinkUse {
                at: u.at,
                client_ip: u.client_ip.clone(),
                outcome: u.outcome.clone(),
            })
            .collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// Downloads the shared file, without signing in (`Range` works as for any
/// download). An expired or revoked link answers 410; a link already
/// serving `share_link_max_concurrent_downloads` downloads answers 429.
#[utoipa::path(get, path = "/v1/shared/{token}", tag = "share-links",
    params(
        ("token" = String, Path, description = "The token of the link's URL"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`"),
    ),
    responses(
        (status = 200, description = "The file.", content_type = "*/*", body = String, headers(("ETag" = String), ("Content-Length" = u64))),
        (status = 206, description = "The requested range.", content_type = "*/*", body = String, headers(("Content-Range" = String))),
        (status = 304, description = "The client's copy is current."),
        (status = 404, response = vitalfarm_openapi::doc::NotFoundResponse),
        (status = 410, response = GoneResponse),
        (status = 416, response = RangeNotSatisfiableResponse),
        (status = 429, response = RateLimitedResponse),
    ))]
pub async fn download(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let token = req.match_info().get("token").unwrap_or_default();
    let link = if token.starts_with(SHARE_PREFIX) && token.len() <= 128 {
        share_links::find_by_hash(&state.db, &secrets::digest(token)).await?
    } else {
        None
    };
    let link = link
        .filter(|l| secrets::equal(&l.token_hash, &secrets::digest(token)))
        .ok_or(AppError::NotFound("share link"))?;
    let ip = client_ip(&req, &state);
    if link.revoked_at.is_some() {
        share_links::record_use(&state.db, link.id, &ip, "revoked").await?;
        record_use(&state, &link, Outcome::Denied, "revoked").await?;
        return Err(AppError::Gone("this share link was revoked".into()).into());
    }
    if link.expires_at <= Utc::now() {
        share_links::record_use(&state.db, link.id, &ip, "expired").await?;
        record_use(&state, &link, Outcome::Denied, "expired").await?;
        return Err(AppError::Gone(format!("this share link expired at {}", link.expires_at.to_rfc3339())).into());
    }
    let farm_id = FarmId::from_uuid(link.farm_id);
    let farm = farms::find(&state.db, farm_id)
        .await?
        .ok_or(AppError::NotFound("share link"))?;
    let file = farms::find_file_by_id(&state.db, farm_id, link.file_id)
        .await?
        .ok_or(AppError::NotFound("share link"))?;
    // A link is for handing a file to someone, not a public mirror: a
    // few downloads at once, so one leaked link cannot hold every
    // connection.
    let Some(slot) = LinkSlot::acquire(link.id, state.config.share_link_max_concurrent_downloads) else {
        share_links::record_use(&state.db, link.id, &ip, "busy").await?;
        record_use(&state, &link, Outcome::Denied, "busy").await?;
        return Err((AppError::RateLimited {
            retry_after_secs: BUSY_RETRY_AFTER_SECS,
        })
        .into());
    };
    share_links::record_use(&state.db, link.id, &ip, "served").await?;
    tracing::info!(link_id = %link.id, farm_id = %farm.id, "share link used");
    record_use(&state, &link, Outcome::Allowed, "served").await?;
    super::farms::serve(&state, &req, &farm, &file, Some(slot)).await
}

/// What a download refused for too many downloads at once suggests.
const BUSY_RETRY_AFTER_SECS: u64 = 10;

/// A use of `link`, in the log of the membership whose farm it opens. The
/// holder of a link is anonymous.
async fn record_use(state: &AppState, link: &share_link::Model, outcome: Outcome, result: &str) -> AppResult<()> {
    let Some(farm) = farms::find(&state.db, FarmId::from_uuid(link.farm_id)).await? else {
        return Ok(());
    };
    let event = Event::new(
        MembershipId::from_uuid(farm.membership_id),
        Actor::Anonymous,
        "share_link.used",
        format!("share_link/{}", link.id),
    )
    .with_outcome(outcome)
    .with_detail(json!({"file_id": link.file_id, "result": result}));
    audit::record(state, event).await
}
