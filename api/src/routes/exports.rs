//! Exports of a membership: queue one, watch it, download the ZIP, list
//! them. The archive is built by the job worker (`vitalfarm_app::jobs`,
//! `vitalfarm_app::export`) and stored in the object store until it expires.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use vitalfarm_domain::{MembershipId, Permission};
use vitalfarm_openapi::doc::{ForbiddenResponse, GoneResponse, RangeNotSatisfiableResponse, RateLimitedResponse};
use vitalfarm_openapi::exports::{Export, ExportPage, ExportStatus};
use vitalfarm_storage::entity::job;
use vitalfarm_storage::export_objects;
use vitalfarm_storage::repo::jobs::{self, JobStatus};

use super::RouteSet;
use super::farms::{RangeRequest, blob_error, parse_range};
use crate::error::{ApiError, ApiResult, AppError};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, PageQuery, PathExportId, PathMembershipId, Query};
use vitalfarm_app::audit;
use vitalfarm_app::authz::{self, Access, Claimed};
use vitalfarm_app::export::{self, ExportResult};
use vitalfarm_app::principal::Principal;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/memberships/{mid}/exports", create);
    r.add(Method::GET, "/v1/memberships/{mid}/exports", list);
    r.add(Method::GET, "/v1/memberships/{mid}/exports/{eid}", get);
    r.add(Method::GET, "/v1/memberships/{mid}/exports/{eid}/download", download);
}

/// A malformed `Idempotency-Key` header: a bad parameter (400), like a
/// bad query parameter.
fn bad_key() -> ApiError {
    (AppError::InvalidParameter {
        field: "Idempotency-Key".into(),
        message: "must be 1 to 200 visible ASCII characters".into(),
    })
    .into()
}

/// What a refused export request suggests waiting: about one small export.
const FULL_RETRY_AFTER_SECS: u64 = 30;

/// The longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 200;

fn ttl(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(state.config.export_ttl_secs).unwrap_or(i64::MAX / 1000))
}

fn result_of(j: &job::Model) -> Option<ExportResult> {
    j.result.as_deref().and_then(|r| serde_json::from_str(r).ok())
}

/// When a succeeded export stops being downloadable.
fn expires_at(state: &AppState, j: &job::Model) -> Option<DateTime<Utc>> {
    (j.status == JobStatus::Succeeded.as_str()).then(|| j.updated_at + ttl(state))
}

fn export_dto(state: &AppState, j: &job::Model) -> Export {
    let result = result_of(j);
    let expires = expires_at(state, j);
    let status = match JobStatus::parse(&j.status) {
        Some(JobStatus::Queued) | None => ExportStatus::Queued,
        Some(JobStatus::Running) => ExportStatus::Running,
        Some(JobStatus::Failed) => ExportStatus::Failed,
        Some(JobStatus::Succeeded) if result.is_none() || expires.is_some_and(|t| t <= Utc::now()) => {
            ExportStatus::Expired
        }
        Some(JobStatus::Succeeded) => ExportStatus::Succeeded,
    };
    let finished = matches!(j.status.as_str(), "succeeded" | "failed");
    let ready = status == ExportStatus::Succeeded;
    Export {
        id: j.id,
        membership_id: j.membership_id,
        status,
        attempts: j.attempts,
        created_at: j.created_at,
        finished_at: finished.then_some(j.updated_at),
        expires_at: expires,
        size: result.as_ref().filter(|_| ready).map(|r| r.size),
        sha256: result.as_ref().filter(|_| ready).map(|r| r.sha256.clone()),
        counts: result.as_ref().map(|r| r.counts.clone()),
        // A failed job's error is a fixed message of ours, never an
        // internal cause.
        error: if status == ExportStatus::Failed {
            j.error.clone()
        } else {
            None
        },
        download_url: ready.then(|| format!("/v1/memberships/{}/exports/{}/download", j.membership_id, j.id)),
    }
}

fn principal_id(p: &Principal) -> uuid::Uuid {
    match p {
        Principal::User { id } => id.as_uuid(),
        Principal::ApiKey { id, .. } => id.as_uuid(),
        Principal::App { app, .. } => app.as_uuid(),
    }
}

/// Queues an export of everything the membership holds: subjects, devices,
/// readings (NDJSON and CSV per subject, canonical units), a FHIR R4 bundle
/// per subject, farm files, the consents it gave or received, its audit
/// chain, the data individuals shared with it under `read_export`
/// consents, and a manifest. Poll the returned export until `succeeded`, then download.
/// With an `Idempotency-Key`, a repeated request returns the first export
/// (200) instead of queueing another. A membership runs one export at a
/// time with at most `export_max_queued` waiting; beyond, 429 with
/// `Retry-After`. Only the newest `export_retain` finished exports stay
/// downloadable; older ones expire when a newer one succeeds.
#[utoipa::path(post, path = "/v1/memberships/{mid}/exports", tag = "exports",
    params(
        ("mid" = Uuid, Path, description = "Membership id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 200 characters; the same key returns the same export"),
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Queued.", body = Export, headers(("Location" = String, description = "The export's URL"))),
        (status = 200, description = "An export with this `Idempotency-Key` already exists.", body = Export),
        (status = 403, response = ForbiddenResponse),
        (status = 429, response = RateLimitedResponse),
    ))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
) -> ApiResult<HttpResponse> {
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| bad_key())?;
            let v = v.trim();
            if v.is_empty() || v.len() > MAX_IDEMPOTENCY_KEY || v.chars().any(|c| c.is_ascii_control()) {
                return Err(bad_key());
            }
            Some(v.to_owned())
        }
    };
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::Export)
        .await?
        .membership();
    // One export runs per membership and a few wait behind it: a tenant
    // queueing exports in a loop gets 429, not a share of everyone's disk
    // and worker time.
    let enqueued = jobs::enqueue(
        &state.db,
        jobs::NewJob {
            kind: export::KIND,
            membership: mid,
            requested_by: Some(principal_id(&auth.0)),
            idempotency_key: key.as_deref(),
            payload: "{}".into(),
        },
        state.config.export_max_queued + 1,
    )
    .await?;
    let (job, created) = match enqueued {
        jobs::Enqueued::New(job) => (job, true),
        jobs::Enqueued::Existing(job) => (job, false),
        jobs::Enqueued::Full => {
            return Err((AppError::RateLimited {
                retry_after_secs: FULL_RETRY_AFTER_SECS,
            })
            .into());
        }
    };
    if created {
        tracing::info!(membership_id = %mid, job_id = %job.id, "export queued");
        audit::record(
            &state,
            audit::Event::by(&auth.0, mid, "export.requested", format!("export/{}", job.id)),
        )
        .await?;
        state.jobs_wake.notify_one();
    }
    let location = format!("/v1/memberships/{}/exports/{}", mid, job.id);
    let mut res = if created {
        HttpResponse::Accepted()
    } else {
        HttpResponse::Ok()
    };
    Ok(res
        .insert_header((header::LOCATION, location))
        .json(export_dto(&state, &job)))
}

/// The membership's exports, newest first.
#[utoipa::path(get, path = "/v1/memberships/{mid}/exports", tag = "exports",
    params(("mid" = Uuid, Path, description = "Membership id"), PageQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of exports.", body = ExportPage),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<ExportPage>> {
    let (limit, after) = (page.limit()?, page.after()?);
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::Export)
        .await?
        .membership();
    let page = jobs::list(&state.db, mid, export::KIND, after, limit).await?;
    Ok(web::Json(ExportPage {
        items: page.items.iter().map(|j| export_dto(&state, j)).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// The export `eid` of the membership the caller claims, with the caller's
/// access there.
async fn find(
    state: &AppState,
    auth: &Auth,
    mid: Claimed<MembershipId>,
    eid: PathExportId,
) -> ApiResult<(job::Model, Access)> {
    let access = authz::authorize(state, &auth.0, mid, Permission::Export).await?;
    let job = jobs::get(&state.db, access.membership(), export::KIND, eid.0)
        .await?
        .ok_or(AppError::NotFound("export"))?;
    Ok((job, access))
}

/// One export: its progress, and once it succeeded its size, checksum,
/// counts and download URL.
#[utoipa::path(get, path = "/v1/memberships/{mid}/exports/{eid}", tag = "exports",
    params(("mid" = Uuid, Path, description = "Membership id"), ("eid" = Uuid, Path, description = "Export id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The export.", body = Export),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    eid: PathExportId,
) -> ApiResult<web::Json<Export>> {
    let (j, _) = find(&state, &auth, mid.0, eid).await?;
    Ok(web::Json(export_dto(&state, &j)))
}

/// The archive, streamed, with `Range` support. 409 while it is being
/// built, 410 once it expired.
#[utoipa::path(get, path = "/v1/memberships/{mid}/exports/{eid}/download", tag = "exports",
    params(
        ("mid" = Uuid, Path, description = "Membership id"),
        ("eid" = Uuid, Path, description = "Export id"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1048575`"),
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The ZIP archive.", content_type = "application/zip", body = String,
            headers(("ETag" = String), ("Content-Length" = u64), ("Content-Disposition" = String), ("Accept-Ranges" = String))),
        (status = 206, description = "The requested range.", content_type = "application/zip", body = String,
            headers(("Content-Range" = String, description = "e.g. `bytes 0-1023/48213`"), ("ETag" = String))),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = vitalfarm_openapi::doc::ConflictResponse),
        (status = 410, response = GoneResponse),
        (status = 416, response = RangeNotSatisfiableResponse),
    ))]
pub async fn download(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    eid: PathExportId,
) -> ApiResult<HttpResponse> {
    let (j, access) = find(&state, &auth, mid.0, eid).await?;
    let mid = access.membership();
    match JobStatus::parse(&j.status) {
        Some(JobStatus::Succeeded) => {}
        Some(JobStatus::Failed) => return Err(AppError::Conflict("the export failed; queue a new one".into()).into()),
        _ => return Err(AppError::Conflict("the export is not ready yet".into()).into()),
    }
    let expired = expires_at(&state, &j).is_some_and(|t| t <= Utc::now());
    let result = match result_of(&j) {
        Some(r) if !expired => r,
        _ => return Err(AppError::Gone("this export expired; queue a new one".into()).into()),
    };
    let tag = format!("\"{}\"", result.sha256);
    let len = result.size;
    let range = match req.headers().get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) if v.trim() != tag => RangeRequest::Full,
        _ => parse_range(req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()), len),
    };
    let (status, span) = match range {
        RangeRequest::Full => (StatusCode::OK, None),
        RangeRequest::Part(a, b) => (StatusCode::PARTIAL_CONTENT, Some((a, b))),
        RangeRequest::Unsatisfiable => return Err((AppError::RangeNotSatisfiable { len }).into()),
    };
    let body_len = span.map_or(len, |(a, b)| b - a + 1);
    let key = export::data_key(&state, mid).await?;
    let mut body = export_objects::read(&state.blobs, &result.object_key, key, j.id, len, span).map_err(blob_error)?;
    // The first segment is fetched and authenticated before the status line
    // goes out, so a missing or damaged object is a clean error response.
    let first = match body.next().await {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => return Err(blob_error(e).into()),
        None => Bytes::new(),
    };
    let body = futures_util::stream::once(async move { Ok(first) }).chain(body);
    // A ranged download's first part stands for the whole: resuming it
    // is not another export of the data.
    if span.is_none_or(|(a, _)| a == 0) {
        audit::record(
            &state,
            audit::Event::by(&auth.0, mid, "export.downloaded", format!("export/{}", j.id))
                .with_detail(serde_json::json!({"bytes": body_len})),
        )
        .await?;
    }
    let job_id = j.id;
    let body = body.map(move |item: Result<Bytes, _>| {
        item.map_err(|e| {
            tracing::error!(job_id = %job_id, error = %e, "export download aborted");
            actix_web::error::ErrorInternalServerError("export download failed")
        })
    });
    let mut res = HttpResponse::build(status);
    res.content_type("application/zip")
        .insert_header((header::ETAG, tag))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&format!("attachment; filename=\"export-{}.zip\"", j.id))
                .map_err(|e| AppError::Internal(e.into()))?,
        ));
    if let Some((a, b)) = span {
        res.insert_header((header::CONTENT_RANGE, format!("bytes {a}-{b}/{len}")));
    }
    Ok(crate::transfer::meter(
        res.no_chunking(body_len).streaming(body),
        crate::transfer::Pace::of(&state.config),
        None,
    ))
}
