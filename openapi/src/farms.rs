//! Farms: files, listings, moves and share links.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-000000000003", "membership_id": "01935c6e-0000-7000-8000-000000000002", "quota_bytes": 1073741824u64, "used_bytes": 52428800, "file_count": 12, "max_file_bytes": 1073741824u64, "encryption": "aes-256-gcm", "created_at": "2026-11-21T10:00:00Z"}))]
pub struct Farm {
    pub id: Uuid,
    pub membership_id: Uuid,
    pub quota_bytes: u64,
    /// Bytes the farm holds in storage, counted against `quota_bytes`: its
    /// files, uploads in progress (reserved when they start) and replaced
    /// or deleted files whose bytes are not removed yet.
    pub used_bytes: u64,
    pub file_count: u64,
    /// The largest file an upload may carry.
    pub max_file_bytes: u64,
    /// How the bytes are encrypted at rest: `aes-256-gcm` with a per-farm key.
    pub encryption: String,
    pub created_at: DateTime<Utc>,
}

/// A stored file's metadata.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"path": "/ecg/2026-11-21/lead1.csv", "size": 48213, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "etag": "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"", "version": 2, "content_type": "text/csv", "created_at": "2026-11-21T10:00:00Z", "updated_at": "2026-11-21T11:00:00Z"}))]
pub struct FileInfo {
    /// Canonical path: `/`-separated, NFC-normalised, starting with `/`.
    pub path: String,
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// The entity tag, for `If-Match` / `If-None-Match`.
    pub etag: String,
    /// 1 when created, +1 on each overwrite.
    pub version: u64,
    pub content_type: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Directory,
}

/// A file or a sub-directory in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListEntry {
    pub kind: EntryKind,
    /// For a directory, ends with `/`.
    pub path: String,
    /// Files only.
    pub size: Option<u64>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "prefix": "/ecg/",
    "items": [
        {"kind": "directory", "path": "/ecg/2026-11-20/", "size": null, "content_type": null, "etag": null, "updated_at": null},
        {"kind": "file", "path": "/ecg/summary.pdf", "size": 20480, "content_type": "application/pdf", "etag": "\"3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b\"", "updated_at": "2026-11-21T10:00:00Z"}
    ],
    "next_cursor": null,
    "consents": []
}))]
pub struct FileList {
    /// The directory listed, canonical (ends with `/`).
    pub prefix: String,
    pub items: Vec<ListEntry>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The consents that permitted listing another membership's farm
    /// (empty for one's own); only shared folders are shown.
    pub consents: Vec<uuid::Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "/inbox/report.pdf", "to": "/reports/2026/report.pdf"}))]
pub struct MoveRequest {
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^(?!.*//)(?!.*/$)(?!(?:.*/)?\.\.?(?:/|$))(?!.*[^/]{256})[^\u0000-\u001f\u007f-\u009f\\]+$"
    )]
    pub from: String,
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^(?!.*//)(?!.*/$)(?!(?:.*/)?\.\.?(?:/|$))(?!.*[^/]{256})[^\u0000-\u001f\u007f-\u009f\\]+$"
    )]
    pub to: String,
    /// Replace a file already at `to` (default: refuse with 409).
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"path": "/reports/2026/report.pdf", "expires_in": 86400}))]
pub struct CreateShareLinkRequest {
    /// The file to share.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^(?!.*//)(?!.*/$)(?!(?:.*/)?\.\.?(?:/|$))(?!.*[^/]{256})[^\u0000-\u001f\u007f-\u009f\\]+$"
    )]
    pub path: String,
    /// Seconds until the link stops working: 60 to 2592000 (30 days).
    #[serde(deserialize_with = "crate::serde_num::u32_lenient")]
    #[schema(minimum = 60, maximum = 2592000)]
    pub expires_in: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-000000000007", "path": "/reports/2026/report.pdf", "created_at": "2026-11-21T10:00:00Z", "expires_at": "2026-11-22T10:00:00Z", "revoked_at": null, "use_count": 3, "last_used_at": "2026-11-21T12:00:00Z"}))]
pub struct ShareLink {
    pub id: Uuid,
    /// The file's current path (a link follows its file through moves).
    pub path: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// How many times the link was used, served or refused.
    pub use_count: u64,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "link": {"id": "01935c6e-0000-7000-8000-000000000007", "path": "/reports/2026/report.pdf", "created_at": "2026-11-21T10:00:00Z", "expires_at": "2026-11-22T10:00:00Z", "revoked_at": null, "use_count": 0, "last_used_at": null},
    "url": "https://vitalfarm.example/v1/shared/vf_share_c2VjcmV0IHNoYXJlIHRva2Vu...",
    "expires_at": "2026-11-22T10:00:00Z"
}))]
pub struct CreatedShareLink {
    pub link: ShareLink,
    /// Download URL, usable without signing in until it expires or is
    /// revoked. Shown only now: vitalfarm stores only a hash of its token.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [{"id": "01935c6e-0000-7000-8000-000000000007", "path": "/reports/2026/report.pdf", "created_at": "2026-11-21T10:00:00Z", "expires_at": "2026-11-22T10:00:00Z", "revoked_at": null, "use_count": 3, "last_used_at": "2026-11-21T12:00:00Z"}], "next_cursor": null}))]
pub struct ShareLinkPage {
    pub items: Vec<ShareLink>,
    pub next_cursor: Option<String>,
}

/// One use of a share link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShareLinkUse {
    pub at: DateTime<Utc>,
    /// The address the download came from.
    pub client_ip: String,
    /// `served`, `expired`, `revoked`, or `busy` (refused: the link was serving
    /// its most downloads at once).
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [{"at": "2026-11-21T12:00:00Z", "client_ip": "203.0.113.7", "outcome": "served"}], "next_cursor": null}))]
pub struct ShareLinkUsePage {
    pub items: Vec<ShareLinkUse>,
    pub next_cursor: Option<String>,
}
