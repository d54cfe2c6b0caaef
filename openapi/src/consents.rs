//! Consent-based sharing: requests, consents and what has been shared with
//! a company.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use vitalfarm_domain::SubjectKind;
use vitalfarm_domain::consent::{Access, Purpose};

/// Why the data is shared (FHIR Consent `provision.purpose`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsentPurpose {
    /// Care of the person (a care service, a doctor).
    Care,
    /// A service the person uses (a device maker's app).
    Service,
    Research,
    Emergency,
}

impl From<ConsentPurpose> for Purpose {
    fn from(p: ConsentPurpose) -> Self {
        match p {
            ConsentPurpose::Care => Purpose::Care,
            ConsentPurpose::Service => Purpose::Service,
            ConsentPurpose::Research => Purpose::Research,
            ConsentPurpose::Emergency => Purpose::Emergency,
        }
    }
}

impl From<Purpose> for ConsentPurpose {
    fn from(p: Purpose) -> Self {
        match p {
            Purpose::Care => ConsentPurpose::Care,
            Purpose::Service => ConsentPurpose::Service,
            Purpose::Research => ConsentPurpose::Research,
            Purpose::Emergency => ConsentPurpose::Emergency,
        }
    }
}

/// What the grantee may do: read through the API, or also include the data
/// in its own exports.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsentAccess {
    Read,
    ReadExport,
}

impl From<ConsentAccess> for Access {
    fn from(a: ConsentAccess) -> Self {
        match a {
            ConsentAccess::Read => Access::Read,
            ConsentAccess::ReadExport => Access::ReadExport,
        }
    }
}

impl From<Access> for ConsentAccess {
    fn from(a: Access) -> Self {
        match a {
            Access::Read => ConsentAccess::Read,
            Access::ReadExport => ConsentAccess::ReadExport,
        }
    }
}

/// A consent's state now.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// `valid_from` is still ahead.
    Pending,
    Active,
    /// Past `valid_until`.
    Expired,
    /// Revoked by the grantor; final.
    Revoked,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "01935c6e-0000-7000-8000-0000000000c1",
    "grantor_membership_id": "01935c6e-0000-7000-8000-000000000002",
    "grantor_name": "Ada's family",
    "grantor_farm_id": "01935c6e-0000-7000-8000-000000000003",
    "grantee_membership_id": "01935c6e-0000-7000-8000-000000000012",
    "grantee_name": "Acme Care",
    "subject_ids": ["01935c6e-0000-7000-8000-000000000004"],
    "metrics": ["heart_rate"],
    "farm_paths": ["/ecg/"],
    "purpose": "care",
    "access": "read",
    "valid_from": "2026-11-21T10:00:00Z",
    "valid_until": "2026-12-21T10:00:00Z",
    "data_from": "2026-11-01T00:00:00Z",
    "data_until": null,
    "status": "active",
    "request_id": "01935c6e-0000-7000-8000-0000000000b1",
    "created_at": "2026-11-21T10:00:00Z",
    "revoked_at": null
}))]
pub struct Consent {
    pub id: Uuid,
    /// The individual's membership whose data is shared.
    pub grantor_membership_id: Uuid,
    pub grantor_name: String,
    /// The grantor's farm, where shared `farm_paths` are read.
    pub grantor_farm_id: Option<Uuid>,
    /// The company membership the data is shared with.
    pub grantee_membership_id: Uuid,
    pub grantee_name: String,
    pub subject_ids: Vec<Uuid>,
    /// Metric codes whose readings are shared.
    pub metrics: Vec<String>,
    /// Folders of the grantor's farm that are shared (`/ecg/`).
    pub farm_paths: Vec<String>,
    pub purpose: ConsentPurpose,
    pub access: ConsentAccess,
    /// Access is allowed from this time…
    pub valid_from: Option<DateTime<Utc>>,
    /// …until this time.
    pub valid_until: Option<DateTime<Utc>>,
    /// Only readings measured from this time are shared…
    pub data_from: Option<DateTime<Utc>>,
    /// …and before this time.
    pub data_until: Option<DateTime<Utc>>,
    pub status: ConsentStatus,
    /// The request this consent approved, if any.
    pub request_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [], "next_cursor": null}))]
pub struct ConsentPage {
    pub items: Vec<Consent>,
    pub next_cursor: Option<String>,
}

/// An individual grants a company access directly.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "grantee_membership_id": "01935c6e-0000-7000-8000-000000000012",
    "subject_ids": ["01935c6e-0000-7000-8000-000000000004"],
    "metrics": ["heart_rate", "spo2"],
    "farm_paths": [],
    "purpose": "care",
    "access": "read",
    "expires_at": "2026-12-21T10:00:00Z"
}))]
pub struct GrantConsentRequest {
    /// The company membership to share with.
    pub grantee_membership_id: Uuid,
    /// Subjects of one of the caller's individual memberships.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub subject_ids: Vec<Uuid>,
    /// Metric codes from `GET /v1/metrics`.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub metrics: Vec<String>,
    /// Folders of the grantor's farm (`/ecg/`; `/` is the whole farm).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub farm_paths: Vec<String>,
    pub purpose: ConsentPurpose,
    pub access: ConsentAccess,
    /// When access ends; at most ten years ahead.
    pub expires_at: DateTime<Utc>,
    /// When access starts (default: now).
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// Share only readings measured from this time.
    #[serde(default)]
    pub data_from: Option<DateTime<Utc>>,
    /// Share only readings measured before this time.
    #[serde(default)]
    pub data_until: Option<DateTime<Utc>>,
}

/// A company asks an individual for access.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "individual_email": "ada@example.com",
    "metrics": ["heart_rate"],
    "farm_paths": [],
    "purpose": "care",
    "access": "read",
    "duration": "P30D",
    "note": "Night-time heart rate monitoring for the first month."
}))]
pub struct CreateConsentRequest {
    /// The requesting company membership; needed only when the caller is
    /// a member of more than one company.
    #[serde(default)]
    pub membership_id: Option<Uuid>,
    /// The individual's sign-in email. The request is made whether or not
    /// the address has an account yet, so it reveals nothing.
    #[schema(max_length = 254)]
    pub individual_email: String,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub metrics: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub farm_paths: Vec<String>,
    pub purpose: ConsentPurpose,
    pub access: ConsentAccess,
    /// How long access lasts once approved, as an ISO 8601 duration in
    /// days, weeks or hours: `P30D`, `P2W`, `PT12H`; at most ten years.
    #[schema(pattern = r"^P(\d+[DW]|T\d+H)$", example = "P30D")]
    pub duration: String,
    #[serde(default)]
    pub data_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub data_until: Option<DateTime<Utc>>,
    /// Shown to the individual.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsentRequestStatus {
    Pending,
    Approved,
    Denied,
    /// Not decided within 30 days.
    Expired,
}

/// Whether the caller received or sent a request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RequestDirection {
    Incoming,
    Outgoing,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "01935c6e-0000-7000-8000-0000000000b1",
    "direction": "incoming",
    "requester_membership_id": "01935c6e-0000-7000-8000-000000000012",
    "requester_name": "Acme Care",
    "individual_email": "ada@example.com",
    "metrics": ["heart_rate"],
    "farm_paths": [],
    "purpose": "care",
    "access": "read",
    "duration": "P30D",
    "data_from": null,
    "data_until": null,
    "note": "Night-time heart rate monitoring for the first month.",
    "status": "pending",
    "consent_id": null,
    "created_at": "2026-11-21T10:00:00Z",
    "expires_at": "2026-12-21T10:00:00Z",
    "decided_at": null
}))]
pub struct ConsentRequestView {
    pub id: Uuid,
    pub direction: RequestDirection,
    pub requester_membership_id: Uuid,
    pub requester_name: String,
    pub individual_email: String,
    pub metrics: Vec<String>,
    pub farm_paths: Vec<String>,
    pub purpose: ConsentPurpose,
    pub access: ConsentAccess,
    pub duration: String,
    pub data_from: Option<DateTime<Utc>>,
    pub data_until: Option<DateTime<Utc>>,
    pub note: Option<String>,
    pub status: ConsentRequestStatus,
    /// The consent an approval created.
    pub consent_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// An undecided request lapses at this time.
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [], "next_cursor": null}))]
pub struct ConsentRequestPage {
    pub items: Vec<ConsentRequestView>,
    pub next_cursor: Option<String>,
}

/// The individual approves, choosing which of their subjects it covers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject_ids": ["01935c6e-0000-7000-8000-000000000004"]}))]
pub struct ApproveConsentRequest {
    /// Subjects of one of the caller's individual memberships.
    #[schema(min_items = 1, max_items = 100)]
    pub subject_ids: Vec<Uuid>,
}

/// A subject shared with the caller's company.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedSubject {
    pub id: Uuid,
    pub kind: SubjectKind,
    pub display_name: String,
}

/// One active consent given to the caller's company, with what it covers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "consent_id": "01935c6e-0000-7000-8000-0000000000c1",
    "grantee_membership_id": "01935c6e-0000-7000-8000-000000000012",
    "grantor_membership_id": "01935c6e-0000-7000-8000-000000000002",
    "grantor_name": "Ada's family",
    "grantor_farm_id": "01935c6e-0000-7000-8000-000000000003",
    "subjects": [{"id": "01935c6e-0000-7000-8000-000000000004", "kind": "dependent", "display_name": "Baby Ada"}],
    "metrics": ["heart_rate"],
    "farm_paths": [],
    "purpose": "care",
    "access": "read",
    "valid_until": "2026-12-21T10:00:00Z",
    "data_from": null,
    "data_until": null,
    "status": "active"
}))]
pub struct SharedItem {
    pub consent_id: Uuid,
    pub grantee_membership_id: Uuid,
    pub grantor_membership_id: Uuid,
    pub grantor_name: String,
    pub grantor_farm_id: Option<Uuid>,
    pub subjects: Vec<SharedSubject>,
    pub metrics: Vec<String>,
    pub farm_paths: Vec<String>,
    pub purpose: ConsentPurpose,
    pub access: ConsentAccess,
    pub valid_until: Option<DateTime<Utc>>,
    pub data_from: Option<DateTime<Utc>>,
    pub data_until: Option<DateTime<Utc>>,
    /// `active`, or `pending` when `valid_from` is still ahead.
    pub status: ConsentStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": []}))]
pub struct SharedWithMe {
    pub items: Vec<SharedItem>,
}

/// What the company would see under a consent request's scope if the
/// individual approved it now: computed from the individual's stored data
/// exactly as the consent would let the company read it (the requested
/// metrics, folders and data period), for the subjects chosen.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "request_id": "01935c6e-0000-7000-8000-0000000000a1",
    "membership_id": "01935c6e-0000-7000-8000-000000000002",
    "data_from": "2026-11-01T00:00:00Z",
    "data_until": null,
    "subjects": [{
        "subject_id": "01935c6e-0000-7000-8000-000000000004",
        "display_name": "Baby Ada",
        "metrics": [{
            "metric": "heart_rate",
            "unit": "/min",
            "count": 1440,
            "first": "2026-11-01T00:00:12Z",
            "last": "2026-11-21T07:59:40Z",
            "sample": [
                {"ts": "2026-11-01T00:00:12Z", "value": 128.0, "components": null},
                {"ts": "2026-11-21T07:59:40Z", "value": 131.5, "components": null}
            ]
        }]
    }],
    "farm_paths": [{"path": "/ecg/", "files": 12, "bytes": 48213}]
}))]
pub struct ConsentPreview {
    pub request_id: Uuid,
    /// The individual membership whose data the preview shows (the one the
    /// consent would be given from).
    pub membership_id: Uuid,
    /// The start of the data period the request asks for, as the consent
    /// would apply it: readings measured before it are not counted. `null`:
    /// open.
    pub data_from: Option<DateTime<Utc>>,
    /// The end of the data period (exclusive): readings measured from it on
    /// are not counted. `null`: open.
    pub data_until: Option<DateTime<Utc>>,
    /// One item per subject previewed, each with every metric previewed
    /// (also those without readings).
    pub subjects: Vec<PreviewSubject>,
    /// One item per folder previewed.
    pub farm_paths: Vec<PreviewFolder>,
}

/// One subject's readings the company would see.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PreviewSubject {
    pub subject_id: Uuid,
    pub display_name: String,
    pub metrics: Vec<PreviewMetric>,
}

/// One metric of one subject in the data period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PreviewMetric {
    pub metric: String,
    /// The canonical unit of the values.
    pub unit: String,
    /// Readings the company could read now (a blood pressure with its two
    /// components is one reading).
    pub count: u64,
    /// The earliest measurement time; `null` without readings.
    pub first: Option<DateTime<Utc>>,
    /// The latest measurement time; `null` without readings.
    pub last: Option<DateTime<Utc>>,
    /// Up to five readings spread evenly from the first to the last.
    #[schema(max_items = 5)]
    pub sample: Vec<PreviewValue>,
}

/// One sampled reading.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PreviewValue {
    /// Measurement time.
    pub ts: DateTime<Utc>,
    /// For single-valued metrics.
    pub value: Option<f64>,
    /// For metrics with components (blood pressure: systolic, diastolic).
    pub components: Option<BTreeMap<String, f64>>,
}

/// The files the company could read under one requested folder.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PreviewFolder {
    /// The folder, as the request names it (`/ecg/`).
    pub path: String,
    /// Files under it, at any depth.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
}
