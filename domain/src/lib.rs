//! vitalfarm's pure domain: typed ids, validated values, roles and the rules
//! that decide what a member may do. No I/O, no async, no framework types, so
//! everything here is cheap to test exhaustively.

pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod chart;
pub mod cohort;
pub mod command;
pub mod consent;
pub mod datasets;
pub mod device;
pub mod ecg;
pub mod email;
pub mod farm_path;
pub mod fhir;
pub mod fhir_import;
pub mod ids;
pub mod mashups;
pub mod membership;
pub mod metrics;
pub mod norms;
pub mod oauth;
pub mod password;
pub mod subject;
pub mod validation;
pub mod vitals;
pub mod webhook;
pub mod zip;

pub use command::{CommandName, CommandStatus};
pub use device::DeviceStatus;
pub use email::Email;
pub use farm_path::FarmPath;
pub use ids::*;
pub use membership::{MembershipKind, Permission, Role};
pub use subject::{Sex, SubjectKind};
pub use validation::{FieldError, ValidationErrors};
