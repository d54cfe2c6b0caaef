//! vitalfarm's HTTP API and the `vitalfarm` binary's commands. Handlers are
//! thin: they parse (extractors), ask the decision point (`authz`), call
//! storage, and map results to the public types of `vitalfarm-openapi`.

pub mod alerts;
pub mod apidoc;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod consents;
pub mod demo;
pub mod erasure;
pub mod error;
pub mod events;
pub mod export;
pub mod extract;
pub mod farm_keys;
pub mod faults;
pub mod ingest;
pub mod jobs;
pub mod mail;
pub mod mashups;
pub mod mqtt;
pub mod routes;
pub mod scopes;
pub mod server;
pub mod sharing;
pub mod simulate;
pub mod state;
pub mod stream;
pub mod telemetry;
pub mod transfer;
pub mod webhooks;
pub mod workers;

/// Selects the process-wide TLS crypto provider. Two providers are linked
/// (ring through sqlx, aws-lc through jsonwebtoken); rustls refuses to guess.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
