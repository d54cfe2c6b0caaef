//! Exports (everything a membership holds, as one ZIP built in the
//! background) and erasure of a membership.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    /// Waiting for a worker.
    Queued,
    /// Being built.
    Running,
    /// Ready to download until `expires_at`.
    Succeeded,
    /// Gave up; see `error`.
    Failed,
    /// Was ready; past `expires_at` the archive is deleted (download: 410).
    Expired,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "01935c6e-0000-7000-8000-0000000000e1",
    "membership_id": "01935c6e-0000-7000-8000-000000000002",
    "status": "succeeded",
    "attempts": 1,
    "created_at": "2026-11-22T10:00:00Z",
    "finished_at": "2026-11-22T10:00:42Z",
    "expires_at": "2026-11-29T10:00:42Z",
    "size": 48213,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "counts": {"subjects": 3, "devices": 2, "readings": 5120, "files": 4, "file_bytes": 40960},
    "error": null,
    "download_url": "/v1/memberships/01935c6e-0000-7000-8000-000000000002/exports/01935c6e-0000-7000-8000-0000000000e1/download"
}))]
pub struct Export {
    pub id: Uuid,
    pub membership_id: Uuid,
    pub status: ExportStatus,
    /// Times a worker has started it (at most 3).
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    /// When it succeeded or failed.
    pub finished_at: Option<DateTime<Utc>>,
    /// Until when the archive can be downloaded.
    pub expires_at: Option<DateTime<Utc>>,
    /// Size of the ZIP in bytes.
    pub size: Option<u64>,
    /// Hex SHA-256 of the ZIP.
    pub sha256: Option<String>,
    /// What the archive holds: `subjects`, `devices`, `readings`, `files`,
    /// `file_bytes`.
    pub counts: Option<BTreeMap<String, u64>>,
    pub error: Option<String>,
    /// Where to download the archive, while it can be.
    pub download_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [{"id": "01935c6e-0000-7000-8000-0000000000e1", "membership_id": "01935c6e-0000-7000-8000-000000000002", "status": "queued", "attempts": 0, "created_at": "2026-11-22T10:00:00Z", "finished_at": null, "expires_at": null, "size": null, "sha256": null, "counts": null, "error": null, "download_url": null}],
    "next_cursor": null
}))]
pub struct ExportPage {
    /// Newest first.
    pub items: Vec<Export>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"password": "correct horse battery staple", "confirm": "Acme Care"}))]
pub struct EraseMembershipRequest {
    /// The signed-in owner's password, again.
    #[schema(max_length = 1024)]
    pub password: String,
    /// The membership's name, exactly, so that no membership is erased by
    /// a slip of the id.
    #[schema(max_length = 200)]
    pub confirm: String,
}
