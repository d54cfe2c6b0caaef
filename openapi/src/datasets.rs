//! Public reference datasets: the list and one dataset with its records.
//! The records' types live in `vitalfarm_domain::datasets`, where the rules
//! that use them are.

use serde::Serialize;
use utoipa::ToSchema;
use vitalfarm_domain::datasets::{Meta, Records, Source};

/// A dataset as listed by `GET /v1/public-datasets`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "name": "blood-pressure-categories",
    "title": "Blood pressure categories for adults (ACC/AHA 2017)",
    "description": "The five categories of office blood pressure in adults defined by the 2017 ACC/AHA high blood pressure guideline, with their systolic and diastolic thresholds in mm Hg.",
    "version": "2017.1",
    "sources": [{
        "id": "acc-aha-2017",
        "title": "2017 ACC/AHA/AAPA/ABC/ACPM/AGS/APhA/ASH/ASPC/NMA/PCNA Guideline for the Prevention, Detection, Evaluation, and Management of High Blood Pressure in Adults",
        "publisher": "American College of Cardiology / American Heart Association",
        "year": 2017,
        "citation": "Whelton PK, Carey RM, Aronow WS, et al. Hypertension. 2018;71(6):e13-e115. doi:10.1161/HYP.0000000000000065",
        "url": "https://doi.org/10.1161/HYP.0000000000000065",
        "licence": "Only the numeric thresholds are reproduced, with this citation."
    }],
    "record_count": 5
}))]
pub struct DatasetSummary {
    /// Identifier used in `GET /v1/public-datasets/{name}`.
    pub name: String,
    pub title: String,
    pub description: String,
    pub version: String,
    /// Where the values come from.
    pub sources: Vec<Source>,
    pub record_count: usize,
}

impl DatasetSummary {
    pub fn new(meta: &Meta, record_count: usize) -> Self {
        Self {
            name: meta.name.clone(),
            title: meta.title.clone(),
            description: meta.description.clone(),
            version: meta.version.clone(),
            sources: meta.sources.clone(),
            record_count,
        }
    }
}

/// `GET /v1/public-datasets`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"items": [{
    "name": "temperature-thresholds",
    "title": "Body-temperature thresholds: fever, fever under 3 months, hypothermia",
    "description": "Body temperature classes in degrees Celsius.",
    "version": "2021.1",
    "sources": [{"id": "nice-ng143", "title": "Fever in under 5s: assessment and initial management (NG143)", "publisher": "National Institute for Health and Care Excellence", "year": 2019, "citation": "NICE guideline NG143.", "url": "https://www.nice.org.uk/guidance/ng143", "licence": "Only the thresholds are reproduced, with this citation."}],
    "record_count": 4
}]}))]
pub struct DatasetList {
    pub items: Vec<DatasetSummary>,
}

/// `GET /v1/public-datasets/{name}`: the description, how to read the
/// records, and the records themselves. Their shape depends on the dataset:
/// blood-pressure categories, vital-sign ranges or temperature rules.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "name": "temperature-thresholds",
    "title": "Body-temperature thresholds: fever, fever under 3 months, hypothermia",
    "description": "Body temperature classes in degrees Celsius.",
    "version": "2021.1",
    "sources": [{"id": "erc-2021", "title": "European Resuscitation Council Guidelines 2021: Cardiac arrest in special circumstances", "publisher": "European Resuscitation Council", "year": 2021, "citation": "Lott C, et al. Resuscitation. 2021;161:152-219.", "url": "https://doi.org/10.1016/j.resuscitation.2021.02.011", "licence": "Only the threshold is reproduced, with this citation."}],
    "record_count": 1,
    "notes": "Rules are evaluated in order; the first that matches the temperature and age is the class.",
    "records": [{"class": "hypothermia", "label": "Hypothermia", "celsius": {"lt": 35.0}, "age_from_days": null, "age_to_days": null, "source": "erc-2021", "published": "core temperature < 35 C"}]
}))]
pub struct DatasetDetail {
    pub name: String,
    pub title: String,
    pub description: String,
    pub version: String,
    pub sources: Vec<Source>,
    pub record_count: usize,
    /// How to read the records, and which source was chosen where sources
    /// differ.
    pub notes: String,
    pub records: Records,
}

impl DatasetDetail {
    pub fn new(meta: &Meta, records: Records) -> Self {
        Self {
            name: meta.name.clone(),
            title: meta.title.clone(),
            description: meta.description.clone(),
            version: meta.version.clone(),
            sources: meta.sources.clone(),
            record_count: records.len(),
            notes: meta.notes.clone(),
            records,
        }
    }
}
