//! The FHIR R4 view of a subject's readings, as the reference documents it.
//! The handler builds the JSON itself (`vitalfarm_domain::fhir`); these
//! types only describe its outer shape, since the resources inside follow
//! the FHIR R4 specification rather than this API's conventions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A link of a search bundle: `self`, and `next` while there are more pages.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FhirBundleLink {
    /// `self` or `next`.
    #[schema(example = "next")]
    pub relation: String,
    pub url: String,
}

/// One resource of the bundle.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FhirBundleEntry {
    /// `urn:uuid:` and the resource's id.
    pub full_url: String,
    /// A FHIR R4 `Patient` (the subject, first) or `Observation`.
    #[schema(value_type = Object)]
    pub resource: serde_json::Value,
    /// `{"mode": "include"}` for the patient, `{"mode": "match"}` for an
    /// observation.
    #[schema(value_type = Object)]
    pub search: serde_json::Value,
}

/// A FHIR R4 `Bundle` of type `searchset`: the subject as a `Patient`, then
/// one `Observation` per reading in time order (vital-signs, laboratory or
/// activity category; LOINC codes; UCUM units; blood pressure as the panel
/// 85354-9 with systolic and diastolic components). Observation ids are
/// stable: the same reading has the same id in every bundle and export.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "resourceType": "Bundle",
    "type": "searchset",
    "timestamp": "2026-11-21T09:00:00Z",
    "total": 2,
    "link": [
        {"relation": "self", "url": "https://api.vitalfarm.example/v1/subjects/0193a3c4-1f2e-7c4d-9a8b-0c1d2e3f4a5b/fhir?_count=1"},
        {"relation": "next", "url": "https://api.vitalfarm.example/v1/subjects/0193a3c4-1f2e-7c4d-9a8b-0c1d2e3f4a5b/fhir?_count=1&cursor=MTc5NTI0ODAwMDAwMCBibG9vZF9wcmVzc3VyZSA"}
    ],
    "entry": [
        {
            "fullUrl": "urn:uuid:0193a3c4-1f2e-7c4d-9a8b-0c1d2e3f4a5b",
            "resource": {"resourceType": "Patient", "id": "0193a3c4-1f2e-7c4d-9a8b-0c1d2e3f4a5b", "name": [{"text": "Ada Example"}], "gender": "female", "birthDate": "1950-02-03"},
            "search": {"mode": "include"}
        },
        {
            "fullUrl": "urn:uuid:6f1c2b7e-9d0a-5e3f-8a4b-1c2d3e4f5a6b",
            "resource": {
                "resourceType": "Observation",
                "id": "6f1c2b7e-9d0a-5e3f-8a4b-1c2d3e4f5a6b",
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}], "text": "Vital Signs"}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure"}], "text": "Blood pressure"},
                "subject": {"reference": "Patient/0193a3c4-1f2e-7c4d-9a8b-0c1d2e3f4a5b", "display": "Ada Example"},
                "effectiveDateTime": "2026-11-21T08:00:00Z",
                "component": [
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}], "text": "Systolic blood pressure"},
                     "valueQuantity": {"value": 128.0, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}], "text": "Diastolic blood pressure"},
                     "valueQuantity": {"value": 84.0, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
                ],
                "device": {"identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0193a3c4-2a2b-7c4d-9a8b-0c1d2e3f4a5c"}, "display": "Device 0193a3c4-2a2b-7c4d-9a8b-0c1d2e3f4a5c"}
            },
            "search": {"mode": "match"}
        }
    ]
}))]
pub struct FhirBundle {
    /// Always `Bundle`.
    pub resource_type: String,
    /// Always `searchset`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the bundle was assembled.
    pub timestamp: String,
    /// Observations matching the search over all pages.
    pub total: u64,
    pub link: Vec<FhirBundleLink>,
    pub entry: Vec<FhirBundleEntry>,
}
