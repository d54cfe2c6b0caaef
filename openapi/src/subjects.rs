//! Subjects: the people whose health data is recorded.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use vitalfarm_domain::{Sex, SubjectKind};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01935c6e-0000-7000-8000-000000000004", "membership_id": "01935c6e-0000-7000-8000-000000000002", "kind": "dependent", "display_name": "Baby Ada", "birth_date": "2026-09-01", "sex": "female", "external_ref": null, "created_at": "2026-11-21T10:00:00Z", "updated_at": "2026-11-21T10:00:00Z"}))]
pub struct Subject {
    pub id: Uuid,
    pub membership_id: Uuid,
    pub kind: SubjectKind,
    pub display_name: String,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<Sex>,
    /// The subject's id in another system (a patient number, a study id).
    pub external_ref: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Kinds a client may create: `self` exists from sign-up.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NewSubjectKind {
    /// An individual's infant, child or elderly parent.
    Dependent,
    /// A person a company monitors.
    Enrollee,
}

impl From<NewSubjectKind> for SubjectKind {
    fn from(k: NewSubjectKind) -> Self {
        match k {
            NewSubjectKind::Dependent => SubjectKind::Dependent,
            NewSubjectKind::Enrollee => SubjectKind::Enrollee,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "dependent", "display_name": "Baby Ada", "birth_date": "2026-09-01", "sex": "female"}))]
pub struct CreateSubjectRequest {
    /// `dependent` in an individual's membership, `enrollee` in a company's.
    pub kind: NewSubjectKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub display_name: String,
    /// Not in the future, not before 1900.
    #[serde(default)]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    pub sex: Option<Sex>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub external_ref: Option<String>,
}

/// Changes to a subject: an absent field stays as it is, `null` clears it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"display_name": "Ada junior", "birth_date": "2026-09-02"}))]
pub struct UpdateSubjectRequest {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<NaiveDate>)]
    pub birth_date: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Sex>)]
    pub sex: Option<Option<Sex>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub external_ref: Option<Option<String>>,
}

/// Tells a `null` (`Some(None)`) from an absent field (`None`, the default).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(de: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [{"id": "01935c6e-0000-7000-8000-000000000004", "membership_id": "01935c6e-0000-7000-8000-000000000002", "kind": "self", "display_name": "Ada Lovelace", "birth_date": null, "sex": null, "external_ref": null, "created_at": "2026-11-21T10:00:00Z", "updated_at": "2026-11-21T10:00:00Z"}], "next_cursor": null}))]
pub struct SubjectPage {
    pub items: Vec<Subject>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tells_null_from_absent() {
        let p: UpdateSubjectRequest = serde_json::from_str(r#"{"birth_date": null}"#).unwrap();
        assert_eq!(p.birth_date, Some(None));
        assert_eq!(p.sex, None);
        let p: UpdateSubjectRequest = serde_json::from_str(r#"{"sex": "male"}"#).unwrap();
        assert_eq!(p.sex, Some(Some(Sex::Male)));
    }
}
