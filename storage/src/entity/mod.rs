//! sea-orm entities, one module a table. They are storage's own types: the
//! public API never serialises them directly (see `vitalfarm-openapi`).

pub mod alert;
pub mod alert_due;
pub mod alert_rule;
pub mod api_key;
pub mod audit_event;
pub mod audit_head;
pub mod consent;
pub mod consent_request;
pub mod device;
pub mod device_command;
pub mod device_model;
pub mod email_token;
pub mod erasure_scrub;
pub mod event;
pub mod farm;
pub mod farm_blob;
pub mod farm_file;
pub mod invitation;
pub mod job;
pub mod member_role;
pub mod membership;
pub mod oauth_app;
pub mod oauth_code;
pub mod oauth_grant;
pub mod oauth_refresh_token;
pub mod rate_limit;
pub mod reading;
pub mod refresh_token;
pub mod share_link;
pub mod share_link_use;
pub mod subject;
pub mod user;
pub mod webhook;
pub mod webhook_delivery;
