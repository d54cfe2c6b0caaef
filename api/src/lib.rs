//! vitalfarm's HTTP adapter. Handlers are thin: they parse (extractors),
//! call the application layer (`vitalfarm-app`) with the caller's
//! principal, and render its answers and errors (problem documents).
//! The OpenAPI document, telemetry middleware and the HTTP server live
//! here too.

pub mod apidoc;
pub mod error;
pub mod extract;
pub mod parser_errors;
pub mod receipts;
pub mod routes;
pub mod scopes;
pub mod server;
pub mod telemetry;
pub mod transfer;

pub use vitalfarm_app::install_crypto_provider;
