//! A membership's farm: its files, streamed in and out, encrypted at rest.

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;
use vitalfarm_domain::{FarmId, FarmPath, Permission, farm_path};
use vitalfarm_openapi::doc::{
    ConflictResponse, ForbiddenResponse, LengthRequiredResponse, PayloadTooLargeResponse, PreconditionFailedResponse,
    QuotaExceededResponse, RangeNotSatisfiableResponse, RequestTimeoutResponse,
};
use vitalfarm_openapi::farms::{EntryKind, FileInfo, FileList, ListEntry, MoveRequest};
use vitalfarm_storage::blobs::{BlobError, BlobWriter};
use vitalfarm_storage::entity::{farm, farm_file};
use vitalfarm_storage::repo::farms::{self, Entry, Precondition, WriteError};

use super::RouteSet;
use crate::error::{ApiError, ApiResult, AppError};
use crate::extract::{Auth, Json, PathFarmId, Query};
use crate::transfer::{self, LinkSlot, Pace};
use vitalfarm_app::sharing::{self, FarmAsk};
use vitalfarm_app::state::AppState;
use vitalfarm_app::{authz, farm_keys};

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/farms/{fid}", farm_info);
    r.add(Method::PUT, "/v1/farms/{fid}/files/{path}", upload);
    r.add(Method::GET, "/v1/farms/{fid}/files/{path}", download);
    r.add(Method::HEAD, "/v1/farms/{fid}/files/{path}", head);
    r.add(Method::DELETE, "/v1/farms/{fid}/files/{path}", delete);
    r.add(Method::GET, "/v1/farms/{fid}/list", list);
    r.add(Method::POST, "/v1/farms/{fid}/move", move_file);
}

pub fn farm_dto(f: &farm::Model, default_max: u64) -> vitalfarm_openapi::farms::Farm {
    vitalfarm_openapi::farms::Farm {
        id: f.id,
        membership_id: f.membership_id,
        quota_bytes: u64::try_from(f.quota_bytes).unwrap_or(0),
        used_bytes: u64::try_from(f.used_bytes).unwrap_or(0),
        file_count: u64::try_from(f.file_count).unwrap_or(0),
        max_file_bytes: f
            .max_file_bytes
            .and_then(|m| u64::try_from(m).ok())
            .unwrap_or(default_max),
        encryption: "aes-256-gcm".into(),
        created_at: f.created_at,
    }
}

pub fn etag(file: &farm_file::Model) -> String {
    format!("\"{}\"", file.sha256)
}

pub fn file_dto(f: &farm_file::Model) -> FileInfo {
    FileInfo {
        path: f.path.clone(),
        size: u64::try_from(f.size).unwrap_or(0),
        sha256: f.sha256.clone(),
        etag: etag(f),
        version: u64::try_from(f.version).unwrap_or(0),
        content_type: f.content_type.clone(),
        created_at: f.created_at,
        updated_at: f.updated_at,
    }
}

fn path_error(field: &str, e: farm_path::PathError) -> ApiError {
    (AppError::InvalidParameter {
        field: field.into(),
        message: e.to_string(),
    })
    .into()
}

/// The `{path}` of `/v1/farms/{fid}/files/{path}`, decoded once from the raw
/// URI, so nothing is decoded twice. An encoded `/` (`%2F`) is refused: in
/// a URI it belongs inside one segment, so taking it for a separator would
/// turn what the client sent as one name into a folder.
fn file_path(req: &HttpRequest) -> ApiResult<FarmPath> {
    let raw = req.uri().path();
    let tail = raw
        .strip_prefix("/v1/farms/")
        .and_then(|r| r.split_once("/files/"))
        .map(|(_, t)| t)
        .ok_or_else(|| path_error("path", farm_path::PathError::Empty))?;
    if tail.to_ascii_lowercase().contains("%2f") {
        return Err((AppError::InvalidParameter {
            field: "path".into(),
            message: "must not contain an encoded '/' (%2F) inside a name; separate folders with a plain '/'".into(),
        })
        .into());
    }
    let decoded = percent_encoding::percent_decode_str(tail)
        .decode_utf8()
        .map_err(|_| AppError::InvalidParameter {
            field: "path".into(),
            message: "must be valid UTF-8 once percent-decoded".into(),
        })?;
    FarmPath::parse(&decoded).map_err(|e| path_error("path", e))
}

/// Entity tags of an `If-Match` / `If-None-Match` header, unquoted; `*`
/// stays `*`. Weak tags compare like strong ones (ours are all strong).
fn tags(headers: &HeaderMap, name: header::HeaderName) -> Option<Vec<String>> {
    let values: Vec<&str> = headers.get_all(name).filter_map(|v| v.to_str().ok()).collect();
    if values.is_empty() {
        return None;
    }
    Some(
        values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/").trim_matches('"').to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
    )
}

/// `If-Match` / `If-None-Match` of a write. An empty header is no header.
fn precondition(headers: &HeaderMap) -> Precondition {
    Precondition {
        if_match: tags(headers, header::IF_MATCH).filter(|t| !t.is_empty()),
        if_none_match: tags(headers, header::IF_NONE_MATCH).filter(|t| !t.is_empty()),
    }
}

fn write_error(e: WriteError) -> AppError {
    match e {
        WriteError::Precondition => {
            AppError::PreconditionFailed("the file does not match the precondition headers".into())
        }
        WriteError::Quota { quota, used } => AppError::QuotaExceeded { quota, used },
        WriteError::NotFound => AppError::NotFound("file"),
        WriteError::Exists => {
            AppError::Conflict("a file already exists at the destination; set overwrite to replace it".into())
        }
        WriteError::Storage(e) => e.into(),
    }
}

pub fn blob_error(e: BlobError) -> AppError {
    match e {
        BlobError::Integrity => AppError::DataIntegrity,
        other => AppError::Internal(anyhow::Error::new(other).context("object store")),
    }
}

/// The farm: quota, usage and file count.
#[utoipa::path(get, path = "/v1/farms/{fid}", tag = "farms",
    params(("fid" = Uuid, Path, description = "Farm id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The farm.", body = vitalfarm_openapi::farms::Farm)))]
pub async fn farm_info(
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
) -> ApiResult<web::Json<vitalfarm_openapi::farms::Farm>> {
    let (farm, _) = authz::farm(&state, &auth.0, fid.0, Permission::ReadData).await?;
    Ok(web::Json(farm_dto(&farm, state.config.max_file_bytes)))
}

/// Uploads a file, streamed: the body goes to storage encrypted as it
/// arrives, and the file becomes visible only once every byte is stored and
/// its metadata committed. `Content-Length` is required. `If-None-Match: *`
/// refuses to overwrite; `If-Match: "<etag>"` overwrites only that version.
#[utoipa::path(put, path = "/v1/farms/{fid}/files/{path}", tag = "farms",
    params(
        ("fid" = Uuid, Path, description = "Farm id"),
        ("path" = String, Path, description = "File path, `/`-separated (percent-encode reserved characters)", example = "ecg/2026-11-21/lead1.csv", pattern = r"^(?!/)(?!.*//)(?!.*/$)(?!(?:.*/)?\.\.?(?:/|$))(?!.*[^/]{256})[^\u0000-\u001f\u007f-\u009f\\]{1,1024}$"),
        ("If-Match" = Option<String>, Header, description = "Overwrite only if the current ETag is one of these (`*`: any existing file)"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only, never overwrite; ETags: not over these versions"),
    ),
    request_body(content = String, content_type = "application/octet-stream", description = "The file's bytes; its `Content-Type` header is kept and served back."),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "An existing file was replaced.", body = FileInfo, headers(("ETag" = String, description = "The new entity tag"))),
        (status = 201, description = "The file was created.", body = FileInfo, headers(("ETag" = String, description = "The entity tag"))),
        (status = 403, response = ForbiddenResponse),
        (status = 411, response = LengthRequiredResponse),
        (status = 412, response = PreconditionFailedResponse),
        (status = 408, response = RequestTimeoutResponse),
        (status = 413, response = PayloadTooLargeResponse),
        (status = 507, response = QuotaExceededResponse),
    ))]
pub async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let path = file_path(&req)?;
    let (farm, _) = authz::farm(&state, &auth.0, fid.0, Permission::WriteData).await?;
    let fid = FarmId::from_uuid(farm.id);
    let len = match req.headers().get(header::CONTENT_LENGTH) {
        // Without Content-Length, a body is either chunked (length unknown:
        // refused, the encryption header needs it) or empty (RFC 9112 §6.3).
        None if req.headers().contains_key(header::TRANSFER_ENCODING) => return Err(AppError::LengthRequired.into()),
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| AppError::InvalidParameter {
                field: "Content-Length".into(),
                message: "must be a whole number of bytes".into(),
            })?,
    };
    let max = farm
        .max_file_bytes
        .and_then(|m| u64::try_from(m).ok())
        .unwrap_or(state.config.max_file_bytes);
    if len > max {
        return Err((AppError::PayloadTooLarge {
            limit: usize::try_from(max).unwrap_or(usize::MAX),
        })
        .into());
    }
    let content_type = match req.headers().get(header::CONTENT_TYPE) {
        None => "application/octet-stream".to_owned(),
        Some(v) => v
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|v| {
                !v.is_empty() && v.len() <= 255 && v.contains('/') && v.bytes().all(|b| (0x20..0x7f).contains(&b))
            })
            .ok_or_else(|| AppError::InvalidParameter {
                field: "Content-Type".into(),
                message: "must be a media type such as text/csv, at most 255 printable ASCII characters".into(),
            })?
            .to_owned(),
    };
    let pre = precondition(req.headers());
    let size = i64::try_from(len).map_err(|_| AppError::PayloadTooLarge { limit: usize::MAX })?;

    // Fail fast on what the commit would refuse anyway; the commit checks
    // again under a lock, so this is an optimisation, not the guarantee.
    let existing = farms::find_file(&state.db, fid, &path).await?;
    if !pre.holds(existing.as_ref()) {
        return Err(AppError::PreconditionFailed("the file does not match the precondition headers".into()).into());
    }

    let key = farm_keys::data_key(&state.db, &state.master_key, &farm).await?;
    let blob = Uuid::now_v7();
    // Reserves the bytes against the quota before any is read: the new
    // copy is charged in full, beside the one it replaces, because both are
    // on disk until the commit.
    farms::begin_blob(&state.db, fid, blob, size)
        .await
        .map_err(write_error)?;
    let mut staged = Staged {
        state: state.clone(),
        farm: fid,
        blob,
        writer: None,
        settled: false,
    };
    let writer = staged
        .writer
        .insert(state.blobs.writer(fid, blob, &key, len).map_err(blob_error)?);
    let mut received: u64 = 0;
    let mut failure: Option<ApiError> = None;
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                failure = Some(
                    (AppError::InvalidParameter {
                        field: "body".into(),
                        message: format!("the upload was interrupted: {e}"),
                    })
                    .into(),
                );
                break;
            }
        };
        received += chunk.len() as u64;
        if received > len {
            failure = Some(
                (AppError::InvalidParameter {
                    field: "body".into(),
                    message: "the body is longer than Content-Length".into(),
                })
                .into(),
            );
            break;
        }
        if let Err(e) = writer.write(&chunk).await {
            failure = Some(blob_error(e).into());
            break;
        }
    }
    if failure.is_none() && received != len {
        failure = Some(
            (AppError::InvalidParameter {
                field: "body".into(),
                message: format!("the body ended after {received} of {len} bytes"),
            })
            .into(),
        );
    }
    if let Some(err) = failure {
        staged.discard().await;
        return Err(err);
    }
    let finished = match staged.writer.take() {
        Some(writer) => writer.finish().await,
        None => Err(BlobError::Config("the upload lost its writer".into())),
    };
    let sha256 = match finished {
        Ok(sha) => sha,
        Err(e) => {
            staged.discard().await;
            return Err(blob_error(e).into());
        }
    };
    let committed = farms::commit_upload(
        &state.db,
        fid,
        farms::NewFile {
            path: &path,
            blob,
            size,
            sha256,
            content_type,
        },
        &pre,
    )
    .await;
    let committed = match committed {
        Ok(c) => c,
        Err(e) => {
            // The bytes are stored but will never be referenced.
            staged.discard().await;
            return Err(write_error(e).into());
        }
    };
    staged.settled = true;
    if let Some(replaced) = committed.replaced_blob {
        reclaim(&state, fid, replaced).await;
    }
    let file = committed.file;
    let mut res = if committed.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.insert_header((header::ETAG, etag(&file))).json(file_dto(&file)))
}

/// An upload's blob between `begin_blob` and its commit. If the handler is
/// dropped before it settles (actix drops it when the client's connection
/// fails), the blob is still retired and removed and its reservation given
/// back, instead of waiting for the orphan grace period.
struct Staged {
    state: web::Data<AppState>,
    farm: FarmId,
    blob: Uuid,
    writer: Option<BlobWriter>,
    settled: bool,
}

impl Staged {
    /// The upload failed: removes what was written and frees the bytes.
    async fn discard(mut self) {
        self.settled = true;
        if let Some(writer) = self.writer.take() {
            writer.abort().await;
        }
        discard_blob(&self.state, self.farm, self.blob).await;
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (state, farm, blob, writer) = (self.state.clone(), self.farm, self.blob, self.writer.take());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Some(writer) = writer {
                    writer.abort().await;
                }
                discard_blob(&state, farm, blob).await;
            });
        }
    }
}

/// Retires a blob no file will point at and removes it now.
async fn discard_blob(state: &AppState, farm: FarmId, blob: Uuid) {
    if let Err(e) = farms::abandon_blob(&state.db, blob).await {
        tracing::warn!(farm_id = %farm, error = %e, "retiring an abandoned blob failed; the sweeper will");
        return;
    }
    reclaim(state, farm, blob).await;
}

/// Removes the object of a retired (`deleted`) blob now, and gives its
/// bytes back to the farm's quota: replaced and deleted files free their
/// space at once rather than at the next sweep. Until this succeeds the
/// bytes stay charged; a failure is left to the sweeper.
pub async fn reclaim(state: &AppState, farm: FarmId, blob: Uuid) {
    match farms::is_deleted_blob(&state.db, farm, blob).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(farm_id = %farm, error = %e, "reclaiming a blob failed; the sweeper will");
            return;
        }
    }
    if let Err(e) = state.blobs.delete(farm, blob).await {
        tracing::warn!(farm_id = %farm, error = %e, "removing a retired blob failed; the sweeper will");
        return;
    }
    if let Err(e) = farms::forget_deleted_blob(&state.db, farm, blob).await {
        tracing::warn!(farm_id = %farm, error = %e, "releasing a retired blob failed; the sweeper will");
    }
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    Full,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses a single `bytes=` range (RFC 9110 §14). A malformed header or a
/// multi-range request is ignored (the whole file is served), as the RFC
/// allows; a well-formed range wholly outside the file is unsatisfiable.
pub fn parse_range(value: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => {
            if a >= len {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Part(a, b.min(len - 1))
            }
        }
        (Ok(a), Err(_)) if last.is_empty() => {
            if a >= len {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Part(a, len - 1)
            }
        }
        (Err(_), Ok(n)) if first.is_empty() => {
            if n == 0 || len == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Part(len.saturating_sub(n), len - 1)
            }
        }
        _ => RangeRequest::Full,
    }
}

/// `attachment`, so a browser never renders an uploaded page in our origin.
fn disposition(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or("file");
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Serves `file` (for a download, a HEAD, or a share link): conditional
/// `If-None-Match` (304), `Range` (206/416) with `If-Range`, streamed and
/// decrypted chunk by chunk. The first chunk is authenticated before the
/// status line goes out, so a damaged blob is a clean error response.
pub async fn serve(
    state: &AppState,
    req: &HttpRequest,
    farm: &farm::Model,
    file: &farm_file::Model,
    slot: Option<LinkSlot>,
) -> ApiResult<HttpResponse> {
    let tag = etag(file);
    let len = u64::try_from(file.size).unwrap_or(0);
    let head_only = req.method() == Method::HEAD;
    let common = |b: &mut HttpResponseBuilder| {
        b.insert_header((header::ETAG, tag.clone()))
            .insert_header((header::ACCEPT_RANGES, "bytes"))
            .insert_header((header::CACHE_CONTROL, "private, no-cache"))
            .insert_header((
                header::LAST_MODIFIED,
                header::HttpDate::from(std::time::SystemTime::from(file.updated_at)).to_string(),
            ));
    };
    if let Some(tags) = tags(req.headers(), header::IF_NONE_MATCH)
        && tags.iter().any(|t| t == "*" || *t == file.sha256)
    {
        let mut b = HttpResponse::NotModified();
        common(&mut b);
        return Ok(b.finish());
    }
    let if_range_ok = match req.headers().get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => v.trim().trim_matches('"') == file.sha256,
    };
    let range_header = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = if if_range_ok {
        parse_range(range_header, len)
    } else {
        RangeRequest::Full
    };
    let (status, span) = match range {
        RangeRequest::Full => (StatusCode::OK, None),
        RangeRequest::Part(a, b) => (StatusCode::PARTIAL_CONTENT, Some((a, b))),
        RangeRequest::Unsatisfiable => {
            return Err((AppError::RangeNotSatisfiable { len }).into());
        }
    };
    let body_len = span.map_or(len, |(a, b)| b - a + 1);
    let mut builder = HttpResponse::build(status);
    common(&mut builder);
    builder
        .insert_header((header::CONTENT_TYPE, file.content_type.clone()))
        .insert_header((header::CONTENT_DISPOSITION, disposition(&file.path)))
        .insert_header(("Content-Security-Policy", "sandbox; default-src 'none'"));
    if let Some((a, b)) = span {
        builder.insert_header((header::CONTENT_RANGE, format!("bytes {a}-{b}/{len}")));
    }
    if head_only {
        return Ok(builder
            .no_chunking(body_len)
            .streaming(stream::empty::<Result<Bytes, actix_web::Error>>()));
    }
    let key = farm_keys::data_key(&state.db, &state.master_key, farm).await?;
    let mut body = state
        .blobs
        .read(FarmId::from_uuid(farm.id), file.blob_id, &key, len, span)
        .await
        .map_err(blob_error)?;
    let first = match body.next().await {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => return Err(blob_error(e).into()),
        None => Bytes::new(),
    };
    let farm_id = farm.id;
    let rest: BoxStream<'static, Result<Bytes, actix_web::Error>> = body
        .map(move |item| {
            item.map_err(|e| {
                // Headers are gone: all that is left is to cut the response
                // short, which the client sees as a failed transfer.
                tracing::error!(farm_id = %farm_id, error = %e, "download aborted");
                actix_web::error::ErrorInternalServerError("stored data failed its integrity check")
            })
        })
        .boxed();
    let stream = stream::once(async move { Ok::<_, actix_web::Error>(first) }).chain(rest);
    Ok(transfer::meter(
        builder.no_chunking(body_len).streaming(stream),
        Pace::of(&state.config),
        slot,
    ))
}

/// Downloads a file, streamed, with `Range` (206) and `If-None-Match` (304).
#[utoipa::path(get, path = "/v1/farms/{fid}/files/{path}", tag = "farms",
    params(
        ("fid" = Uuid, Path, description = "Farm id"),
        ("path" = String, Path, description = "File path", example = "ecg/2026-11-21/lead1.csv", pattern = r"^(?!/)(?!.*//)(?!.*/$)(?!(?:.*/)?\.\.?(?:/|$))(?!.*[^/]{256})[^\u0000-\u001f\u007f-\u009f\\]{1,1024}$"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`, `bytes=1024-`, `bytes=-500`"),
        ("If-None-Match" = Option<String>, Header, description = "ETags the client has: 304 if one is current"),
        ("If-Range" = Option<String>, Header, description = "Apply `Range` only if this ETag is current"),
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The whole file, with its stored `Content-Type`.", content_type = "*/*", body = String,
            headers(("ETag" = String), ("Accept-Ranges" = String), ("Content-Length" = u64))),
        (status = 206, description = "The requested range.", content_type = "*/*", body = String,
            headers(("Content-Range" = String, description = "e.g. `bytes 0-1023/48213`"), ("ETag" = String))),
        (status = 304, description = "The client's copy is current.", headers(("ETag" = String))),
        (status = 403, response = ForbiddenResponse),
        (status = 416, response = RangeNotSatisfiableResponse),
    ))]
pub async fn download(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
) -> ApiResult<HttpResponse> {
    let path = file_path(&req)?;
    let read = sharing::farm(&state, &auth.0, fid.0, FarmAsk::File(path.as_str())).await?;
    let fid = FarmId::from_uuid(read.farm.id);
    let file = farms::find_file(&state.db, fid, &path)
        .await?
        .ok_or(AppError::NotFound("file"))?;
    let mut response = serve(&state, &req, &read.farm, &file, None).await?;
    if let Some(value) = read.receipt.header()
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        response
            .headers_mut()
            .insert(HeaderName::from_static("vitalfarm-consent"), value);
    }
    Ok(response)
}

/// A file's headers (size, type, ETag) without its body.
#[utoipa::path(head, path = "/v1/farms/{fid}/files/{path}", tag = "farms",
    params(
        ("fid" = Uuid, Path, description = "Farm id"),
        ("path" = String, Path, description = "File path", example = "ecg/2026-11-21/lead1.csv", pattern = r"^(?!/)(?!.*//)(?!.*/$)(?!(?:.*/)?\.\.?(?:/|$))(?!.*[^/]{256})[^\u0000-\u001f\u007f-\u009f\\]{1,1024}$"),
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The file exists; headers as for GET.", headers(("ETag" = String), ("Content-Length" = u64), ("Content-Type" = String))),
        (status = 304, description = "The client's copy is current."),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn head(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
) -> ApiResult<HttpResponse> {
    download(req, state, auth, fid).await
}

/// Deletes a file; `If-Match` makes it conditional.
#[utoipa::path(delete, path = "/v1/farms/{fid}/files/{path}", tag = "farms",
    params(
        ("fid" = Uuid, Path, description = "Farm id"),
        ("path" = String, Path, description = "File path", example = "ecg/2026-11-21/lead1.csv", pattern = r"^(?!/)(?!.*//)(?!.*/$)(?!(?:.*/)?\.\.?(?:/|$))(?!.*[^/]{256})[^\u0000-\u001f\u007f-\u009f\\]{1,1024}$"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the current ETag is one of these"),
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, response = ForbiddenResponse),
        (status = 412, response = PreconditionFailedResponse),
    ))]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
) -> ApiResult<HttpResponse> {
    let path = file_path(&req)?;
    let (farm, _) = authz::farm(&state, &auth.0, fid.0, Permission::WriteData).await?;
    let fid = FarmId::from_uuid(farm.id);
    let pre = precondition(req.headers());
    let blob = farms::delete_file(&state.db, fid, &path, &pre)
        .await
        .map_err(write_error)?;
    reclaim(&state, fid, blob).await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The directory to list (default `/`).
    #[param(example = "/ecg/")]
    pub prefix: Option<String>,
    /// Every file below the directory instead of one level.
    pub recursive: Option<bool>,
    /// Entries per page, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^(?:[0-9a-f]{2})+$")]
    pub cursor: Option<String>,
}

/// Lists a directory: its files and sub-directories (or, `recursive`, every
/// file below it), in path order, paginated.
#[utoipa::path(get, path = "/v1/farms/{fid}/list", tag = "farms",
    params(("fid" = Uuid, Path, description = "Farm id"), ListQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of entries.", body = FileList), (status = 403, response = ForbiddenResponse)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
    Query(q): Query<ListQuery>,
) -> ApiResult<actix_web::CustomizeResponder<web::Json<FileList>>> {
    let prefix =
        farm_path::parse_dir_prefix(q.prefix.as_deref().unwrap_or("/")).map_err(|e| path_error("prefix", e))?;
    let limit = crate::extract::PageQuery {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let bad_cursor = || AppError::InvalidParameter {
        field: "cursor".into(),
        message: "is not a cursor this API returned".into(),
    };
    // Any string is a valid lower bound, so any hex decodes to a cursor.
    let after = match &q.cursor {
        None => None,
        Some(c) if c.is_empty() => return Err(bad_cursor().into()),
        Some(c) => Some(String::from_utf8_lossy(&hex::decode(c).map_err(|_| bad_cursor())?).into_owned()),
    };
    let read = sharing::farm(&state, &auth.0, fid.0, FarmAsk::Listing(&prefix)).await?;
    let fid = FarmId::from_uuid(read.farm.id);
    let (entries, more) = farms::list(
        &state.db,
        fid,
        &prefix,
        after.as_deref(),
        limit,
        q.recursive.unwrap_or(false),
    )
    .await?;
    let next_cursor = if more {
        entries.last().map(|e| hex::encode(cursor_key(e)))
    } else {
        None
    };
    // A shared listing shows only what lies under (or leads to) a shared
    // folder; pages may come out shorter, the cursor stays exact.
    let items = entries
        .iter()
        .filter(|e| read.shows(&cursor_key_path(e)))
        .map(entry_dto)
        .collect();
    Ok(crate::receipts::json(
        &read.receipt,
        FileList {
            prefix,
            items,
            next_cursor,
            consents: read.receipt.ids(),
        },
    ))
}

fn cursor_key_path(e: &Entry) -> String {
    match e {
        Entry::File(f) => f.path.clone(),
        Entry::Dir(d) => d.clone(),
    }
}

/// Where a listing resumes after `e`: past every file of a directory entry.
fn cursor_key(e: &Entry) -> String {
    match e {
        Entry::File(f) => f.path.clone(),
        Entry::Dir(d) => format!("{d}\u{10FFFF}"),
    }
}

fn entry_dto(e: &Entry) -> ListEntry {
    match e {
        Entry::File(f) => ListEntry {
            kind: EntryKind::File,
            path: f.path.clone(),
            size: u64::try_from(f.size).ok(),
            content_type: Some(f.content_type.clone()),
            etag: Some(etag(f)),
            updated_at: Some(f.updated_at),
        },
        Entry::Dir(d) => ListEntry {
            kind: EntryKind::Directory,
            path: d.clone(),
            size: None,
            content_type: None,
            etag: None,
            updated_at: None,
        },
    }
}

/// Moves (renames) a file. Only metadata changes: no byte is copied.
#[utoipa::path(post, path = "/v1/farms/{fid}/move", tag = "farms",
    params(("fid" = Uuid, Path, description = "Farm id")),
    request_body = MoveRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The file at its new path.", body = FileInfo),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn move_file(
    state: web::Data<AppState>,
    auth: Auth,
    fid: PathFarmId,
    Json(body): Json<MoveRequest>,
) -> ApiResult<web::Json<FileInfo>> {
    let mut errors = vitalfarm_domain::ValidationErrors::new();
    let from = errors.check("from", FarmPath::parse(&body.from));
    let to = errors.check("to", FarmPath::parse(&body.to));
    errors.into_result()?;
    let (Some(from), Some(to)) = (from, to) else {
        return Err(AppError::field("from", "is invalid").into());
    };
    let (farm, _) = authz::farm(&state, &auth.0, fid.0, Permission::WriteData).await?;
    let fid = FarmId::from_uuid(farm.id);
    let (file, replaced) = farms::move_file(&state.db, fid, &from, &to, body.overwrite)
        .await
        .map_err(write_error)?;
    if let Some(blob) = replaced {
        reclaim(&state, fid, blob).await;
    }
    Ok(web::Json(file_dto(&file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        let r = |h: &str, len| parse_range(Some(h), len);
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(r("bytes=0-3", 10), Part(0, 3));
        assert_eq!(r("bytes=5-", 10), Part(5, 9));
        assert_eq!(r("bytes=-3", 10), Part(7, 9));
        assert_eq!(r("bytes=-30", 10), Part(0, 9));
        assert_eq!(r("bytes=8-100", 10), Part(8, 9));
        assert_eq!(r("bytes=10-", 10), Unsatisfiable);
        assert_eq!(r("bytes=10-12", 10), Unsatisfiable);
        assert_eq!(r("bytes=-0", 10), Unsatisfiable);
        assert_eq!(r("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(r("bytes=3-1", 10), Full, "malformed: ignored");
        assert_eq!(r("bytes=0-1,4-5", 10), Full, "multiple ranges: whole file");
        assert_eq!(r("items=0-1", 10), Full);
        assert_eq!(r("bytes=x-y", 10), Full);
    }

    #[test]
    fn dispositions_are_attachments_with_safe_names() {
        assert_eq!(
            disposition("/a/report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report%2Epdf"
        );
        assert!(disposition("/a/\"x\";.html").starts_with("attachment; filename=\"_x__.html\""));
        assert!(disposition("/é.txt").contains("filename*=UTF-8''%C3%A9%2Etxt"));
    }
}
