//! What every handler can reach. Nothing in here is the only copy of any
//! state: the database holds it, so any number of API nodes can serve.

use std::sync::{Arc, OnceLock};

use vitalfarm_storage::Database;
use vitalfarm_storage::blobs::BlobStore;
use vitalfarm_storage::farm_crypto::MasterKey;

use crate::auth::jwt::JwtKeys;
use crate::config::Config;
use crate::mqtt::MqttLink;

pub struct AppState {
    pub config: Config,
    pub db: Database,
    pub jwt: Arc<JwtKeys>,
    pub blobs: BlobStore,
    pub master_key: Arc<MasterKey>,
    /// The coalescing writer every ingest path stores readings through.
    pub ingest: crate::ingest::Writer,
    /// vitalfarm's link to the MQTT broker, once it is up (none with MQTT off).
    pub mqtt: OnceLock<Arc<MqttLink>>,
    /// Wakes this node's job worker when a job is queued here.
    pub jobs_wake: Arc<tokio::sync::Notify>,
    /// This node's live-stream source (`GET /v1/memberships/{mid}/stream`).
    pub stream: crate::stream::Hub,
    /// Outgoing mail (SMTP, or the outbox directory).
    pub mail: Arc<crate::mail::Mailer>,
    /// This node's Prometheus metrics (`GET /metrics`), for counters kept
    /// outside HTTP requests (MQTT).
    pub metrics: crate::telemetry::Metrics,
    /// Failure injection for tests; never armed in production.
    #[doc(hidden)]
    pub faults: crate::faults::Faults,
}

impl AppState {
    pub fn mqtt_link(&self) -> Option<&Arc<MqttLink>> {
        self.mqtt.get()
    }
}
