//! What every handler can reach. Nothing in here is the only copy of any
//! state: the database holds it, so any number of API nodes can serve.

use std::sync::{Arc, OnceLock};

use anyhow::Context;

use vitalfarm_storage::Database;
use vitalfarm_storage::blobs::BlobStore;
use vitalfarm_storage::farm_crypto::MasterKey;

use crate::auth::jwt::JwtKeys;
use crate::config::Config;
use crate::farm_keys;
use crate::mqtt::link::MqttLink;

pub struct AppState {
    pub config: Config,
    pub db: Database,
    pub jwt: Arc<JwtKeys>,
    pub blobs: BlobStore,
    pub master_key: Arc<MasterKey>,
    /// The coalescing writer every ingest path stores readings through.
    pub ingest: crate::readings::writer::Writer,
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
    /// Creates the data directory, connects to the database, brings the schema
    /// up to date, loads (or creates) the signing and master keys and opens the
    /// object store.
    pub async fn prepare(config: Config) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let db = Database::connect(&config.database_url())
            .await
            .with_context(|| format!("connecting to {}", config.database_url_redacted()))?;
        db.migrate().await.context("applying migrations")?;
        let jwt = JwtKeys::load_or_generate(&config.jwt_key_path(), config.issuer(), config.access_token_ttl_secs)?;
        let blobs = BlobStore::from_url(config.object_store_url.as_deref(), &config.farm_dir()).map_err(|e| {
            anyhow::anyhow!("invalid configuration: `object_store_url` (VITALFARM_OBJECT_STORE_URL): {e}")
        })?;
        let master_key = farm_keys::load_or_generate_master(&config.master_key_path())?;
        let ingest = crate::readings::writer::Writer::start(
            db.clone(),
            config.ingest_writers,
            config.ingest_queue,
            config.ingest_batch_rows,
        );
        let stream = crate::stream::Hub::new(db.clone());
        let mail = Arc::new(crate::mail::Mailer::from_config(&config)?);
        Ok(AppState {
            config,
            db,
            jwt: Arc::new(jwt),
            blobs,
            master_key: Arc::new(master_key),
            ingest,
            mqtt: std::sync::OnceLock::new(),
            jobs_wake: Arc::new(tokio::sync::Notify::new()),
            stream,
            mail,
            metrics: crate::telemetry::Metrics::new()?,
            faults: Default::default(),
        })
    }

    pub fn mqtt_link(&self) -> Option<&Arc<MqttLink>> {
        self.mqtt.get()
    }
}
