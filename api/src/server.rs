//! Building the application and running the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_http::error::DispatchError;
use actix_http::{HttpService, KeepAlive, Protocol};
use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::ServerHandle;
use actix_web::dev::{AppConfig, Extensions};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::rt::net::TcpStream;
use actix_web::{App, web};
use anyhow::Context;
use utoipa_swagger_ui::SwaggerUi;

use crate::parser_errors::ProblemHeads;
use crate::routes;
use crate::telemetry::{self};
use vitalfarm_app::config::Config;
use vitalfarm_app::state::AppState;
use vitalfarm_app::workers::Supervisor;

/// A server started in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub state: web::Data<AppState>,
    /// The MQTT broker front or external link, when MQTT is on; dropping it
    /// stops them.
    pub mqtt: Option<vitalfarm_app::mqtt::Mqtt>,
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
    let on_connect = crate::transfer::on_connect(&state.config);
    let on_connect = std::sync::Arc::new(on_connect);
    let builder = actix_server::Server::build();
    // Keep-alive connections close once their request in flight is
    // answered when the server stops gracefully, as actix-web's own
    // `HttpServer` arranges.
    let graceful = builder.graceful_shutdown_signal();
    let server = builder
        .workers(workers)
        .shutdown_timeout(state.config.shutdown_timeout_secs)
        // actix stops at once on SIGINT; Ctrl-C must be as graceful as
        // SIGTERM, so the signals are handled below instead.
        .disable_signals()
        .listen("vitalfarm-http", listener, move || {
            let app = App::new()
                .app_data(app_state.clone())
                .app_data(metrics.clone())
                .app_data(routes::ServedAt(addr))
                .app_data(web::PayloadConfig::new(crate::error::BYTES_BODY_LIMIT))
                .wrap(from_fn(crate::transfer::limit_request_body))
                .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
                .wrap(from_fn(crate::error::problem_bodies))
                .wrap(from_fn(telemetry::observe))
                .configure(|cfg| routes::all().register(cfg))
                .service(SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::new(["/openapi.json"])))
                .default_service(web::to(routes::not_found));
            let app = app.into_factory().map_err(|e| e.error_response());
            let graceful = graceful.clone();
            let on_connect = on_connect.clone();
            let http = HttpService::build()
                .graceful_shutdown_signal(move || {
                    let signal = graceful.clone();
                    async move { signal.notified().await }
                })
                .keep_alive(KeepAlive::default())
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(addr)
                .on_connect_ext(move |io: &ProblemHeads<TcpStream>, ext: &mut Extensions| {
                    on_connect(io.get_ref() as &dyn std::any::Any, ext)
                })
                // The bound address reaches handlers as `routes::ServedAt`;
                // actix-web's own config has no public constructor.
                .finish(map_config(app, |()| AppConfig::default()));
            // Every connection goes through `ProblemHeads`, so the parser's
            // own rejections leave with a problem document too.
            fn_service(|io: TcpStream| async move {
                let peer = io.peer_addr().ok();
                Ok::<_, DispatchError>((ProblemHeads::new(io), Protocol::Http1, peer))
            })
            .and_then(http)
        })?;
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    if install_signals {
        tokio::spawn(stop_on_signal(handle.clone()));
    }
    let workers = vitalfarm_app::workers::start_all(&state.clone().into_inner());
    let mqtt = vitalfarm_app::mqtt::start(state.clone().into_inner()).await?;
    Ok(Running {
        addr,
        handle,
        task,
        state,
        mqtt,
        workers,
    })
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

/// `vitalfarm serve`: runs until SIGINT/SIGTERM, then shuts down
/// gracefully ([`Running::finish`]) and returns.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init_logging(&config);
    let addr = config.bind_addr()?;
    tracing::info!(database = %config.database_url_redacted(), data_dir = %config.data_dir.display(), object_store = config.object_store_url.as_deref().unwrap_or("local"), "starting vitalfarm");
    let state = AppState::prepare(config).await?;
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let running = start(state, listener, true).await?;
    tracing::info!(addr = %running.addr, "vitalfarm listening; API reference at http://{}/docs", running.addr);
    running.finish().await?;
    tracing::info!("vitalfarm stopped");
    Ok(())
}
