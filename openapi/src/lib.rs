//! vitalfarm's public contract as code: the request and response types of the
//! HTTP API (never the storage entities), the problem document, and the parts
//! of the OpenAPI document that do not depend on the handlers (info, tags,
//! security schemes, standard problem responses).
//!
//! The committed `openapi.json` beside this crate is what `vitalfarm openapi`
//! generates; a test keeps the two equal.

pub mod accounts;
pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod cohort;
pub mod commands;
pub mod consents;
pub mod datasets;
pub mod devices;
pub mod doc;
pub mod ecg;
pub mod exports;
pub mod farms;
pub mod fhir;
pub mod health;
pub mod imports;
pub mod mashups;
pub mod members;
pub mod oauth;
pub mod problem;
pub mod readings;
pub mod serde_num;
pub mod stream;
pub mod subjects;
pub mod webhooks;

pub use doc::{TAGS, finalize};
pub use problem::{FieldError, Problem, ProblemKind};

/// The committed spec, as a string, for tests that compare it with the code.
pub const COMMITTED_SPEC: &str = include_str!("../openapi.json");
