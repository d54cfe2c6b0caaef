//! Hospital records in (`POST /v1/memberships/{mid}/imports/fhir`): a FHIR
//! R4 Bundle for one subject of the membership. Observations of our
//! metrics become readings with source `hospital` (validated exactly like
//! a device's); every other resource is kept as a JSON file in the
//! membership's farm under `/hospital/<date>/`, through the same encrypted,
//! quota-charged, versioned write as an upload. Entries that cannot be used
//! are reported one by one and do not stop the others.

use actix_web::http::Method;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, web};
use chrono::Utc;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vitalfarm_domain::fhir_import::{self, Entry, Rejection};
use vitalfarm_domain::{FarmId, FarmPath, Permission, SubjectId};
use vitalfarm_openapi::doc::{ForbiddenResponse, NotFoundResponse, PayloadTooLargeResponse};
use vitalfarm_openapi::imports::{FhirImportResponse, ImportedDocument, ImportedReadings, RejectedEntry};
use vitalfarm_storage::entity::farm;
use vitalfarm_storage::repo::farms::{self, WriteError};
use vitalfarm_storage::repo::subjects;

use vitalfarm_app::readings::{Origin, Source};

use super::RouteSet;
use super::farms::blob_error;
use crate::error::{ApiError, ApiResult, AppError};
use crate::extract::{Auth, PathMembershipId, Query};
use vitalfarm_app::audit;
use vitalfarm_app::authz;
use vitalfarm_app::farm_keys;
use vitalfarm_app::state::AppState;

/// The largest bundle accepted.
pub const MAX_BUNDLE_BYTES: usize = 10 * 1024 * 1024;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/memberships/{mid}/imports/fhir", import_fhir);
}

/// The query; `subject_id` is required, and checked only once the caller
/// is known to stand in the membership, so a stranger learns nothing.
#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    pub subject_id: Option<String>,
}

/// A document not kept, with the reason for the entry's rejection.
enum DocError {
    Rejected(&'static str, String),
    Failed(ApiError),
}

/// Stores `bytes` at `path` in `farm` unless the file there already has
/// exactly these bytes (a re-import): the same write as an upload.
async fn store_document(state: &AppState, farm: &farm::Model, path: &FarmPath, bytes: &[u8]) -> Result<(), DocError> {
    let fid = FarmId::from_uuid(farm.id);
    let sha = hex::encode(Sha256::digest(bytes));
    let existing = farms::find_file(&state.db, fid, path)
        .await
        .map_err(|e| DocError::Failed(e.into()))?;
    if existing.as_ref().is_some_and(|f| f.sha256 == sha) {
        return Ok(());
    }
    let size = i64::try_from(bytes.len()).map_err(|_| DocError::Rejected("resource", "too large".into()))?;
    let max = farm
        .max_file_bytes
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(usize::try_from(state.config.max_file_bytes).unwrap_or(usize::MAX));
    if bytes.len() > max {
        return Err(DocError::Rejected(
            "resource",
            "larger than the farm's largest file".into(),
        ));
    }
    let key = farm_keys::data_key(&state.db, &state.master_key, farm)
        .await
        .map_err(|e| DocError::Failed(e.into()))?;
    let blob = Uuid::now_v7();
    farms::begin_blob(&state.db, fid, blob, size)
        .await
        .map_err(|e| match e {
            WriteError::Quota { .. } => DocError::Rejected("resource", "the farm's quota is exceeded".into()),
            WriteError::Storage(e) => DocError::Failed(e.into()),
            other => DocError::Failed(AppError::Internal(anyhow::Error::new(other)).into()),
        })?;
    let written = async {
        let mut writer = state
            .blobs
            .writer(fid, blob, &key, bytes.len() as u64)
            .map_err(blob_error)?;
        if let Err(e) = writer.write(bytes).await {
            writer.abort().await;
            return Err(blob_error(e));
        }
        writer.finish().await.map_err(blob_error)
    }
    .await;
    let sha256 = match written {
        Ok(sha) => sha,
        Err(e) => {
            farms::abandon_blob(&state.db, blob)
                .await
                .map_err(|e| DocError::Failed(e.into()))?;
            super::farms::reclaim(state, fid, blob).await;
            return Err(DocError::Failed(e.into()));
        }
    };
    let committed = farms::commit_upload(
        &state.db,
        fid,
        farms::NewFile {
            path,
            blob,
            size,
            sha256,
            content_type: "application/fhir+json".into(),
        },
        &farms::Precondition::default(),
    )
    .await;
    let committed = match committed {
        Ok(c) => c,
        Err(e) => {
            // The bytes are stored but never referenced.
            farms::abandon_blob(&state.db, blob)
                .await
                .map_err(|e| DocError::Failed(e.into()))?;
            super::farms::reclaim(state, fid, blob).await;
            return Err(match e {
                WriteError::Quota { .. } => DocError::Rejected("resource", "the farm's quota is exceeded".into()),
                WriteError::Storage(e) => DocError::Failed(e.into()),
                other => DocError::Failed(AppError::Internal(anyhow::Error::new(other)).into()),
            });
        }
    };
    if let Some(replaced) = committed.replaced_blob {
        super::farms::reclaim(state, fid, replaced).await;
    }
    Ok(())
}

fn rejected(entry: usize, r: Rejection) -> RejectedEntry {
    RejectedEntry {
        entry,
        resource_type: r.resource_type,
        id: r.id,
        field: r.field,
        reason: r.reason,
    }
}

/// Imports a hospital's records of one subject from a FHIR R4 Bundle
/// (`application/fhir+json` or `application/json`, at most 10 MiB).
/// Observations whose LOINC code is one of our metrics (the blood pressure
/// panel 85354-9 with its systolic and diastolic components included)
/// become readings of the subject with source `hospital`, converted to the
/// metric's unit and checked against its plausible range; importing the
/// same bundle again stores nothing twice. Every other resource (Patient,
/// Condition, MedicationStatement, Observations of other codes...) is kept
/// in the membership's farm as `/hospital/<date>/<type>-<id>.json`. An
/// entry that cannot be used is listed under `rejected` with its index and
/// does not stop the others; a body that is not a Bundle is refused.
#[utoipa::path(post, path = "/v1/memberships/{mid}/imports/fhir", tag = "readings",
    params(("mid" = Uuid, Path, description = "Membership id"),
        ("subject_id" = Uuid, Query, description = "The subject of the membership the records are about.",
            example = "0193a5e2-7c1d-7b61-9d3e-5a1f0c2b4d6e")),
    request_body(content = Object, description = "A FHIR R4 Bundle.", content_type = "application/fhir+json"),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "What was imported, kept and rejected.", body = FhirImportResponse),
        (status = 403, response = ForbiddenResponse),
        (status = 404, response = NotFoundResponse),
        (status = 413, response = PayloadTooLargeResponse),
    ))]
pub async fn import_fhir(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(q): Query<ImportQuery>,
    mut payload: web::Payload,
) -> ApiResult<web::Json<FhirImportResponse>> {
    let access = authz::authorize(&state, &auth.0, mid.0, Permission::WriteData).await?;
    let subject_id: Uuid =
        q.subject_id
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| AppError::InvalidParameter {
                field: "subject_id".into(),
                message: "the id of the subject the records are about is required".into(),
            })?;
    let subject = subjects::find(&state.db, SubjectId::from_uuid(subject_id))
        .await?
        .filter(|s| s.membership_id == access.membership().as_uuid())
        .ok_or(AppError::NotFound("subject"))?;
    let _sid = SubjectId::from_uuid(subject.id);

    let essence = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(essence.as_deref(), Some("application/fhir+json" | "application/json")) {
        return Err((AppError::UnsupportedMediaType {
            expected: "application/fhir+json",
        })
        .into());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| AppError::InvalidJson(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BUNDLE_BYTES {
            return Err((AppError::PayloadTooLarge {
                limit: MAX_BUNDLE_BYTES,
            })
            .into());
        }
        body.extend_from_slice(&chunk);
    }
    let bundle: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| AppError::InvalidJson(format!("malformed JSON: {e}")))?;
    let entries = fhir_import::entries(&bundle).map_err(|e| AppError::InvalidParameter {
        field: e.field.into(),
        message: e.message.into(),
    })?;

    let now_ms = Utc::now().timestamp_millis();
    let folder = format!("/hospital/{}", Utc::now().format("%Y-%m-%d"));
    let farm = farms::find_by_membership(&state.db, access.membership())
        .await?
        .ok_or(AppError::NotFound("farm"))?;
    let mut pending = Vec::new();
    let mut duplicates = 0u64;
    let mut documents = Vec::new();
    let mut rejections = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        match entry {
            Err(r) => rejections.push(rejected(index, r)),
            Ok(Entry::Reading { id, reading }) => {
                let valid = match vitalfarm_app::readings::validate(index, &reading, now_ms) {
                    Ok(v) => v,
                    Err(r) => {
                        let first = r.errors.into_iter().next();
                        rejections.push(RejectedEntry {
                            entry: index,
                            resource_type: Some("Observation".into()),
                            id,
                            field: first
                                .as_ref()
                                .map_or_else(|| "resource".into(), |f| fhir_import::fhir_field(&f.field)),
                            reason: first.map_or_else(|| "invalid".into(), |f| f.message),
                        });
                        continue;
                    }
                };
                pending.push(valid);
            }
            Ok(Entry::Document {
                resource_type,
                id,
                resource,
            }) => {
                let name = match &id {
                    Some(id) => format!("{resource_type}-{id}.json"),
                    None => format!("{resource_type}-entry{index}.json"),
                };
                let reject = |field: &str, reason: String| RejectedEntry {
                    entry: index,
                    resource_type: Some(resource_type.clone()),
                    id: id.clone(),
                    field: field.to_owned(),
                    reason,
                };
                let Ok(path) = FarmPath::parse(&format!("{folder}/{name}")) else {
                    rejections.push(reject("id", "cannot name a file".into()));
                    continue;
                };
                let bytes = serde_json::to_vec_pretty(&resource).map_err(|e| AppError::Internal(e.into()))?;
                match store_document(&state, &farm, &path, &bytes).await {
                    Ok(()) => documents.push(ImportedDocument {
                        path: path.as_str().to_owned(),
                        resource_type,
                    }),
                    Err(DocError::Rejected(field, reason)) => rejections.push(reject(field, reason)),
                    Err(DocError::Failed(e)) => return Err(e),
                }
            }
        }
    }
    // The one write path: a reading stored by an earlier import of the
    // same records (or by a concurrent one) is a duplicate; alert rules
    // judge the new ones and live streams show them, as for device ingest.
    let valid = pending.len() as u64;
    let new = vitalfarm_app::readings::store(
        &state,
        Origin::Elsewhere {
            subject: &subject,
            source: Source::Hospital,
        },
        pending,
    )
    .await?;
    let imported = new.iter().filter(|n| **n).count() as u64;
    duplicates += valid - imported;

    let event = audit::Event::by(
        &auth.0,
        access.membership(),
        "fhir.imported",
        format!("subject/{}", subject.id),
    )
    .with_detail(serde_json::json!({
        "readings": imported,
        "duplicates": duplicates,
        "documents": documents.len(),
        "rejected": rejections.len(),
    }));
    audit::record(&state, event).await?;
    tracing::info!(
        imported,
        duplicates,
        documents = documents.len(),
        rejected = rejections.len(),
        "fhir bundle imported"
    );
    Ok(web::Json(FhirImportResponse {
        subject_id: subject.id,
        readings: ImportedReadings { imported, duplicates },
        documents,
        rejected: rejections,
    }))
}
