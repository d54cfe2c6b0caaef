//! Device models, devices, claiming and assignment.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use vitalfarm_domain::DeviceStatus;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "CardioCuff 2", "manufacturer": "Acme Cardio", "metrics": ["blood_pressure", "heart_rate"]}))]
pub struct CreateDeviceModelRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(min_length = 1, max_length = 200)]
    pub manufacturer: String,
    /// Metric codes from `GET /v1/metrics` the model measures.
    #[schema(min_items = 1, max_items = 32)]
    pub metrics: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-0000000000a1", "name": "CardioCuff 2", "manufacturer": "Acme Cardio", "metrics": ["blood_pressure", "heart_rate"], "created_at": "2026-11-21T10:00:00Z"}))]
pub struct DeviceModel {
    pub id: Uuid,
    pub name: String,
    pub manufacturer: String,
    pub metrics: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [{"id": "01935c6e-0000-7000-8000-0000000000a1", "name": "CardioCuff 2", "manufacturer": "Acme Cardio", "metrics": ["blood_pressure", "heart_rate"], "created_at": "2026-11-21T10:00:00Z"}], "next_cursor": null}))]
pub struct DeviceModelPage {
    pub items: Vec<DeviceModel>,
    pub next_cursor: Option<String>,
}

/// One device to register.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"serial": "CC2-000123", "model_id": "01935c6e-0000-7000-8000-0000000000a1"}))]
pub struct NewDevice {
    /// Unique in the fleet.
    #[schema(min_length = 1, max_length = 100, pattern = r"^[A-Za-z0-9._:-]+$")]
    pub serial: String,
    /// A model of this membership.
    #[serde(default)]
    pub model_id: Option<Uuid>,
}

/// Many devices at once (up to 20,000), all or none.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"devices": [{"serial": "CC2-000123"}, {"serial": "CC2-000124"}]}))]
pub struct NewDevices {
    #[schema(min_items = 1, max_items = 20000)]
    pub devices: Vec<NewDevice>,
}

/// The body of a registration: one device, or `{devices: [...]}`. A
/// `text/csv` body with a header row (`serial`, optional `model_id`)
/// registers one device per row.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(example = json!({"devices": [{"serial": "CC2-000123", "model_id": "01935c6e-0000-7000-8000-0000000000a1"}, {"serial": "CC2-000124"}]}))]
pub enum RegisterDevicesRequest {
    Many(NewDevices),
    One(NewDevice),
}

/// A registered device with its credentials, shown only in this response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"device_id": "01935c6e-0000-7000-8000-0000000000b1", "serial": "CC2-000123", "status": "provisioned", "secret": "vf_dev_c2VjcmV0IGRldmljZSBrZXk...", "claim_code": "K7QM-4XD2-9PWR", "claim_expires_at": "2027-11-21T10:00:00Z"}))]
pub struct RegisteredDevice {
    pub device_id: Uuid,
    pub serial: String,
    pub status: DeviceStatus,
    /// The device's password (`Authorization: Device <device_id>:<secret>`,
    /// or the MQTT password). Stored hashed; rotate it if lost.
    pub secret: String,
    /// Printed in the box: the buyer claims the device with it. Single use.
    pub claim_code: String,
    pub claim_expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"devices": [{"device_id": "01935c6e-0000-7000-8000-0000000000b1", "serial": "CC2-000123", "status": "provisioned", "secret": "vf_dev_c2VjcmV0IGRldmljZSBrZXk...", "claim_code": "K7QM-4XD2-9PWR", "claim_expires_at": "2027-11-21T10:00:00Z"}]}))]
pub struct RegisteredDevices {
    pub devices: Vec<RegisteredDevice>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-0000000000b1", "owner_membership_id": "01935c6e-0000-7000-8000-000000000002", "model_id": "01935c6e-0000-7000-8000-0000000000a1", "serial": "CC2-000123", "status": "active", "claimed": true, "subject_id": "01935c6e-0000-7000-8000-000000000004", "last_seen_at": "2026-11-21T10:05:00Z", "created_at": "2026-11-21T10:00:00Z", "updated_at": "2026-11-21T10:01:00Z"}))]
pub struct Device {
    pub id: Uuid,
    /// The company whose fleet it is.
    pub owner_membership_id: Uuid,
    pub model_id: Option<Uuid>,
    pub serial: String,
    pub status: DeviceStatus,
    /// Bound to a subject (claimed or assigned).
    pub claimed: bool,
    /// The subject it records: shown to the membership the subject belongs
    /// to, never to a fleet owner whose device someone else claimed.
    pub subject_id: Option<Uuid>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Why the last message the device sent was dropped (for example an
    /// MQTT payload that is not JSON); null if none was.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [{"id": "01935c6e-0000-7000-8000-0000000000b1", "owner_membership_id": "01935c6e-0000-7000-8000-000000000002", "model_id": null, "serial": "CC2-000123", "status": "provisioned", "claimed": false, "subject_id": null, "last_seen_at": null, "created_at": "2026-11-21T10:00:00Z", "updated_at": "2026-11-21T10:00:00Z"}], "next_cursor": null}))]
pub struct DevicePage {
    pub items: Vec<Device>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "suspended"}))]
pub struct UpdateDeviceRequest {
    /// `active`, `suspended` or `retired` (final).
    pub status: DeviceStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"device_id": "01935c6e-0000-7000-8000-0000000000b1", "secret": "vf_dev_bmV3IHNlY3JldA..."}))]
pub struct RotatedSecret {
    pub device_id: Uuid,
    /// The new secret; the old one stopped working.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"claim_code": "K7QM-4XD2-9PWR", "subject_id": "01935c6e-0000-7000-8000-000000000004"}))]
pub struct ClaimRequest {
    /// As printed; case, spaces and dashes do not matter.
    #[schema(min_length = 1, max_length = 64)]
    pub claim_code: String,
    /// One of the caller's subjects.
    pub subject_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject_id": "01935c6e-0000-7000-8000-000000000009"}))]
pub struct AssignRequest {
    /// A subject of the device's owner (an enrollee).
    pub subject_id: Uuid,
}
