//! Repositories: the queries vitalfarm runs, grouped by resource. Functions
//! that touch a tenant's rows take its `MembershipId` first.

pub mod accounts;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod cohort;
pub mod commands;
pub mod consents;
pub mod devices;
pub mod email_tokens;
pub mod erasure;
pub mod events;
pub mod farms;
pub mod jobs;
pub mod members;
pub mod mqtt_sessions;
pub mod oauth;
pub mod preview;
pub mod rate_limits;
pub mod readings;
pub mod refresh_tokens;
pub mod share_links;
pub mod stream;
pub mod subjects;
pub mod webhooks;
