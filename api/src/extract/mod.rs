//! Extractors: turn a request into typed, validated values or a problem
//! naming what was wrong.

pub mod auth;
pub mod device;
pub mod json;
pub mod path;
pub mod query;

pub use auth::Auth;
pub use json::Json;
pub use path::PathAppId;
pub use path::PathExportId;
pub use path::PathWebhookId;
pub use path::{
    PathApiKeyId, PathCommandId, PathConsentId, PathConsentRequestId, PathDeviceId, PathFarmId, PathMembershipId,
    PathShareLinkId, PathSubjectId, PathUserId,
};
pub use query::{PageQuery, Query};
