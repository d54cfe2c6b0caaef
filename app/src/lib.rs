//! vitalfarm's application layer, between the HTTP adapter (`vitalfarm-api`)
//! and storage. It owns the service state, configuration, who is calling
//! (`principal`), the authorization and consent decisions (`authz`,
//! `sharing`), the use cases, the mapping of rows to public types
//! (`views`), the background workers and MQTT. Nothing here knows about
//! HTTP: every entry point (HTTP, MQTT, background jobs) calls the same
//! functions with the same principal.

pub mod admin;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod commands;
pub mod config;
pub mod consents;
pub mod erasure;
pub mod error;
pub mod events;
pub mod export;
pub mod farm_keys;
pub mod faults;
pub mod jobs;
pub mod mail;
pub mod mashups;
pub mod mqtt;
pub mod preview;
pub mod principal;
pub mod readings;
pub mod sharing;
pub mod state;
pub mod stream;
pub mod telemetry;
pub mod views;
pub mod webhooks;
pub mod workers;

pub use error::{AppError, AppResult};
pub use principal::Principal;
pub use state::AppState;

/// Selects the process-wide TLS crypto provider. Two providers are linked
/// (ring through sqlx, aws-lc through jsonwebtoken); rustls refuses to guess.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
