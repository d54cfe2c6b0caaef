//! The one write path of readings. Every source goes through [`store`]: a
//! device's batch over HTTP or MQTT ([`ingest_device_batch`]), a FHIR
//! import, the heart rate an ECG analysis derives, a manual entry. It
//! stores each reading exactly once (the writer skips what the unique keys
//! already hold, so a retry or a concurrent import stores nothing twice),
//! evaluates the alert rules on what was new before answering, records a
//! device's last sign of life, and wakes the live stream. A caller cannot
//! do one step without the others.

use vitalfarm_domain::{DeviceId, MembershipId, SubjectId};
use vitalfarm_openapi::readings::{IngestResponse, Rejected};
use vitalfarm_storage::entity::{device, subject};
use vitalfarm_storage::repo::devices;
use vitalfarm_storage::repo::readings::NewRow;

use super::writer::{Pending, WriteError};
use super::{MAX_BATCH, Valid, validate};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Where readings come from. A device's readings land with the subject it
/// is bound to; readings from elsewhere name their subject and source.
#[derive(Clone, Copy)]
pub enum Origin<'a> {
    /// A device's own readings (HTTP ingest or MQTT); source `device`.
    Device(&'a device::Model),
    /// Readings without a device, stored by the subject's membership.
    Elsewhere {
        subject: &'a subject::Model,
        source: Source,
    },
}

/// The source of a reading without a device, as the `source` column and
/// the public `source` field name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A hospital's FHIR bundle (`POST .../imports/fhir`).
    Hospital,
    /// The mean heart rate of an ECG recording (`.../ecg/analyze`).
    Ecg,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Hospital => "hospital",
            Source::Ecg => "ecg",
        }
    }
}

/// Where a device's readings land: its subject and that subject's
/// membership; `None` while the device is not bound to a subject.
fn device_target(dev: &device::Model) -> Option<(MembershipId, SubjectId)> {
    Some((
        MembershipId::from_uuid(dev.bound_membership_id?),
        SubjectId::from_uuid(dev.subject_id?),
    ))
}

fn not_bound() -> AppError {
    AppError::Conflict("this device is not claimed or assigned to a subject yet".into())
}

/// Stores `readings` from `origin` and returns, per reading, whether it was
/// new (false: stored before, or twice in this call). Nothing is stored
/// when it fails.
pub async fn store(state: &AppState, origin: Origin<'_>, readings: Vec<Valid>) -> AppResult<Vec<bool>> {
    let (membership, subject, device, source) = match origin {
        Origin::Device(dev) => {
            let (membership, subject) = device_target(dev).ok_or_else(not_bound)?;
            (membership, subject, Some(DeviceId::from_uuid(dev.id)), "device")
        }
        Origin::Elsewhere { subject, source } => (
            MembershipId::from_uuid(subject.membership_id),
            SubjectId::from_uuid(subject.id),
            None,
            source.as_str(),
        ),
    };
    let origin_key = device.map_or(subject.as_uuid(), |d| d.as_uuid());
    let pending: Vec<Pending> = readings
        .into_iter()
        .map(|v| {
            let rows: Vec<NewRow> = v
                .normalized
                .values
                .iter()
                .map(|(component, value)| NewRow {
                    membership_id: membership,
                    subject_id: subject,
                    device_id: device,
                    metric: v.normalized.metric.code,
                    component,
                    ts_ms: v.ts_ms,
                    value: *value,
                    unit: v.normalized.unit,
                    source,
                    // A device's sequence number tells its messages apart;
                    // other sources have none.
                    seq: device.and(v.seq),
                })
                .collect();
            // The same identity as `NewRow::key` of each of its rows.
            let key = (origin_key, v.normalized.metric.code, v.ts_ms);
            Pending { key, rows }
        })
        .collect();
    let new = state.ingest.write(pending).await.map_err(|e| match e {
        WriteError::Stopped => AppError::Unavailable("the service is shutting down; send the readings again"),
        WriteError::Storage(_) => AppError::Internal(e.into()),
    })?;
    if let Origin::Device(dev) = origin {
        // A sign of life even when every reading was a duplicate: the
        // device is talking. Failing to note it loses nothing stored.
        if let Err(e) = devices::touch(&state.db, dev, state.config.device_offline_after()).await {
            tracing::warn!(error = %e, "recording last_seen_at failed");
        }
    }
    if new.iter().any(|n| *n) {
        state.stream.wake();
    }
    Ok(new)
}

/// A device's batch as it arrived (HTTP body or MQTT message): validated
/// reading by reading, the valid ones stored with the device's subject.
/// Answers what was stored, what was a duplicate and what was rejected
/// with why; fails (nothing stored) when the batch is too large, the
/// device is not bound to a subject, or storage fails.
pub async fn ingest_device_batch(
    state: &AppState,
    dev: &device::Model,
    items: &[serde_json::Value],
) -> AppResult<IngestResponse> {
    if items.len() > MAX_BATCH {
        return Err(AppError::field(
            "readings",
            format!("at most {MAX_BATCH} readings per request"),
        ));
    }
    if device_target(dev).is_none() {
        return Err(not_bound());
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut valid = Vec::with_capacity(items.len());
    for (i, raw) in items.iter().enumerate() {
        match validate(i, raw, now_ms) {
            Ok(v) => valid.push(v),
            Err(r) => rejected.push(r),
        }
    }
    let count = valid.len() as u64;
    let new = store(state, Origin::Device(dev), valid).await?;
    let accepted = new.iter().filter(|n| **n).count() as u64;
    Ok(IngestResponse {
        accepted,
        duplicates: count - accepted,
        rejected,
    })
}
