//! Device commands between the database and the MQTT link: sending a
//! command (now, or when the link comes up), recording the device's answer,
//! and expiring what was never answered. The HTTP side is
//! `routes::commands`; the MQTT code calls `dispatch_pending` on connect,
//! `redeliver` when a device subscribes to its commands, and `on_result`
//! for each `.../commands/{cid}/result` message.
//!
//! Delivery is at least once: a command published just as the link
//! reconnects may reach the device twice, so devices act on a command id
//! once.

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;
use vitalfarm_domain::{CommandId, CommandStatus, DeviceId};
use vitalfarm_storage::entity::device_command;
use vitalfarm_storage::repo::commands::{self, Completion, Outcome};

use crate::mqtt::link::MqttLink;
use crate::state::AppState;

/// Largest result message accepted from a device; a bigger one is dropped
/// rather than stored.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;
/// Longest error message kept from a device, in characters.
pub const MAX_ERROR_CHARS: usize = 1000;
/// Commands fetched per round when re-dispatching after a reconnect.
const PENDING_BATCH: u64 = 200;
/// Most open commands sent again to one device as it subscribes; a device
/// with more is being flooded, and the oldest come first.
const REDELIVER_MAX: u64 = 100;

/// What a device receives on `vitalfarm/v1/devices/{did}/commands`.
#[derive(Serialize)]
struct Downlink<'a> {
    id: Uuid,
    name: &'a str,
    params: Value,
    expires_at: String,
}

/// Publishes `cmd` to its device and records it `sent`. Without a broker
/// link (MQTT off, or not connected yet) the command stays `queued` for
/// `dispatch_pending`. A command no longer queued, or already expired, is
/// not sent.
pub async fn dispatch(state: &AppState, cmd: &device_command::Model) -> anyhow::Result<()> {
    let Some(link) = state.mqtt_link() else {
        return Ok(());
    };
    if commands::status_of(cmd) != CommandStatus::Queued || cmd.expires_at <= Utc::now() {
        return Ok(());
    }
    publish(link, cmd).await?;
    commands::mark_sent(&state.db, CommandId::from_uuid(cmd.id)).await?;
    tracing::debug!(command_id = %cmd.id, device_id = %cmd.device_id, name = %cmd.name, "command sent");
    Ok(())
}

async fn publish(link: &MqttLink, cmd: &device_command::Model) -> anyhow::Result<()> {
    let payload = serde_json::to_vec(&Downlink {
        id: cmd.id,
        name: &cmd.name,
        params: serde_json::from_str(&cmd.params).unwrap_or_else(|_| Value::Object(Map::new())),
        expires_at: cmd.expires_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })?;
    link.publish_command(cmd.device_id, payload)
        .await
        .context("publishing a command")
}

/// Publishes `device`'s open commands again (queued, or sent and not yet
/// answered), for when the device subscribes to its command topic: the
/// broker drops a command published while the device had no session, so
/// `sent` alone does not mean the device has it. Returns how many.
pub async fn redeliver(state: &AppState, device: Uuid) -> anyhow::Result<usize> {
    let Some(link) = state.mqtt_link() else {
        return Ok(0);
    };
    let open = commands::list_open(&state.db, DeviceId::from_uuid(device), REDELIVER_MAX).await?;
    for cmd in &open {
        publish(link, cmd).await?;
        commands::mark_sent(&state.db, CommandId::from_uuid(cmd.id)).await?;
    }
    if !open.is_empty() {
        tracing::debug!(device_id = %device, count = open.len(), "open commands delivered again");
    }
    Ok(open.len())
}

/// Publishes every command still queued and unexpired, oldest first;
/// returns how many were sent. For when the broker link (re)connects.
pub async fn dispatch_pending(state: &AppState) -> anyhow::Result<usize> {
    if state.mqtt_link().is_none() {
        return Ok(0);
    }
    let mut sent = 0;
    let mut after = None;
    loop {
        let batch = commands::list_pending(&state.db, None, after, PENDING_BATCH).await?;
        let Some(last) = batch.last() else {
            break;
        };
        after = Some(last.id);
        for cmd in &batch {
            dispatch(state, cmd)
                .await
                .with_context(|| format!("re-dispatching queued commands, after {sent} sent"))?;
            sent += 1;
        }
    }
    if sent > 0 {
        tracing::info!(count = sent, "queued commands sent");
    }
    Ok(sent)
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ResultStatus {
    Acked,
    Failed,
}

/// What a device publishes on `.../commands/{cid}/result`. Other fields
/// are ignored, so firmware may add its own.
#[derive(Deserialize)]
struct ResultMessage {
    status: ResultStatus,
    #[serde(default)]
    result: Option<Map<String, Value>>,
    #[serde(default)]
    error: Option<String>,
}

/// Records `device`'s answer to `command`. Anything wrong (unknown command,
/// another device's command, malformed JSON, an answer to a command that
/// already ended) is logged, without the payload, and dropped: a device
/// cannot be told over this channel, and must not be able to crash it.
pub async fn on_result(state: &AppState, device: Uuid, command: Uuid, payload: &[u8]) {
    if payload.len() > MAX_RESULT_BYTES {
        tracing::warn!(device_id = %device, command_id = %command, bytes = payload.len(), "command result too large; dropped");
        return;
    }
    let msg: ResultMessage = match serde_json::from_slice(payload) {
        Ok(m) => m,
        Err(e) => {
            // The error's category and position only: its text can quote
            // the payload.
            tracing::warn!(device_id = %device, command_id = %command, error = ?e.classify(), line = e.line(), column = e.column(), "malformed command result; dropped");
            return;
        }
    };
    let outcome = match msg.status {
        ResultStatus::Acked => Outcome::Acked,
        ResultStatus::Failed => Outcome::Failed,
    };
    let result = msg.result.map(|r| Value::Object(r).to_string());
    let error = msg.error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect::<String>());
    let done = commands::complete(
        &state.db,
        DeviceId::from_uuid(device),
        CommandId::from_uuid(command),
        outcome,
        result,
        error,
    )
    .await;
    match done {
        Ok(Completion::Recorded) => {
            tracing::info!(device_id = %device, command_id = %command, status = outcome.status().as_str(), "command result recorded");
        }
        Ok(Completion::Unknown) => {
            tracing::warn!(device_id = %device, command_id = %command, "result for a command this device does not have; dropped");
        }
        Ok(Completion::Closed(status)) => {
            tracing::debug!(device_id = %device, command_id = %command, status = status.as_str(), "result for a command that already ended; dropped");
        }
        Err(e) => {
            tracing::warn!(device_id = %device, command_id = %command, error = %e, "could not record a command result");
        }
    }
}

/// Writes `expired` on open commands past their expiry; returns how many.
/// Readers see the expiry without it; this keeps the table honest for
/// re-dispatch and for anyone reading it directly.
pub async fn expire_due(state: &AppState) -> anyhow::Result<u64> {
    let n = commands::expire(&state.db, Utc::now()).await?;
    if n > 0 {
        tracing::debug!(count = n, "commands expired");
    }
    Ok(n)
}
