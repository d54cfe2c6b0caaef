//! Device models, fleets, claiming and assignment.

use actix_web::http::Method;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;
use vitalfarm_domain::{DeviceId, DeviceStatus, MembershipId, Permission, SubjectId, ValidationErrors, metrics};
use vitalfarm_openapi::devices::{
    AssignRequest, ClaimRequest, CreateDeviceModelRequest, Device, DeviceModel, DeviceModelPage, DevicePage, NewDevice,
    NewDevices, RegisterDevicesRequest, RegisteredDevice, RegisteredDevices, RotatedSecret, UpdateDeviceRequest,
};
use vitalfarm_openapi::doc::{
    ConflictResponse, ForbiddenResponse, GoneResponse, NotFoundResponse, PayloadTooLargeResponse,
};
use vitalfarm_storage::entity::device_model;
use vitalfarm_storage::repo::{devices, subjects};

use vitalfarm_app::views::device_dto;

use super::RouteSet;
use crate::error::{ApiResult, AppError};
use crate::extract::json::{is_json, parse};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, Json, PageQuery, PathDeviceId, PathMembershipId, Query};
use vitalfarm_app::audit::{self, Event};
use vitalfarm_app::auth::secrets;
use vitalfarm_app::authz::{self, Claimed, DeviceSide};
use vitalfarm_app::state::AppState;

pub const DEVICE_SECRET_PREFIX: &str = "vf_dev_";
/// Most devices one registration may carry.
pub const MAX_BULK: usize = 20_000;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/memberships/{mid}/device-models", create_model);
    r.add(Method::GET, "/v1/memberships/{mid}/device-models", list_models);
    r.add(Method::POST, "/v1/memberships/{mid}/devices", register);
    r.add(Method::GET, "/v1/memberships/{mid}/devices", list);
    // Before `/v1/devices/{did}`: actix matches resources in order.
    r.add(Method::POST, "/v1/devices/claim", claim);
    r.add(Method::GET, "/v1/devices/{did}", get);
    r.add(Method::PATCH, "/v1/devices/{did}", update);
    r.add(Method::POST, "/v1/devices/{did}/rotate-secret", rotate_secret);
    r.add(Method::POST, "/v1/devices/{did}/assign", assign);
}

fn model_dto(m: &device_model::Model) -> DeviceModel {
    DeviceModel {
        id: m.id,
        name: m.name.clone(),
        manufacturer: m.manufacturer.clone(),
        metrics: serde_json::from_str(&m.metrics).unwrap_or_default(),
        created_at: m.created_at,
    }
}

fn check_text(errors: &mut ValidationErrors, field: &str, value: &str) {
    errors.check(field, vitalfarm_domain::validation::check_name(value, 200));
}

/// Defines a device model: what it is and which metrics it measures.
#[utoipa::path(post, path = "/v1/memberships/{mid}/device-models", tag = "devices",
    params(("mid" = Uuid, Path, description = "Membership id")),
    request_body = CreateDeviceModelRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 201, description = "Created.", body = DeviceModel), (status = 403, response = ForbiddenResponse)))]
pub async fn create_model(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Json(body): Json<CreateDeviceModelRequest>,
) -> ApiResult<HttpResponse> {
    let mut errors = ValidationErrors::new();
    check_text(&mut errors, "name", &body.name);
    check_text(&mut errors, "manufacturer", &body.manufacturer);
    if body.metrics.is_empty() || body.metrics.len() > 32 {
        errors.add("metrics", "must list 1 to 32 metric codes");
    }
    for (i, code) in body.metrics.iter().enumerate() {
        if metrics::find(code).is_none() {
            errors.add(
                format!("metrics[{i}]"),
                format!("unknown metric {code:?}; see GET /v1/metrics"),
            );
        }
    }
    errors.into_result()?;
    let access = authz::authorize(&state, &auth.0, mid.0, Permission::ManageDevices).await?;
    let mut codes = body.metrics.clone();
    codes.dedup();
    let m = devices::create_model(
        &state.db,
        access.membership(),
        body.name.trim(),
        body.manufacturer.trim(),
        &codes,
    )
    .await?;
    Ok(HttpResponse::Created().json(model_dto(&m)))
}

/// The membership's device models.
#[utoipa::path(get, path = "/v1/memberships/{mid}/device-models", tag = "devices",
    params(("mid" = Uuid, Path, description = "Membership id"), PageQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of models.", body = DeviceModelPage)))]
pub async fn list_models(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<DeviceModelPage>> {
    let (limit, after) = (page.limit()?, page.after()?);
    let access = authz::authorize(&state, &auth.0, mid.0, Permission::ReadData).await?;
    let page = devices::list_models(&state.db, access.membership(), after, limit).await?;
    Ok(web::Json(DeviceModelPage {
        items: page.items.iter().map(model_dto).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// A claim code: 60 random bits as 12 Crockford base-32 characters in three
/// groups, easy to print in a box and to type.
fn claim_code() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bytes = secrets::random_bytes::<8>()?;
    let mut n = u64::from_be_bytes(bytes);
    let mut out = String::with_capacity(14);
    for i in 0..12 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[(n & 31) as usize]));
        n >>= 5;
    }
    Ok(out)
}

/// The canonical form of a typed claim code, as hashed.
fn normalise_claim_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

fn serial_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// Reads the body (JSON or CSV) up to `limit` bytes.
async fn read_body(payload: &mut web::Payload, limit: usize) -> ApiResult<web::BytesMut> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| AppError::InvalidJson(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err((AppError::PayloadTooLarge { limit }).into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_csv(body: &[u8]) -> ApiResult<Vec<NewDevice>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| AppError::field("body", format!("not CSV: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let serial_col =
        col("serial").ok_or_else(|| AppError::field("body", "the CSV header must have a `serial` column"))?;
    let model_col = col("model_id");
    let mut out = Vec::new();
    let mut errors = ValidationErrors::new();
    for (i, record) in reader.records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.add(format!("devices[{i}]"), format!("unreadable CSV row: {e}"));
                continue;
            }
        };
        let serial = record.get(serial_col).unwrap_or_default().to_owned();
        let model_id = match model_col.and_then(|c| record.get(c)).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => match v.parse::<Uuid>() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.add(format!("devices[{i}].model_id"), "must be a UUID");
                    None
                }
            },
        };
        out.push(NewDevice { serial, model_id });
    }
    errors.into_result()?;
    Ok(out)
}

/// Registers devices in the membership's fleet: one (`{serial}`), many
/// (`{devices: [...]}`, up to 20,000) or a `text/csv` body with a `serial`
/// (and optional `model_id`) column. All or nothing: any invalid row fails
/// the request with an error per row. Each device gets its secret and claim
/// code, shown only in this response.
#[utoipa::path(post, path = "/v1/memberships/{mid}/devices", tag = "devices",
    params(("mid" = Uuid, Path, description = "Membership id")),
    request_body(content(
        (RegisterDevicesRequest = "application/json"),
        (String = "text/csv", example = "serial,model_id\nCC2-000123,\nCC2-000124,\n"),
    )),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Registered; keep the secrets and claim codes now.", body = RegisteredDevices),
        (status = 403, response = ForbiddenResponse),
        (status = 413, response = PayloadTooLargeResponse),
    ))]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let is_csv = content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"));
    if !is_csv && !is_json(&content_type) {
        return Err((AppError::UnsupportedMediaType {
            expected: "application/json or text/csv",
        })
        .into());
    }
    let body = read_body(&mut payload, state.config.max_bulk_body_bytes).await?;
    // One device answers with field names as sent (`serial`); a list names
    // the row (`devices[3].serial`).
    let (rows, single): (Vec<NewDevice>, bool) = if is_csv {
        (parse_csv(&body)?, false)
    } else {
        let value: serde_json::Value = parse(&body)?;
        if value.get("devices").is_some() {
            (parse::<NewDevices>(&body)?.devices, false)
        } else {
            (vec![parse::<NewDevice>(&body)?], true)
        }
    };
    if rows.is_empty() {
        return Err(AppError::field("devices", "must list at least one device").into());
    }
    if rows.len() > MAX_BULK {
        return Err(AppError::field("devices", format!("at most {MAX_BULK} devices per request")).into());
    }
    let mut errors = ValidationErrors::new();
    let mut seen = std::collections::HashSet::new();
    let prefix = |i: usize| {
        if single {
            String::new()
        } else {
            format!("devices[{i}].")
        }
    };
    for (i, d) in rows.iter().enumerate() {
        if !serial_ok(&d.serial) {
            errors.add(
                format!("{}serial", prefix(i)),
                "must be 1 to 100 characters of letters, digits and ._:-",
            );
        } else if !seen.insert(d.serial.as_str()) {
            errors.add(
                format!("{}serial", prefix(i)),
                format!("serial {} appears twice in this request", d.serial),
            );
        }
    }
    errors.into_result()?;
    let authorized = authz::authorize(&state, &auth.0, mid.0, Permission::ManageDevices).await;
    let attempt =
        Event::by(&auth.0, mid.0.for_audit(), "device.registered", "devices").with_detail(json!({"count": rows.len()}));
    let membership = audit::guard(&state, attempt, authorized).await?.membership();
    let mut errors = ValidationErrors::new();
    let mut model_ok = std::collections::HashMap::new();
    for (i, d) in rows.iter().enumerate() {
        if let Some(model) = d.model_id {
            let ok = match model_ok.get(&model) {
                Some(ok) => *ok,
                None => {
                    let ok = devices::find_model_in(&state.db, membership, model).await?.is_some();
                    model_ok.insert(model, ok);
                    ok
                }
            };
            if !ok {
                errors.add(
                    format!("{}model_id", prefix(i)),
                    "no such device model in this membership",
                );
            }
        }
    }
    errors.into_result()?;

    let expires =
        Utc::now() + Duration::seconds(i64::try_from(state.config.claim_code_ttl_secs).unwrap_or(i64::MAX / 1000));
    let mut issued = Vec::with_capacity(rows.len());
    let mut new_rows = Vec::with_capacity(rows.len());
    for d in rows {
        let id = DeviceId::new();
        let secret = secrets::generate(DEVICE_SECRET_PREFIX)?;
        let code = claim_code()?;
        new_rows.push(devices::NewDevice {
            id,
            serial: d.serial.clone(),
            model_id: d.model_id,
            secret_hash: secrets::digest(&secret),
            claim_code_hash: secrets::digest(&normalise_claim_code(&code)),
            claim_expires_at: expires,
        });
        issued.push((id, d.serial, secret, code));
    }
    match devices::register(&state.db, membership, new_rows).await? {
        Err(clashes) => Err(AppError::Validation(
            clashes
                .into_iter()
                .map(|(i, message)| vitalfarm_openapi::FieldError {
                    field: format!("{}serial", prefix(i)),
                    message,
                })
                .collect(),
        )
        .into()),
        Ok(_) => {
            tracing::info!(membership_id = %membership, count = issued.len(), "devices registered");
            audit::record(
                &state,
                Event::by(&auth.0, membership, "device.registered", "devices")
                    .with_detail(json!({"count": issued.len()})),
            )
            .await?;
            let devices: Vec<RegisteredDevice> = issued
                .into_iter()
                .map(|(id, serial, secret, claim_code)| RegisteredDevice {
                    device_id: id.as_uuid(),
                    serial,
                    status: DeviceStatus::Provisioned,
                    secret,
                    claim_code,
                    claim_expires_at: expires,
                })
                .collect();
            Ok(HttpResponse::Created().json(RegisteredDevices { devices }))
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    pub status: Option<DeviceStatus>,
    pub model_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    /// Items per page, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{22}$")]
    pub cursor: Option<String>,
}

/// Devices of the membership's fleet and devices recording its subjects,
/// with their last contact.
#[utoipa::path(get, path = "/v1/memberships/{mid}/devices", tag = "devices",
    params(("mid" = Uuid, Path, description = "Membership id"), DeviceQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of devices.", body = DevicePage)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(q): Query<DeviceQuery>,
) -> ApiResult<web::Json<DevicePage>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (limit, after) = (page.limit()?, page.after()?);
    let membership = authz::authorize(&state, &auth.0, mid.0, Permission::ReadData)
        .await?
        .membership();
    let filter = devices::DeviceFilter {
        status: q.status,
        model_id: q.model_id,
        subject_id: q.subject_id,
    };
    let page = devices::list(&state.db, membership, filter, after, limit).await?;
    Ok(web::Json(DevicePage {
        items: page.items.iter().map(|d| device_dto(d, membership)).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// A device.
#[utoipa::path(get, path = "/v1/devices/{did}", tag = "devices",
    params(("did" = Uuid, Path, description = "Device id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The device.", body = Device)))]
pub async fn get(state: web::Data<AppState>, auth: Auth, did: PathDeviceId) -> ApiResult<web::Json<Device>> {
    let (dev, access) = authz::device(&state, &auth.0, did.0, Permission::ReadData, DeviceSide::Fleet).await?;
    Ok(web::Json(device_dto(&dev, access.membership())))
}

/// Changes a device's status: `active`, `suspended` (refused at ingest
/// until resumed) or `retired` (final).
#[utoipa::path(patch, path = "/v1/devices/{did}", tag = "devices",
    params(("did" = Uuid, Path, description = "Device id")),
    request_body = UpdateDeviceRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The device.", body = Device), (status = 403, response = ForbiddenResponse), (status = 409, response = ConflictResponse)))]
pub async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    did: PathDeviceId,
    Json(body): Json<UpdateDeviceRequest>,
) -> ApiResult<web::Json<Device>> {
    let (dev, access) = authz::device(&state, &auth.0, did.0, Permission::ManageDevices, DeviceSide::Fleet).await?;
    let current = DeviceStatus::parse(&dev.status).unwrap_or(DeviceStatus::Retired);
    if !current.may_become(body.status) {
        return Err(AppError::Conflict(format!(
            "a {} device cannot become {}",
            current.as_str(),
            body.status.as_str()
        ))
        .into());
    }
    let dev = devices::set_status(&state.db, DeviceId::from_uuid(dev.id), body.status).await?;
    tracing::info!(device_id = %dev.id, status = body.status.as_str(), "device status changed");
    audit::record(
        &state,
        Event::by(
            &auth.0,
            access.membership(),
            "device.updated",
            format!("device/{}", dev.id),
        )
        .with_detail(json!({"status": body.status.as_str()})),
    )
    .await?;
    Ok(web::Json(device_dto(&dev, access.membership())))
}

/// Issues a new secret; the old one stops working at once.
#[utoipa::path(post, path = "/v1/devices/{did}/rotate-secret", tag = "devices",
    params(("did" = Uuid, Path, description = "Device id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The new secret, shown only now.", body = RotatedSecret), (status = 403, response = ForbiddenResponse)))]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    auth: Auth,
    did: PathDeviceId,
) -> ApiResult<web::Json<RotatedSecret>> {
    let (dev, access) = authz::device(&state, &auth.0, did.0, Permission::ManageDevices, DeviceSide::Fleet).await?;
    let id = DeviceId::from_uuid(dev.id);
    let secret = secrets::generate(DEVICE_SECRET_PREFIX)?;
    devices::set_secret(&state.db, id, secrets::digest(&secret)).await?;
    tracing::info!(device_id = %id, "device secret rotated");
    audit::record(
        &state,
        Event::by(
            &auth.0,
            access.membership(),
            "device.secret_rotated",
            format!("device/{id}"),
        ),
    )
    .await?;
    Ok(web::Json(RotatedSecret {
        device_id: id.as_uuid(),
        secret,
    }))
}

/// Claims a device one bought: binds it, by the code in its box, to one of
/// the caller's subjects. A code works once.
#[utoipa::path(post, path = "/v1/devices/claim", tag = "devices",
    request_body = ClaimRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The device, now recording the subject.", body = Device),
        (status = 403, response = ForbiddenResponse),
        (status = 404, response = NotFoundResponse),
        (status = 409, response = ConflictResponse),
        (status = 410, response = GoneResponse),
    ))]
pub async fn claim(
    state: web::Data<AppState>,
    auth: Auth,
    Json(body): Json<ClaimRequest>,
) -> ApiResult<web::Json<Device>> {
    let code = normalise_claim_code(&body.claim_code);
    if code.is_empty() || code.len() > 64 {
        return Err(AppError::field("claim_code", "must be the code printed with the device").into());
    }
    let subject = subjects::find(&state.db, SubjectId::from_uuid(body.subject_id))
        .await?
        .ok_or_else(|| AppError::field("subject_id", "no such subject"))?;
    // The subject was named in the body: its membership is a claim like
    // any other, and someone with no standing there is told no such subject.
    let membership = authz::authorize(
        &state,
        &auth.0,
        Claimed::new(MembershipId::from_uuid(subject.membership_id)),
        Permission::WriteData,
    )
    .await
    .map_err(|e| match e {
        AppError::NotFound(_) => AppError::field("subject_id", "no such subject"),
        other => other,
    })?
    .membership();
    match devices::claim(
        &state.db,
        &secrets::digest(&code),
        membership,
        SubjectId::from_uuid(subject.id),
    )
    .await?
    {
        Ok(dev) => {
            tracing::info!(device_id = %dev.id, membership_id = %membership, "device claimed");
            audit::record(
                &state,
                Event::by(&auth.0, membership, "device.claimed", format!("device/{}", dev.id))
                    .with_detail(json!({"subject_id": subject.id})),
            )
            .await?;
            Ok(web::Json(device_dto(&dev, membership)))
        }
        Err(devices::ClaimError::Unknown) => {
            Err(AppError::NotFound("device with this claim code (codes work once)").into())
        }
        Err(devices::ClaimError::Expired) => {
            Err(AppError::Gone("this claim code has expired; ask the device's maker for a new one".into()).into())
        }
        Err(devices::ClaimError::Retired) => Err(AppError::Conflict("this device is retired".into()).into()),
    }
}

/// Binds a fleet device to one of the company's own subjects (an enrollee).
#[utoipa::path(post, path = "/v1/devices/{did}/assign", tag = "devices",
    params(("did" = Uuid, Path, description = "Device id")),
    request_body = AssignRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The device, now recording the subject.", body = Device), (status = 403, response = ForbiddenResponse), (status = 409, response = ConflictResponse)))]
pub async fn assign(
    state: web::Data<AppState>,
    auth: Auth,
    did: PathDeviceId,
    Json(body): Json<AssignRequest>,
) -> ApiResult<web::Json<Device>> {
    let (dev, access) = authz::device(&state, &auth.0, did.0, Permission::ManageDevices, DeviceSide::Fleet).await?;
    let owner = MembershipId::from_uuid(dev.owner_membership_id);
    if access.membership() != owner {
        return Err(AppError::Forbidden("only the fleet's owner assigns its devices".into()).into());
    }
    if dev.bound_membership_id.is_some_and(|b| b != owner.as_uuid()) {
        return Err(AppError::Conflict("the device was claimed by its buyer".into()).into());
    }
    if dev.status == DeviceStatus::Retired.as_str() {
        return Err(AppError::Conflict("this device is retired".into()).into());
    }
    let subject = subjects::find(&state.db, SubjectId::from_uuid(body.subject_id))
        .await?
        .filter(|s| s.membership_id == owner.as_uuid())
        .ok_or_else(|| AppError::field("subject_id", "no such subject in this company"))?;
    let dev = devices::assign(
        &state.db,
        DeviceId::from_uuid(dev.id),
        owner,
        SubjectId::from_uuid(subject.id),
    )
    .await?;
    audit::record(
        &state,
        Event::by(&auth.0, owner, "device.assigned", format!("device/{}", dev.id))
            .with_detail(json!({"subject_id": subject.id})),
    )
    .await?;
    Ok(web::Json(device_dto(&dev, owner)))
}
