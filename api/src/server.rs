//! Building the application and running the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use utoipa_swagger_ui::SwaggerUi;
use vitalfarm_domain::FarmId;
use vitalfarm_storage::Database;
use vitalfarm_storage::blobs::BlobStore;
use vitalfarm_storage::repo::{farms, rate_limits, refresh_tokens};

use crate::auth::jwt::JwtKeys;
use crate::config::Config;
use crate::farm_keys;
use crate::routes;
use crate::state::AppState;
use crate::telemetry::{self, Metrics};
use crate::workers::Supervisor;

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
    let blobs = BlobStore::from_url(config.object_store_url.as_deref(), &config.farm_dir())
        .map_err(|e| anyhow::anyhow!("invalid configuration: `object_store_url` (VITALFARM_OBJECT_STORE_URL): {e}"))?;
    let master_key = farm_keys::load_or_generate_master(&config.master_key_path())?;
    let ingest = crate::ingest::Writer::start(
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
        metrics: Metrics::new()?,
        faults: Default::default(),
    })
}

/// A server started in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub state: web::Data<AppState>,
    /// The MQTT broker front or external link, when MQTT is on; dropping it
    /// stops them.
    pub mqtt: Option<crate::mqtt::Mqtt>,
    /// The background loops.
    pub workers: Supervisor,
}

impl Running {
    /// Stops gracefully, as on SIGTERM: see [`Running::finish`].
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        self.finish().await
    }

    /// Waits for the HTTP server to stop (on a signal or a `stop` through
    /// the handle; in-flight requests finish within
    /// `shutdown_timeout_secs`), then, each within that deadline again:
    /// MQTT stops taking messages and acknowledges the ones it stored, the
    /// ingest writer stores what is queued and answers its waiters, and the
    /// background workers finish their round.
    pub async fn finish(self) -> anyhow::Result<()> {
        let served = self.task.await;
        // One deadline for everything after HTTP, so the process is gone
        // within twice `shutdown_timeout_secs` at worst.
        let until = tokio::time::Instant::now() + Duration::from_secs(self.state.config.shutdown_timeout_secs);
        let left = || until.saturating_duration_since(tokio::time::Instant::now());
        if let Some(mqtt) = self.mqtt {
            mqtt.shutdown(left()).await;
        }
        self.state.ingest.drain(left()).await;
        let abandoned = self.workers.shutdown(left()).await;
        if !abandoned.is_empty() {
            tracing::warn!(?abandoned, "background workers abandoned at shutdown");
        }
        served.context("the HTTP server task failed")??;
        Ok(())
    }
}

/// Binds `listener` and serves the API on it until stopped.
pub async fn start(state: AppState, listener: TcpListener, install_signals: bool) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let workers = state
        .config
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let state = web::Data::new(state);
    let metrics = web::Data::new(state.metrics.clone());
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(metrics.clone())
            .app_data(web::PayloadConfig::new(crate::error::BYTES_BODY_LIMIT))
            .wrap(from_fn(crate::transfer::limit_request_body))
            .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
            .wrap(from_fn(crate::error::problem_bodies))
            .wrap(from_fn(telemetry::observe))
            .configure(|cfg| routes::all().register(cfg))
            .service(SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::new(["/openapi.json"])))
            .default_service(web::to(routes::not_found))
    })
    .on_connect(crate::transfer::on_connect(&state.config))
    .workers(workers)
    .shutdown_timeout(state.config.shutdown_timeout_secs)
    // actix stops at once on SIGINT; Ctrl-C must be as graceful as SIGTERM,
    // so the signals are handled below instead.
    .disable_signals()
    .listen(listener)?;
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    if install_signals {
        tokio::spawn(stop_on_signal(handle.clone()));
    }
    let workers = start_workers(&state);
    let mqtt = crate::mqtt::start(state.clone()).await?;
    Ok(Running {
        addr,
        handle,
        task,
        state,
        mqtt,
        workers,
    })
}

/// Starts every background loop under one supervisor.
fn start_workers(state: &web::Data<AppState>) -> Supervisor {
    let mut workers = Supervisor::new();
    let db = state.db.clone();
    workers.spawn("janitor", move |stop| janitor(db.clone(), stop));
    let s = state.clone();
    workers.spawn("blob-sweeper", move |stop| sweeper(s.clone(), stop));
    let s = state.clone();
    workers.spawn("command-expirer", move |stop| expirer(s.clone(), stop));
    if !state.config.no_jobs {
        let s = state.clone();
        workers.spawn("jobs", move |stop| crate::jobs::worker(s.clone(), stop));
    }
    let s = state.clone();
    workers.spawn("export-sweeper", move |stop| crate::jobs::export_sweeper(s.clone(), stop));
    let s = state.clone();
    workers.spawn("webhooks", move |stop| crate::webhooks::run(s.clone(), stop));
    let s = state.clone();
    workers.spawn("alert-due", move |stop| crate::alerts::due_loop(s.clone(), stop));
    workers
}

/// Stops the HTTP server gracefully on SIGTERM or Ctrl-C (SIGINT).
async fn stop_on_signal(handle: ServerHandle) {
    let terminate = async {
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = terminate => tracing::info!("SIGTERM: shutting down"),
        r = tokio::signal::ctrl_c() => match r {
            Ok(()) => tracing::info!("interrupted: shutting down"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                return;
            }
        },
    }
    handle.stop(true).await;
}

/// Deletes expired refresh tokens and stale rate-limit counters every ten
/// minutes. Deletes are idempotent, so every node may run it.
async fn janitor(db: Database, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    while crate::workers::tick(&stop, &mut tick).await {
        if let Err(e) = refresh_tokens::purge_expired(&db).await {
            tracing::warn!(error = %e, "purging expired refresh tokens failed");
        }
        if let Err(e) = rate_limits::purge_stale(&db, chrono::Duration::days(1)).await {
            tracing::warn!(error = %e, "purging rate-limit counters failed");
        }
        // Networks accounts signed in from are known for 90 days.
        if let Err(e) = rate_limits::purge_remembered(&db, chrono::Duration::days(90)).await {
            tracing::warn!(error = %e, "purging known sign-in networks failed");
        }
        if let Err(e) = vitalfarm_storage::repo::oauth::purge_stale(&db).await {
            tracing::warn!(error = %e, "purging stale OAuth codes, tokens and grants failed");
        }
        if let Err(e) = vitalfarm_storage::repo::email_tokens::purge_expired(&db).await {
            tracing::warn!(error = %e, "purging expired email tokens failed");
        }
    }
}

/// Marks commands past their expiry as expired, every few seconds, so a
/// device that comes back late is not sent stale commands. Idempotent.
async fn expirer(state: web::Data<AppState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    while crate::workers::tick(&stop, &mut tick).await {
        if let Err(e) = crate::commands::expire_due(&state).await {
            tracing::warn!(error = format!("{e:#}"), "expiring commands failed");
        }
    }
}

/// Removes the objects of replaced and deleted files and of uploads that
/// died, on an interval. Claims are conditional deletes, so nodes running it
/// at once never remove the same blob twice nor one that went live.
async fn sweeper(state: web::Data<AppState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(state.config.sweep_interval_secs));
    while crate::workers::tick(&stop, &mut tick).await {
        if let Err(e) = sweep_blobs(&state).await {
            tracing::warn!(error = format!("{e:#}"), "sweeping farm blobs failed");
        }
        // An erasure's scrub that did not finish (a busy database, a crash)
        // is retried here, so it is done within one interval of the cause
        // going away.
        if let Err(e) = crate::erasure::scrub(&state.db).await {
            tracing::warn!(error = %e, "scrubbing the database after an erasure failed");
        }
    }
}

/// One sweep; returns how many blobs were removed.
pub async fn sweep_blobs(state: &AppState) -> anyhow::Result<usize> {
    let grace = chrono::Duration::seconds(i64::try_from(state.config.orphan_grace_secs).unwrap_or(i64::MAX / 1000));
    let cutoff = chrono::Utc::now() - grace;
    // Uploads a crash cut short leave staging files that no row names (the
    // rows of their blobs go below, but only the finished object's key);
    // found by listing the store itself.
    let staging_cutoff = std::time::SystemTime::from(cutoff);
    let mut removed = state.blobs.sweep_staging(staging_cutoff).await?;
    loop {
        let batch = farms::sweepable_blobs(&state.db, cutoff, 500).await?;
        if batch.is_empty() {
            return Ok(removed);
        }
        let mut claimed_any = false;
        for blob in &batch {
            if farms::claim_for_sweep(&state.db, blob, cutoff).await? {
                claimed_any = true;
                state.blobs.delete(FarmId::from_uuid(blob.farm_id), blob.id).await?;
                removed += 1;
            }
        }
        if !claimed_any {
            return Ok(removed);
        }
    }
}

/// `vitalfarm serve`: runs until SIGINT/SIGTERM, then shuts down
/// gracefully ([`Running::finish`]) and returns.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init_logging(&config);
    let addr = config.bind_addr()?;
    tracing::info!(database = %config.database_url_redacted(), data_dir = %config.data_dir.display(), object_store = config.object_store_url.as_deref().unwrap_or("local"), "starting vitalfarm");
    let state = prepare(config).await?;
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let running = start(state, listener, true).await?;
    tracing::info!(addr = %running.addr, "vitalfarm listening; API reference at http://{}/docs", running.addr);
    running.finish().await?;
    tracing::info!("vitalfarm stopped");
    Ok(())
}
