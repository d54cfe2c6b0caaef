//! Commands to a device: send one, read it back, list them.
//!
//! A device records for at most one membership besides its fleet owner:
//! the one that claimed it (or the owner itself, for an enrollee). That
//! membership commands it; the fleet owner does so only while nobody else
//! has claimed it, since a `MEASURE` result is the claimant's health data.
//! Each membership sees only the commands it issued. Which membership the
//! caller acts for is decided by `authz::device` with
//! `DeviceSide::Recorder`: the one the device records for when the caller
//! belongs to it, else the fleet owner; 404 for anyone with standing in
//! neither, exactly as the device's own routes answer.

use actix_web::http::Method;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use chrono::Duration;
use serde_json::{Map, Value};
use vitalfarm_domain::command::{DEFAULT_TTL_SECS, MAX_TTL_SECS};
use vitalfarm_domain::{CommandId, CommandName, DeviceId, DeviceStatus, Permission, ValidationErrors};
use vitalfarm_openapi::commands::{Command, CommandPage, CreateCommand};
use vitalfarm_openapi::doc::{ConflictResponse, ForbiddenResponse};
use vitalfarm_storage::entity::device_command;
use vitalfarm_storage::repo::commands::{self as repo, NewCommand};

use super::RouteSet;
use crate::error::{ApiResult, AppError};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, Json, PageQuery, PathCommandId, PathDeviceId, Query};
use vitalfarm_app::authz::{self, DeviceSide};
use vitalfarm_app::commands;
use vitalfarm_app::principal::Principal;
use vitalfarm_app::state::AppState;

/// Largest `params`, as JSON: a command is an instruction, not a payload,
/// and it has to fit an MQTT message a small device can buffer.
pub const MAX_PARAMS_BYTES: usize = 16 * 1024;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/devices/{did}/commands", create);
    r.add(Method::GET, "/v1/devices/{did}/commands", list);
    r.add(Method::GET, "/v1/devices/{did}/commands/{cid}", get);
}

fn command_dto(c: &device_command::Model) -> Command {
    let object = |text: &str| match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Command {
        id: c.id,
        device_id: c.device_id,
        name: c.name.clone(),
        params: object(&c.params),
        status: repo::status_of(c),
        created_at: c.created_at,
        sent_at: c.sent_at,
        completed_at: c.completed_at,
        expires_at: c.expires_at,
        result: c.result.as_deref().map(object),
        error: c.error.clone(),
    }
}

/// Sends a command to the device over MQTT (`vitalfarm/v1/devices/{did}/commands`).
/// It is `queued` until the broker has it, then `sent`; the device answers
/// `acked` or `failed` on `.../commands/{cid}/result`, and a command not
/// answered within `ttl_secs` is `expired`. Suspended and retired devices
/// take no commands.
#[utoipa::path(post, path = "/v1/devices/{did}/commands", tag = "devices",
    params(("did" = Uuid, Path, description = "Device id")),
    request_body = CreateCommand,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Accepted for delivery.", body = Command,
            headers(("Location" = String, description = "The command's URL."))),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Auth,
    did: PathDeviceId,
    Json(body): Json<CreateCommand>,
) -> ApiResult<HttpResponse> {
    let mut errors = ValidationErrors::new();
    let name = errors.check("name", CommandName::parse(&body.name));
    let ttl = body.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl) {
        errors.add("ttl_secs", format!("must be between 1 and {MAX_TTL_SECS} seconds"));
    }
    let params = Value::Object(body.params).to_string();
    if params.len() > MAX_PARAMS_BYTES {
        errors.add("params", format!("must be at most {MAX_PARAMS_BYTES} bytes as JSON"));
    }
    errors.into_result()?;
    let Some(name) = name else {
        return Err(AppError::field("name", "is invalid").into());
    };

    let (dev, access) = authz::device(&state, &auth.0, did.0, Permission::ManageDevices, DeviceSide::Recorder).await?;
    let device = DeviceId::from_uuid(dev.id);
    if dev
        .bound_membership_id
        .is_some_and(|b| b != access.membership().as_uuid())
    {
        return Err(
            AppError::Conflict("the device was claimed by its buyer; only they send it commands".into()).into(),
        );
    }
    let status = DeviceStatus::parse(&dev.status).unwrap_or(DeviceStatus::Retired);
    if matches!(status, DeviceStatus::Suspended | DeviceStatus::Retired) {
        return Err(AppError::Conflict(format!("the device is {}; it takes no commands", status.as_str())).into());
    }
    let created_by = match &auth.0 {
        Principal::User { id } => id.as_uuid(),
        Principal::ApiKey { id, .. } => id.as_uuid(),
        Principal::App { app, .. } => app.as_uuid(),
    };
    let cmd = repo::create(
        &state.db,
        NewCommand {
            id: CommandId::new(),
            device,
            membership: access.membership(),
            name,
            params,
            created_by: Some(created_by),
            ttl: Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX / 1000)),
        },
    )
    .await?;
    tracing::info!(command_id = %cmd.id, device_id = %cmd.device_id, name = %cmd.name, "command queued");
    // The command is stored: a failed publish leaves it queued for the next
    // re-dispatch rather than failing a request that did its part.
    if let Err(e) = commands::dispatch(&state, &cmd).await {
        tracing::warn!(command_id = %cmd.id, error = format!("{e:#}"), "command not sent yet");
    }
    let cmd = repo::find_in(&state.db, access.membership(), device, CommandId::from_uuid(cmd.id))
        .await?
        .unwrap_or(cmd);
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/v1/devices/{}/commands/{}", cmd.device_id, cmd.id)))
        .json(command_dto(&cmd)))
}

/// The commands the caller's membership sent to the device, newest first.
#[utoipa::path(get, path = "/v1/devices/{did}/commands", tag = "devices",
    params(("did" = Uuid, Path, description = "Device id"), PageQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of commands.", body = CommandPage)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    did: PathDeviceId,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<CommandPage>> {
    let (limit, before) = (page.limit()?, page.after()?);
    let (dev, access) = authz::device(&state, &auth.0, did.0, Permission::ReadData, DeviceSide::Recorder).await?;
    let page = repo::list_in(
        &state.db,
        access.membership(),
        DeviceId::from_uuid(dev.id),
        before,
        limit,
    )
    .await?;
    Ok(web::Json(CommandPage {
        items: page.items.iter().map(command_dto).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// A command and how far it got. One past its expiry reads `expired` at
/// once, even before the periodic sweep records it.
#[utoipa::path(get, path = "/v1/devices/{did}/commands/{cid}", tag = "devices",
    params(("did" = Uuid, Path, description = "Device id"), ("cid" = Uuid, Path, description = "Command id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The command.", body = Command)))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Auth,
    did: PathDeviceId,
    cid: PathCommandId,
) -> ApiResult<web::Json<Command>> {
    let (dev, access) = authz::device(&state, &auth.0, did.0, Permission::ReadData, DeviceSide::Recorder).await?;
    let cmd = repo::find_in(&state.db, access.membership(), DeviceId::from_uuid(dev.id), cid.0)
        .await?
        .ok_or(AppError::NotFound("command"))?;
    Ok(web::Json(command_dto(&cmd)))
}
