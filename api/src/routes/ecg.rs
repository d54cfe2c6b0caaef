//! ECG analysis (`POST /v1/subjects/{sid}/ecg/analyze`): R peaks and heart
//! rate of a single-lead recording in the farm of the subject's membership,
//! read under the same rules as the file and the subject's heart rate
//! (one's own, or shared by a consent covering both), and optionally kept
//! as a `heart_rate` reading.

use actix_web::http::Method;
use actix_web::{CustomizeResponder, web};
use futures_util::StreamExt;
use vitalfarm_domain::consent::Access as ConsentAccess;
use vitalfarm_domain::ecg;
use vitalfarm_domain::oauth::Scope;
use vitalfarm_domain::{FarmId, FarmPath, MembershipId, Permission, metrics};
use vitalfarm_openapi::doc::ForbiddenResponse;
use vitalfarm_openapi::ecg::{EcgAnalysis, EcgAnalyzeRequest, RPeak};
use vitalfarm_storage::repo::farms;

use vitalfarm_app::readings::{Origin, Source};

use super::RouteSet;
use super::farms::blob_error;
use crate::error::{ApiResult, AppError};
use crate::extract::{Auth, Json, PathSubjectId};
use vitalfarm_app::authz::Claimed;
use vitalfarm_app::principal::Principal;
use vitalfarm_app::sharing::{self, FarmAsk, Receipt, Standing};
use vitalfarm_app::state::AppState;
use vitalfarm_app::{authz, farm_keys};

/// The largest recording read: ten minutes at 1000 Hz with a time column
/// fits with room to spare.
const MAX_FILE_BYTES: i64 = 24 * 1024 * 1024;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/subjects/{sid}/ecg/analyze", analyze);
}

/// Detects the R peaks of a single-lead ECG recording (CSV in the farm of
/// the subject's membership) with the Pan–Tompkins QRS algorithm and
/// derives the heart rate. Another membership's recording is read only
/// under a consent that shares both the subject's `heart_rate` and the
/// file's folder. With `store_heart_rate` the mean heart rate is stored as
/// a `heart_rate` reading (source `ecg`) of one's own subject. An app
/// needs `files.read` besides `readings.read`.
#[utoipa::path(post, path = "/v1/subjects/{sid}/ecg/analyze", tag = "readings",
    params(("sid" = Uuid, Path, description = "Subject id")),
    request_body = EcgAnalyzeRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The beats and heart rate. A malformed recording is 422 naming the line.", body = EcgAnalysis,
            headers(("Vitalfarm-Consent" = String, description = "Ids of the consents that permitted reading another membership's data; absent for one's own."))),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn analyze(
    state: web::Data<AppState>,
    auth: Auth,
    sid: PathSubjectId,
    Json(body): Json<EcgAnalyzeRequest>,
) -> ApiResult<CustomizeResponder<web::Json<EcgAnalysis>>> {
    let path = FarmPath::parse(&body.farm_path).map_err(|e| AppError::field("farm_path", e.to_string()))?;
    // The route's own scope (`readings.read`, from `crate::scopes`) covers
    // the beats; the recording is a farm file, which an app reads only
    // with `files.read` as well.
    if let Principal::App { scopes, .. } = &auth.0
        && !scopes.contains(Scope::FilesRead)
    {
        return Err((AppError::InsufficientScope {
            scope: Scope::FilesRead.as_str(),
        })
        .into());
    }
    let read = sharing::subject(&state, &auth.0, sid.0).await?;
    // Refuse an unshared metric before any byte is decrypted; the exact
    // window is checked once the recording's time is known.
    read.window("heart_rate", i64::MIN, i64::MAX, ConsentAccess::Read)?;
    if body.store_heart_rate {
        may_store(&state, &auth.0, &read.standing).await?;
    }
    let owner = MembershipId::from_uuid(read.subject.membership_id);
    let farm = farms::find_by_membership(&state.db, owner)
        .await?
        .ok_or(AppError::NotFound("file"))?;
    let farm_id = FarmId::from_uuid(farm.id);
    // The subject is shared, so its membership's farm is no secret: a
    // consent without folders refuses the file like one with other folders.
    let farm_read = match sharing::farm(&state, &auth.0, Claimed::new(farm_id), FarmAsk::File(path.as_str())).await {
        Err(AppError::NotFound("farm")) if matches!(read.standing, Standing::Shared(_)) => {
            return Err(AppError::Forbidden("no active consent shares this recording's folder with you".into()).into());
        }
        other => other?,
    };
    let file = farms::find_file(&state.db, farm_id, &path)
        .await?
        .ok_or(AppError::NotFound("file"))?;
    if file.size > MAX_FILE_BYTES {
        return Err(AppError::field(
            "farm_path",
            format!("the recording is larger than {} MiB", MAX_FILE_BYTES / (1024 * 1024)),
        )
        .into());
    }

    let key = farm_keys::data_key(&state.db, &state.master_key, &farm_read.farm).await?;
    let len = u64::try_from(file.size).unwrap_or(0);
    let mut stream = state
        .blobs
        .read(farm_id, file.blob_id, &key, len, None)
        .await
        .map_err(blob_error)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(blob_error)?);
    }
    let text = String::from_utf8(bytes).map_err(|_| AppError::field("farm_path", "the recording is not UTF-8 text"))?;

    // Parsing and filtering up to 600,000 samples is CPU work: off the
    // request threads.
    let (recording, detection) = web::block(move || {
        ecg::parse_csv(&text).map(|r| {
            let d = ecg::detect(&r.samples, r.sampling_rate_hz);
            (r, d)
        })
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("ECG analysis: {e}")))?
    .map_err(|e| AppError::field("farm_path", e.to_string()))?;

    let start_ms = recording.start_ms.unwrap_or_else(|| file.updated_at.timestamp_millis());
    let duration_ms = (recording.duration_s() * 1000.0).ceil() as i64;
    // The beats are heart rate data of the subject: a shared read needs the
    // subject's heart rate over the recording's time, not only the file.
    let window = read
        .readings(
            &state,
            "heart_rate",
            start_ms,
            start_ms + duration_ms.max(1),
            ConsentAccess::Read,
        )
        .await?;
    if window.is_empty() {
        return Err(AppError::Forbidden(
            "no active consent shares this subject's heart rate at the time of the recording".into(),
        )
        .into());
    }
    let mut receipt = Receipt::default();
    receipt.extend(window.consent);
    for id in farm_read.receipt.ids() {
        receipt.add(vitalfarm_domain::ConsentId::from_uuid(id));
    }

    let stored_heart_rate = match (body.store_heart_rate, detection.heart_rate_bpm) {
        (false, _) => false,
        (true, None) => {
            return Err(AppError::field("store_heart_rate", "no heart rate: fewer than two beats were found").into());
        }
        (true, Some(bpm)) => store(&state, &read.subject, start_ms, bpm).await?,
    };

    let fs = recording.sampling_rate_hz;
    let analysis = EcgAnalysis {
        r_peaks: detection
            .r_peaks
            .iter()
            .map(|&index| RPeak {
                index,
                t_ms: index as f64 * 1000.0 / fs,
            })
            .collect(),
        rr_ms: detection.rr_ms,
        heart_rate_bpm: detection.heart_rate_bpm,
        hr_min: detection.hr_min,
        hr_max: detection.hr_max,
        sampling_rate_hz: fs,
        duration_s: recording.duration_s(),
        stored_heart_rate,
        consents: receipt.ids(),
    };
    Ok(crate::receipts::json(&receipt, analysis))
}

/// Storing is a write: one's own subject only, with a role that writes
/// data, and for an app the `readings.write` scope as well.
async fn may_store(state: &AppState, principal: &Principal, standing: &Standing) -> ApiResult<()> {
    let Standing::Own(access) = standing else {
        return Err(AppError::Forbidden(
            "a consent allows reading; the heart rate can only be stored by the subject's own membership".into(),
        )
        .into());
    };
    if let Principal::App { scopes, .. } = principal
        && !scopes.contains(Scope::ReadingsWrite)
    {
        return Err(AppError::Forbidden("storing a heart rate needs the readings.write scope".into()).into());
    }
    authz::authorize(
        state,
        principal,
        Claimed::new(access.membership()),
        Permission::WriteData,
    )
    .await?;
    Ok(())
}

/// Stores `bpm` at `ts_ms` unless a heart rate from an ECG is already
/// stored for the subject at that time; true when stored.
async fn store(
    state: &AppState,
    subject: &vitalfarm_storage::entity::subject::Model,
    ts_ms: i64,
    bpm: f64,
) -> ApiResult<bool> {
    let normalized = metrics::normalize("heart_rate", Some(bpm), None, None).map_err(|e| {
        let message = e
            .into_errors()
            .into_iter()
            .map(|f| f.message)
            .collect::<Vec<_>>()
            .join("; ");
        AppError::field(
            "store_heart_rate",
            format!("the detected heart rate cannot be stored: {message}"),
        )
    })?;
    let reading = vitalfarm_app::readings::Valid {
        index: 0,
        ts_ms,
        seq: None,
        normalized,
    };
    // A heart rate without a device is one per subject and time: an
    // analysis repeated over the same recording stores nothing new.
    let new = vitalfarm_app::readings::store(
        state,
        Origin::Elsewhere {
            subject,
            source: Source::Ecg,
        },
        vec![reading],
    )
    .await?;
    Ok(new.first().copied().unwrap_or(false))
}
