//! Subjects: the people whose health data is recorded.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// The individual who owns the membership.
    #[serde(rename = "self")]
    Myself,
    /// Someone the individual cares for: an infant, an elderly parent.
    Dependent,
    /// A person a company monitors.
    Enrollee,
}

impl SubjectKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Myself => "self",
            Self::Dependent => "dependent",
            Self::Enrollee => "enrollee",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "self" => Some(Self::Myself),
            "dependent" => Some(Self::Dependent),
            "enrollee" => Some(Self::Enrollee),
            _ => None,
        }
    }
}

/// Administrative sex as recorded in FHIR (`Patient.gender`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Female => "female",
            Self::Male => "male",
            Self::Other => "other",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "female" => Some(Self::Female),
            "male" => Some(Self::Male),
            "other" => Some(Self::Other),
            "unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}
