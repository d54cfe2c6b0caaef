//! Imports of outside records: a hospital's FHIR R4 Bundle.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How many observations became readings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportedReadings {
    /// Readings stored by this import.
    pub imported: u64,
    /// Readings already stored (an earlier import of the same data).
    pub duplicates: u64,
}

/// A resource kept as a file in the membership's farm.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportedDocument {
    /// The farm path, e.g. `/hospital/2026-11-22/Condition-c1.json`.
    pub path: String,
    pub resource_type: String,
}

/// An entry of the bundle that was not used, and why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RejectedEntry {
    /// Its position in the bundle's `entry` array.
    pub entry: usize,
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The FHIR element at fault, e.g. `effectiveDateTime`.
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"subject_id": "0193a5e2-7c1d-7b61-9d3e-5a1f0c2b4d6e", "readings": {"imported": 5, "duplicates": 0},
    "documents": [{"path": "/hospital/2026-11-22/Condition-c1.json", "resource_type": "Condition"}],
    "rejected": [{"entry": 7, "resource_type": "Observation", "id": "o7", "field": "effectiveDateTime", "reason": "the observation has no effective time"}]}))]
pub struct FhirImportResponse {
    pub subject_id: Uuid,
    pub readings: ImportedReadings,
    pub documents: Vec<ImportedDocument>,
    pub rejected: Vec<RejectedEntry>,
}
