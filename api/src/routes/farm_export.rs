//! The whole farm as one ZIP, streamed: files are read, decrypted and
//! framed one after another, so memory stays flat whatever the farm's size.

use actix_web::http::Method;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use chrono::{Datelike, Timelike};
use futures_util::StreamExt;
use vitalfarm_domain::zip::ZipEncoder;
use vitalfarm_domain::{FarmId, Permission};
use vitalfarm_openapi::doc::ForbiddenResponse;
use vitalfarm_storage::entity::farm;
use vitalfarm_storage::repo::farms;

use super::RouteSet;
use crate::error::ApiResult;
use crate::extract::{Auth, PathFarmId};
use vitalfarm_app::audit::{self, Event};
use vitalfarm_app::state::AppState;
use vitalfarm_app::{authz, farm_keys};

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/farms/{fid}/export", export);
}

/// Files are listed from the database this many at a time.
const BATCH: u64 = 200;

/// The whole farm as a ZIP archive (stored, not compressed: health files
/// such as PDFs and images are compressed already), streamed.
#[utoipa::path(get, path = "/v1/farms/{fid}/export", tag = "farms",
    params(("fid" = Uuid, Path, description = "Farm id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A ZIP archive of every file, paths as in the farm.", content_type = "application/zip", body = String),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn export(state: web::Data<AppState>, auth: Auth, fid: PathFarmId) -> ApiResult<HttpResponse> {
    let (farm, access) = authz::farm(&state, &auth.0, fid.0, Permission::ReadData).await?;
    let farm_id = FarmId::from_uuid(farm.id);
    audit::record(
        &state,
        Event::by(&auth.0, access.membership(), "farm.exported", format!("farm/{farm_id}")),
    )
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let state = state.into_inner();
    tokio::spawn(async move {
        if let Err(e) = produce(&state, &farm, &tx).await {
            tracing::error!(farm_id = %farm_id, error = format!("{e:#}"), "export aborted");
            // Cut the response short: the client sees a failed transfer,
            // never a truncated archive that looks complete.
            let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"farm-{farm_id}.zip\""),
        ))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .streaming(body))
}

async fn produce(
    state: &AppState,
    farm: &farm::Model,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> anyhow::Result<()> {
    let farm_id = FarmId::from_uuid(farm.id);
    let mut zip = ZipEncoder::new();
    let mut after: Option<String> = None;
    let mut key = None;
    loop {
        let files = farms::files_after(&state.db, farm_id, after.as_deref(), BATCH).await?;
        let Some(last) = files.last() else { break };
        after = Some(last.path.clone());
        if key.is_none() {
            key = Some(farm_keys::data_key(&state.db, &state.master_key, farm).await?);
        }
        let Some(key) = &key else { break };
        for file in files {
            let t = file.updated_at;
            let modified = (
                u16::try_from(t.year()).unwrap_or(1980),
                u8::try_from(t.month()).unwrap_or(1),
                u8::try_from(t.day()).unwrap_or(1),
                u8::try_from(t.hour()).unwrap_or(0),
                u8::try_from(t.minute()).unwrap_or(0),
                u8::try_from(t.second()).unwrap_or(0),
            );
            let size = u64::try_from(file.size)?;
            send(tx, zip.start_entry(&file.path, size, modified)?).await?;
            let mut body = state.blobs.read(farm_id, file.blob_id, key, size, None).await?;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                zip.entry_data(&chunk)?;
                send(tx, chunk.to_vec()).await?;
            }
            send(tx, zip.finish_entry()?).await?;
        }
    }
    send(tx, zip.finish()?).await?;
    Ok(())
}

async fn send(tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>, bytes: Vec<u8>) -> anyhow::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    tx.send(Ok(Bytes::from(bytes)))
        .await
        .map_err(|_| anyhow::anyhow!("the client went away"))
}
