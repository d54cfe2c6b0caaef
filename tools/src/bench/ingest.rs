//! `vitalfarm bench ingest`: readings written over HTTP batches and over
//! MQTT, and the 24-hour one-subject query on a store filled to a chosen
//! size, each beside the same run's baseline: PostgreSQL's own `COPY` into
//! a table of the readings' shape, and the broker's bare publish→subscribe.
//!
//! Everything runs in this one process (server, clients, loaders) against
//! a scratch database, so the figures are of the whole path on this
//! machine; request bodies, messages and `COPY` text are built before each
//! measurement starts, so that none of them is the cost of making input.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::HeaderValue;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::Barrier;
use uuid::Uuid;
use vitalfarm_domain::{DeviceId, MembershipId, SubjectId};
use vitalfarm_openapi::readings::{AggregateResponse, IngestResponse, ReadingPage};
use vitalfarm_storage::repo::readings::{self, NewRow};
use vitalfarm_storage::{Database, DatabaseKind, bulk};

use super::{Scratch, percentile_ms};
use crate::simulate::{self, Fleet, Owner};
use vitalfarm_api::server;
use vitalfarm_app::config::Config;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
/// The metrics the store is filled with, one reading per minute each:
/// code, canonical unit, a plausible base value.
const FILL_METRICS: [(&str, &str, f64); 4] = [
    ("heart_rate", "/min", 70.0),
    ("spo2", "%", 97.0),
    ("respiratory_rate", "/min", 15.0),
    ("body_temperature", "Cel", 36.8),
];
/// Rows per `COPY` (or insert batch) while filling.
const FILL_CHUNK: usize = 200_000;
/// Queries run before the measured ones, to warm the caches the measured
/// ones then find warm, as a running service's would be.
const WARMUP_QUERIES: usize = 20;
/// Unacknowledged messages per MQTT device.
const DEVICE_INFLIGHT: u16 = 16;
/// Publishers in the broker baseline (one subscriber takes them all).
const PUBLISHERS: usize = 8;

// `vitalfarm bench ingest`: clap reads the field doc comments as its help.
#[derive(Debug, clap::Args)]
pub struct IngestBench {
    /// A PostgreSQL server (`postgres://user@host:5432/postgres`): the
    /// bench creates a scratch database there and drops it afterwards.
    /// Without it: SQLite in a scratch directory.
    #[arg(long, value_name = "URL", env = "VITALFARM_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// An external MQTT broker (`mqtt://host:1883`); without it, the
    /// embedded one.
    #[arg(long, value_name = "URL")]
    pub mqtt_url: Option<String>,
    /// Devices in the fleet, each bound to its own subject.
    #[arg(long, default_value_t = 100)]
    pub devices: usize,
    #[arg(long, default_value_t = 500_000)]
    pub http_readings: usize,
    /// Readings per request (at most 5,000).
    #[arg(long, default_value_t = 5000)]
    pub http_batch: usize,
    /// Concurrent HTTP connections.
    #[arg(long, default_value_t = 4)]
    pub http_clients: usize,
    #[arg(long, default_value_t = 500_000)]
    pub mqtt_readings: usize,
    /// Readings per MQTT message.
    #[arg(long, default_value_t = 10)]
    pub mqtt_batch: usize,
    /// Writer tasks (the `ingest_writers` setting); default: the
    /// service's default.
    #[arg(long)]
    pub writers: Option<usize>,
    /// Readings in the store when the queries run (the bench adds
    /// filler, four metrics a minute per subject, to reach it).
    #[arg(long, default_value_t = 2_000_000)]
    pub store: u64,
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Keep the scratch PostgreSQL database.
    #[arg(long)]
    pub keep: bool,
    /// Where the scratch directory goes (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Throughput and latency of one measured phase.
struct Rate {
    readings: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Rate {
    fn per_second(&self) -> f64 {
        self.readings as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Latencies of one kind of query.
struct QueryFigures {
    rows_per_query: f64,
    latencies: Vec<Duration>,
}

struct Figures {
    server: String,
    broker: String,
    copy: Option<Rate>,
    http: Rate,
    broker_bare: Rate,
    broker_dropped: u64,
    mqtt: Rate,
    mqtt_latency_is_commit: bool,
    fill: Option<Rate>,
    store: u64,
    raw: QueryFigures,
    aggregate: QueryFigures,
}

fn validate(opts: &IngestBench) -> anyhow::Result<()> {
    ensure!(opts.devices >= 1, "--devices must be at least 1");
    ensure!(
        (1..=vitalfarm_app::readings::MAX_BATCH).contains(&opts.http_batch),
        "--http-batch must be 1 to {}",
        vitalfarm_app::readings::MAX_BATCH
    );
    ensure!(opts.http_clients >= 1, "--http-clients must be at least 1");
    ensure!(opts.mqtt_batch >= 1, "--mqtt-batch must be at least 1");
    ensure!(opts.http_readings >= 1, "--http-readings must be at least 1");
    ensure!(opts.mqtt_readings >= 1, "--mqtt-readings must be at least 1");
    ensure!(opts.queries >= 1, "--queries must be at least 1");
    if let Some(url) = &opts.database_url {
        ensure!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "--database-url must be a PostgreSQL server (postgres://…); without it the bench uses SQLite"
        );
    }
    Ok(())
}

/// Runs the benchmark and returns its report.
pub async fn ingest(opts: IngestBench) -> anyhow::Result<String> {
    validate(&opts)?;
    let scratch = Scratch::create(opts.dir.as_deref(), opts.database_url.as_deref()).await?;
    let tag = scratch.tag.clone();
    let config = Config {
        data_dir: scratch.data_dir(),
        database_url: scratch.database_url(),
        mqtt_url: opts.mqtt_url.clone(),
        bind: "127.0.0.1:0".into(),
        mqtt_bind: "127.0.0.1:0".into(),
        // Its own session at an external broker, beside any other
        // vitalfarm there.
        mqtt_client_id: format!("vitalfarm-bench-{tag}"),
        log_level: "warn".into(),
        ingest_writers: opts.writers.unwrap_or(Config::default().ingest_writers),
        ..Config::default()
    };
    let result = run(&opts, config, &tag).await;
    scratch.finish(opts.keep).await;
    Ok(report(&opts, result?))
}

/// Progress goes to stderr; the figures to stdout.
macro_rules! progress {
    ($($arg:tt)*) => { eprintln!("bench ingest: {}", format_args!($($arg)*)) };
}

async fn run(opts: &IngestBench, config: Config, tag: &str) -> anyhow::Result<Figures> {
    let state = vitalfarm_app::AppState::prepare(config).await?;
    let running = server::start(state, TcpListener::bind("127.0.0.1:0")?, false).await?;
    let db = running.state.db.clone();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.http_clients)
        .build()?;

    let owner = Owner {
        email: format!("bench-{tag}@example.com"),
        password: vitalfarm_app::auth::secrets::generate("bench_")?,
    };
    call_ok(client.post(format!("{base}/v1/auth/signup")).json(&serde_json::json!({
        "email": owner.email, "password": owner.password, "display_name": "Bench",
        "membership": {"kind": "company", "name": format!("Bench {tag}")}
    })))
    .await
    .context("signing up")?;
    progress!("provisioning {} devices", opts.devices);
    let fleet = simulate::provision_fleet(&client, &base, opts.devices, Some(&owner), 1).await?;
    let now_ms = Utc::now().timestamp_millis();
    // Disjoint time ranges: HTTP in the last day, MQTT the day before, the
    // filler before both, so that no phase sees another's readings as
    // duplicates and the queries read filler only.
    let http_start = now_ms - DAY_MS;
    let mqtt_start = now_ms - 2 * DAY_MS;
    let fill_end = now_ms - 3 * DAY_MS;

    let copy = if db.kind() == DatabaseKind::Postgres {
        progress!("baseline: COPY of {} rows", opts.http_readings);
        Some(copy_baseline(&db, &fleet, opts.http_readings, http_start, tag).await?)
    } else {
        None
    };
    progress!("HTTP ingest of {} readings", opts.http_readings);
    let http = http_ingest(opts, &client, &base, &fleet, http_start).await?;

    let broker_target = match (&opts.mqtt_url, running.mqtt.as_ref().and_then(|m| m.front_addr)) {
        (Some(url), _) => BrokerTarget::External(url.clone()),
        (None, Some(front)) => BrokerTarget::Embedded(front),
        (None, None) => bail!("MQTT did not start"),
    };
    let messages = mqtt_messages(&fleet, opts.mqtt_readings, opts.mqtt_batch, mqtt_start)?;
    progress!("baseline: bare publish→subscribe of {} messages", count(&messages));
    let (broker_bare, broker_dropped) = broker_baseline(&broker_target, &messages, opts.mqtt_batch, tag).await?;
    progress!("MQTT ingest of {} readings", opts.mqtt_readings);
    let mqtt = mqtt_ingest(&broker_target, &db, &fleet, messages, opts, mqtt_start).await?;

    let stored = http.readings + mqtt.readings;
    let fill = if opts.store > stored {
        progress!("filling the store to {} readings", opts.store);
        Some(fill_store(&db, &fleet, opts.store - stored, fill_end).await?)
    } else {
        None
    };
    bulk::settle(&db).await?;
    // The window the queries pick days from: the filler, or the HTTP day
    // when nothing was filled.
    let window = match &fill {
        Some(f) => (fill_end - fill_minutes(f.readings, opts.devices) * MINUTE_MS, fill_end),
        None => (http_start, now_ms),
    };
    // The owner's token may have expired during a long fill.
    let token = login(&client, &base, &owner).await?;
    progress!("{} queries of 24 hours", opts.queries);
    let (raw, aggregate) = queries(&client, &base, &token, &fleet, window, opts.queries).await?;

    let figures = Figures {
        server: bulk::server_version(&db).await?,
        broker: broker_target.describe(),
        copy,
        http,
        broker_bare,
        broker_dropped,
        mqtt,
        mqtt_latency_is_commit: matches!(broker_target, BrokerTarget::Embedded(_)),
        fill,
        store: opts.store.max(stored),
        raw,
        aggregate,
    };
    running.handle.stop(true).await;
    drop(running.mqtt);
    db.close().await?;
    Ok(figures)
}

async fn call_ok(req: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
    let resp = req.send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

async fn login(client: &reqwest::Client, base: &str, owner: &Owner) -> anyhow::Result<String> {
    let tokens = call_ok(
        client
            .post(format!("{base}/v1/auth/login"))
            .json(&serde_json::json!({"email": owner.email, "password": owner.password})),
    )
    .await
    .context("logging in")?;
    Ok(tokens["access_token"].as_str().context("no access token")?.to_owned())
}

fn rfc3339(ms: i64) -> anyhow::Result<String> {
    let t = DateTime::<Utc>::from_timestamp_millis(ms).with_context(|| format!("time {ms} out of range"))?;
    Ok(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The `k`-th heart rate of a device: a value that moves like one.
fn heart_rate(k: usize) -> f64 {
    55.0 + ((k * 7) % 50) as f64
}

/// The `k`-th reading of a device in a phase starting at `start`: one a
/// second.
fn reading_text(k: usize, start: i64) -> anyhow::Result<String> {
    Ok(format!(
        r#"{{"metric":"heart_rate","ts":"{}","value":{},"unit":"/min"}}"#,
        rfc3339(start + k as i64 * 1000)?,
        heart_rate(k)
    ))
}

/// A prepared request body or message.
struct Batch {
    device: usize,
    readings: usize,
    body: bytes::Bytes,
}

/// `total` readings as batches of up to `batch`, dealt to the devices in
/// turn.
fn batches(devices: usize, total: usize, batch: usize, start: i64) -> anyhow::Result<Vec<Batch>> {
    let mut next_k = vec![0usize; devices];
    let mut out = Vec::with_capacity(total.div_ceil(batch));
    let mut left = total;
    let mut i = 0;
    while left > 0 {
        let d = i % devices;
        let n = batch.min(left);
        let items: Vec<String> = (next_k[d]..next_k[d] + n)
            .map(|k| reading_text(k, start))
            .collect::<anyhow::Result<_>>()?;
        next_k[d] += n;
        left -= n;
        out.push(Batch {
            device: d,
            readings: n,
            body: bytes::Bytes::from(format!(r#"{{"readings":[{}]}}"#, items.join(","))),
        });
        i += 1;
    }
    Ok(out)
}

/// The rows the HTTP phase stores, as `COPY` text, timed into a fresh
/// table of the readings' shape (same columns, constraints and indexes).
async fn copy_baseline(db: &Database, fleet: &Fleet, total: usize, start: i64, tag: &str) -> anyhow::Result<Rate> {
    let n = fleet.devices.len();
    let rows: Vec<NewRow> = (0..total)
        .map(|i| {
            let device = &fleet.devices[i % n];
            let k = i / n;
            NewRow {
                membership_id: MembershipId::from_uuid(fleet.membership_id),
                subject_id: SubjectId::from_uuid(device.subject_id),
                device_id: Some(DeviceId::from_uuid(device.id)),
                metric: "heart_rate",
                component: "",
                ts_ms: start + k as i64 * 1000,
                value: heart_rate(k),
                unit: "/min",
                source: "device",
                seq: None,
            }
        })
        .collect();
    let text = bulk::copy_text(&rows, Utc::now());
    let table = format!("bench_copy_{tag}");
    bulk::create_readings_copy(db, &table).await?;
    let t = Instant::now();
    let copied = bulk::copy_in(db, &table, &text).await;
    let elapsed = t.elapsed();
    bulk::drop_table(db, &table).await?;
    Ok(Rate {
        readings: copied?,
        elapsed,
        latencies: Vec::new(),
    })
}

fn device_credential(fleet: &Fleet, index: usize) -> anyhow::Result<HeaderValue> {
    let d = &fleet.devices[index];
    Ok(HeaderValue::from_str(&format!("Device {}:{}", d.id, d.secret))?)
}

/// `http_clients` connections posting the prepared batches as fast as the
/// server answers; latency is per request.
async fn http_ingest(
    opts: &IngestBench,
    client: &reqwest::Client,
    base: &str,
    fleet: &Fleet,
    start: i64,
) -> anyhow::Result<Rate> {
    let credentials: Vec<HeaderValue> = (0..fleet.devices.len())
        .map(|i| device_credential(fleet, i))
        .collect::<anyhow::Result<_>>()?;
    let url = format!("{base}/v1/ingest/readings");
    // Warm-up: connections open and every device looked up once, with
    // readings before the phase's range.
    for (i, credential) in credentials.iter().enumerate() {
        let body = format!(r#"{{"readings":[{}]}}"#, reading_text(0, start - 60_000)?);
        post_batch(client, &url, credential, body.into())
            .await
            .with_context(|| format!("warm-up of device {i}"))?;
    }
    let bodies = Arc::new(batches(
        fleet.devices.len(),
        opts.http_readings,
        opts.http_batch,
        start,
    )?);
    let next = Arc::new(AtomicUsize::new(0));
    let credentials = Arc::new(credentials);
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..opts.http_clients {
        let (client, url, bodies, next, credentials) = (
            client.clone(),
            url.clone(),
            bodies.clone(),
            next.clone(),
            credentials.clone(),
        );
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut accepted = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = bodies.get(i) else {
                    break;
                };
                let sent = Instant::now();
                let answer = post_batch(&client, &url, &credentials[batch.device], batch.body.clone()).await?;
                latencies.push(sent.elapsed());
                ensure!(
                    answer.duplicates == 0 && answer.rejected.is_empty(),
                    "batch {i}: {} duplicates, {} rejected",
                    answer.duplicates,
                    answer.rejected.len()
                );
                accepted += answer.accepted;
            }
            anyhow::Ok((accepted, latencies))
        });
    }
    let mut rate = Rate {
        readings: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(done) = tasks.join_next().await {
        let (accepted, latencies) = done??;
        rate.readings += accepted;
        rate.latencies.extend(latencies);
    }
    rate.elapsed = t.elapsed();
    ensure!(
        rate.readings == opts.http_readings as u64,
        "{} of {} readings stored",
        rate.readings,
        opts.http_readings
    );
    Ok(rate)
}

async fn post_batch(
    client: &reqwest::Client,
    url: &str,
    credential: &HeaderValue,
    body: bytes::Bytes,
) -> anyhow::Result<IngestResponse> {
    let resp = client
        .post(url)
        .header(reqwest::header::AUTHORIZATION, credential.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    if !status.is_success() {
        bail!("ingest answered {status}: {}", resp.text().await.unwrap_or_default());
    }
    Ok(resp.json().await?)
}

enum BrokerTarget {
    /// The front of the embedded broker (devices log in there).
    Embedded(std::net::SocketAddr),
    External(String),
}

impl BrokerTarget {
    fn describe(&self) -> String {
        match self {
            BrokerTarget::Embedded(_) => "embedded rumqttd behind vitalfarm's front".into(),
            BrokerTarget::External(url) => format!("external broker at {}", redact(url)),
        }
    }

    /// Where devices connect.
    fn device_endpoint(&self) -> anyhow::Result<(String, u16)> {
        match self {
            BrokerTarget::Embedded(addr) => Ok((addr.ip().to_string(), addr.port())),
            BrokerTarget::External(url) => {
                let parsed = reqwest::Url::parse(url).context("--mqtt-url")?;
                let host = parsed.host_str().context("--mqtt-url has no host")?.to_owned();
                Ok((host, parsed.port().unwrap_or(1883)))
            }
        }
    }
}

fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparsable URL)".into(),
    }
}

/// One device's messages, each a batch of `batch` readings.
struct DeviceMessages {
    device: usize,
    payloads: Vec<Vec<u8>>,
    readings: u64,
}

fn count(messages: &[DeviceMessages]) -> usize {
    messages.iter().map(|m| m.payloads.len()).sum()
}

fn mqtt_messages(fleet: &Fleet, total: usize, batch: usize, start: i64) -> anyhow::Result<Vec<DeviceMessages>> {
    let n = fleet.devices.len();
    let mut out: Vec<DeviceMessages> = (0..n)
        .map(|device| DeviceMessages {
            device,
            payloads: Vec::new(),
            readings: 0,
        })
        .collect();
    for b in batches(n, total, batch, start)? {
        out[b.device].readings += b.readings as u64;
        out[b.device].payloads.push(b.body.to_vec());
    }
    out.retain(|m| !m.payloads.is_empty());
    Ok(out)
}

/// Polls until `packet` comes in, for at most 10 s. A refused connection
/// is retried: a broker just started may not listen yet.
async fn wait_for(eventloop: &mut EventLoop, packet: impl Fn(&Packet) -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline.into(), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(p))) if packet(&p) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) if Instant::now() + Duration::from_millis(100) < deadline => {
                tracing::debug!(error = %e, "bench MQTT client retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Err(e)) => bail!("MQTT: {e}"),
            Err(_) => bail!("MQTT: no answer within 10 s"),
        }
    }
}

/// Publishes `payloads` at QoS 1 as fast as the session's in-flight window
/// allows; returns each message's latency from the moment it is written to
/// the connection to its PUBACK (time waiting for a free in-flight slot is
/// the client's, not the path's).
async fn publish_all(
    client: AsyncClient,
    mut eventloop: EventLoop,
    topic: String,
    payloads: Vec<Vec<u8>>,
    go: Arc<Barrier>,
) -> anyhow::Result<Vec<Duration>> {
    // Connected before the clock starts.
    wait_for(&mut eventloop, |p| matches!(p, Packet::ConnAck(_))).await?;
    go.wait().await;
    let total = payloads.len();
    let publisher = {
        let client = client.clone();
        tokio::spawn(async move {
            for p in payloads {
                client.publish(topic.clone(), QoS::AtLeastOnce, false, p).await?;
            }
            anyhow::Ok(())
        })
    };
    let mut by_pkid: HashMap<u16, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(total);
    while latencies.len() < total {
        match eventloop.poll().await? {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                by_pkid.insert(pkid, Instant::now());
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(at) = by_pkid.remove(&ack.pkid) {
                    latencies.push(at.elapsed());
                }
            }
            _ => {}
        }
    }
    publisher.await??;
    client.disconnect().await?;
    // Drive the disconnect out.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while !matches!(
            eventloop.poll().await,
            Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_)
        ) {}
    })
    .await;
    Ok(latencies)
}

/// Every device publishes its share at once; the phase ends when every
/// reading is stored (with the embedded broker a PUBACK means exactly
/// that; with an external one the store is polled as well).
async fn mqtt_ingest(
    target: &BrokerTarget,
    db: &Database,
    fleet: &Fleet,
    messages: Vec<DeviceMessages>,
    opts: &IngestBench,
    start: i64,
) -> anyhow::Result<Rate> {
    let (host, port) = target.device_endpoint()?;
    let go = Arc::new(Barrier::new(messages.len() + 1));
    let total: u64 = messages.iter().map(|m| m.readings).sum();
    let mut tasks = tokio::task::JoinSet::new();
    for m in messages {
        let device = &fleet.devices[m.device];
        let id = device.id.to_string();
        let mut options = MqttOptions::new(id.clone(), host.clone(), port);
        options
            .set_credentials(id.clone(), device.secret.clone())
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(1 << 20, 1 << 20)
            // A device's window of unacknowledged messages: large enough
            // to keep the pipe full, small enough that the latency is of
            // the path rather than of a queue 100 messages deep.
            .set_inflight(DEVICE_INFLIGHT);
        let (client, eventloop) = AsyncClient::new(options, 64);
        let topic = format!("vitalfarm/v1/devices/{id}/readings");
        tasks.spawn(publish_all(client, eventloop, topic, m.payloads, go.clone()));
    }
    tokio::time::timeout(Duration::from_secs(30), go.wait())
        .await
        .context("devices did not connect within 30 s")?;
    let t = Instant::now();
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let subjects: Vec<Uuid> = fleet.devices.iter().map(|d| d.subject_id).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let end = start + (opts.mqtt_readings as i64 + 1) * 1000;
    loop {
        let stored = readings::count_in(db, &subjects, "heart_rate", start, end).await?;
        if stored >= total {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{stored} of {total} MQTT readings stored after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Rate {
        readings: total,
        elapsed: t.elapsed(),
        latencies,
    })
}

/// The broker alone: publishers send the MQTT phase's messages (same
/// count, same payloads) at QoS 1 to a topic one subscriber takes at QoS 1.
/// Returns the rate in readings (messages × batch) and how many messages
/// the broker dropped (Mosquitto drops past its queue limit).
async fn broker_baseline(
    target: &BrokerTarget,
    messages: &[DeviceMessages],
    batch: usize,
    tag: &str,
) -> anyhow::Result<(Rate, u64)> {
    let login: Box<dyn Fn(&str) -> MqttOptions + Send + Sync> = match target {
        BrokerTarget::Embedded(_) => {
            // A fresh rumqttd configured as the embedded one (the one the
            // server runs takes only its own front and link), but with
            // segments that hold the whole run: vitalfarm's own subscribers
            // (devices' commands) carry a few small messages, this one
            // carries everything and would otherwise lose what it lags.
            let bytes: usize = messages.iter().flat_map(|m| m.payloads.iter()).map(Vec::len).sum();
            let internal = vitalfarm_app::mqtt::embedded::start_broker(
                (bytes / 2).max(vitalfarm_app::mqtt::embedded::SEGMENT_BYTES),
            )?;
            let login = move |client_id: &str| {
                let mut o = MqttOptions::new(client_id, internal.addr.ip().to_string(), internal.addr.port());
                o.set_credentials(client_id, internal.token.clone());
                o
            };
            Box::new(login)
        }
        BrokerTarget::External(url) => {
            let url = url.clone();
            let login = move |client_id: &str| {
                vitalfarm_app::mqtt::external::options(&url, client_id)
                    .unwrap_or_else(|_| MqttOptions::new(client_id, "127.0.0.1", 1883))
            };
            Box::new(login)
        }
    };
    let options = |client_id: &str| {
        let mut o = login(client_id);
        // The service's link acknowledges by hand after a commit; here
        // rumqttc acknowledges on receipt.
        o.set_clean_session(true)
            .set_manual_acks(false)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(1 << 20, 1 << 20);
        o
    };
    let publishers = messages.len().min(PUBLISHERS);
    let mut shares: Vec<Vec<Vec<u8>>> = vec![Vec::new(); publishers];
    for (i, p) in messages.iter().flat_map(|m| m.payloads.iter()).enumerate() {
        shares[i % publishers].push(p.clone());
    }
    let expected: usize = shares.iter().map(Vec::len).sum();
    let prefix = format!("vitalfarm/bench/{tag}");

    // The subscriber, subscribed before anything is published.
    let (sub, mut sub_loop) = AsyncClient::new(options(&format!("bench-sub-{tag}")), 1024);
    sub.subscribe(format!("{prefix}/#"), QoS::AtLeastOnce).await?;
    wait_for(&mut sub_loop, |p| matches!(p, Packet::SubAck(_))).await?;

    let go = Arc::new(Barrier::new(publishers + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for (p, share) in shares.into_iter().enumerate() {
        let (client, eventloop) = AsyncClient::new(options(&format!("bench-pub-{tag}-{p}")), 64);
        tasks.spawn(publish_all(
            client,
            eventloop,
            format!("{prefix}/{p}"),
            share,
            go.clone(),
        ));
    }
    tokio::time::timeout(Duration::from_secs(30), go.wait())
        .await
        .context("publishers did not connect within 30 s")?;
    let t = Instant::now();
    // The subscriber polls in a task of its own: an event loop must not be
    // dropped mid-poll. After the publishers are done, a quiet second
    // means the broker dropped the rest.
    let publishers_done = Arc::new(tokio::sync::Notify::new());
    let subscriber = {
        let done = publishers_done.clone();
        tokio::spawn(async move {
            let mut received = 0usize;
            let mut last = t;
            let mut quiet = Duration::from_secs(60);
            let notified = done.notified();
            tokio::pin!(notified);
            while received < expected {
                tokio::select! {
                    event = tokio::time::timeout(quiet, sub_loop.poll()) => match event {
                        Ok(Ok(Event::Incoming(Packet::Publish(_)))) => {
                            received += 1;
                            last = Instant::now();
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => bail!("subscriber: {e}"),
                        Err(_) => break,
                    },
                    () = &mut notified, if quiet > Duration::from_secs(1) => quiet = Duration::from_secs(1),
                }
            }
            anyhow::Ok((received, last, sub_loop))
        })
    };
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    publishers_done.notify_one();
    let (received, last, mut sub_loop) = subscriber.await??;
    let _ = sub.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), sub_loop.poll()).await;
    Ok((
        Rate {
            readings: (received * batch) as u64,
            elapsed: last - t,
            latencies: Vec::new(),
        },
        (expected - received) as u64,
    ))
}

/// Minutes of filler for `rows` rows over `devices` subjects.
fn fill_minutes(rows: u64, devices: usize) -> i64 {
    let per_minute = (devices * FILL_METRICS.len()) as u64;
    i64::try_from(rows.div_ceil(per_minute)).unwrap_or(i64::MAX)
}

/// Adds `rows` readings ending at `end`: every subject, every filler
/// metric, one a minute, in time order as a live fleet would have written
/// them (so one subject's day is spread over the table as it would be).
async fn fill_store(db: &Database, fleet: &Fleet, rows: u64, end: i64) -> anyhow::Result<Rate> {
    let minutes = fill_minutes(rows, fleet.devices.len());
    let start = end - minutes * MINUTE_MS;
    let t = Instant::now();
    let mut written = 0u64;
    let mut chunk = Vec::with_capacity(FILL_CHUNK);
    let mut last_report = Instant::now();
    'fill: for m in 0..minutes {
        for (d, device) in fleet.devices.iter().enumerate() {
            for (j, (metric, unit, base)) in FILL_METRICS.iter().enumerate() {
                if written + chunk.len() as u64 >= rows {
                    break 'fill;
                }
                // A slow daily rhythm, different per subject and metric.
                let phase = ((m as usize + d * 37 + j * 11) % 1440) as f64 / 1440.0;
                chunk.push(NewRow {
                    membership_id: MembershipId::from_uuid(fleet.membership_id),
                    subject_id: SubjectId::from_uuid(device.subject_id),
                    device_id: Some(DeviceId::from_uuid(device.id)),
                    metric,
                    component: "",
                    ts_ms: start + m * MINUTE_MS,
                    value: base * (1.0 + 0.05 * (phase * std::f64::consts::TAU).sin()),
                    unit,
                    source: "device",
                    seq: None,
                });
                if chunk.len() == FILL_CHUNK {
                    written += bulk::fill(db, std::mem::take(&mut chunk)).await?;
                    if last_report.elapsed() > Duration::from_secs(10) {
                        progress!("filled {written} of {rows}");
                        last_report = Instant::now();
                    }
                }
            }
        }
    }
    if !chunk.is_empty() {
        written += bulk::fill(db, chunk).await?;
    }
    Ok(Rate {
        readings: written,
        elapsed: t.elapsed(),
        latencies: Vec::new(),
    })
}

/// A small deterministic generator: the same subjects and days each run.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// 24-hour queries of one subject's heart rate, on random subjects and
/// days of `window`: every page of the raw readings (1,000 a page), and the
/// same day in hourly buckets.
async fn queries(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    fleet: &Fleet,
    window: (i64, i64),
    n: usize,
) -> anyhow::Result<(QueryFigures, QueryFigures)> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let span_minutes = u64::try_from(((window.1 - window.0 - DAY_MS) / MINUTE_MS).max(1)).unwrap_or(1);
    let mut raw = QueryFigures {
        rows_per_query: 0.0,
        latencies: Vec::with_capacity(n),
    };
    let mut agg = QueryFigures {
        rows_per_query: 0.0,
        latencies: Vec::with_capacity(n),
    };
    let (mut raw_rows, mut agg_rows) = (0usize, 0usize);
    for i in 0..WARMUP_QUERIES + n {
        let subject = fleet.devices[rng.below(fleet.devices.len() as u64) as usize].subject_id;
        let from = window.0 + rng.below(span_minutes) as i64 * MINUTE_MS;
        let (from_s, to_s) = (rfc3339(from)?, rfc3339(from + DAY_MS)?);
        let url = format!("{base}/v1/subjects/{subject}/readings");

        let t = Instant::now();
        let mut rows = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut page_url = reqwest::Url::parse(&url)?;
            page_url
                .query_pairs_mut()
                .append_pair("metric", "heart_rate")
                .append_pair("from", &from_s)
                .append_pair("to", &to_s)
                .append_pair("limit", "1000");
            if let Some(c) = cursor.take() {
                page_url.query_pairs_mut().append_pair("cursor", &c);
            }
            let page: ReadingPage = client
                .get(page_url)
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            rows += page.items.len();
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let raw_time = t.elapsed();

        let mut agg_url = reqwest::Url::parse(&format!("{url}/aggregate"))?;
        agg_url
            .query_pairs_mut()
            .append_pair("metric", "heart_rate")
            .append_pair("from", &from_s)
            .append_pair("to", &to_s)
            .append_pair("bucket", "1h");
        let t = Instant::now();
        let buckets: AggregateResponse = client
            .get(agg_url)
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let agg_time = t.elapsed();
        if i >= WARMUP_QUERIES {
            raw.latencies.push(raw_time);
            agg.latencies.push(agg_time);
            raw_rows += rows;
            agg_rows += buckets.buckets.len();
        }
    }
    raw.rows_per_query = raw_rows as f64 / n as f64;
    agg.rows_per_query = agg_rows as f64 / n as f64;
    Ok((raw, agg))
}

fn latency_cells(latencies: &mut [Duration]) -> (String, String) {
    if latencies.is_empty() {
        return ("-".into(), "-".into());
    }
    latencies.sort_unstable();
    (
        format!("{:.1}", percentile_ms(latencies, 0.5)),
        format!("{:.1}", percentile_ms(latencies, 0.99)),
    )
}

fn report(opts: &IngestBench, mut f: Figures) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "vitalfarm bench ingest: {}, {}", f.server, f.broker);
    let _ = writeln!(
        out,
        "{} devices; all in one process: HTTP server, clients, MQTT, loaders (inputs built before each clock starts)",
        opts.devices
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<34} {:>10} {:>12} {:>8} {:>8}   {:<36} {:>12} {:>7}",
        "ingest", "readings", "readings/s", "p50 ms", "p99 ms", "baseline (same run)", "readings/s", "ratio"
    );
    let (copy_text, copy_rate, http_ratio) = match &f.copy {
        Some(c) => (
            format!("PostgreSQL COPY, same rows, {}", c.readings),
            format!("{:.0}", c.per_second()),
            format!("{:.2}", f.http.per_second() / c.per_second()),
        ),
        None => ("none: SQLite has no COPY".to_owned(), "-".to_owned(), "-".to_owned()),
    };
    let (p50, p99) = latency_cells(&mut f.http.latencies);
    let _ = writeln!(
        out,
        "{:<34} {:>10} {:>12.0} {:>8} {:>8}   {:<36} {:>12} {:>7}",
        format!("HTTP, {} per request, {} conns", opts.http_batch, opts.http_clients),
        f.http.readings,
        f.http.per_second(),
        p50,
        p99,
        copy_text,
        copy_rate,
        http_ratio
    );
    let (p50, p99) = latency_cells(&mut f.mqtt.latencies);
    let dropped = if f.broker_dropped > 0 {
        format!(", {} dropped", f.broker_dropped)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{:<34} {:>10} {:>12.0} {:>8} {:>8}   {:<36} {:>12.0} {:>7.2}",
        format!("MQTT QoS 1, {} per message", opts.mqtt_batch),
        f.mqtt.readings,
        f.mqtt.per_second(),
        p50,
        p99,
        format!("broker publish→subscribe{dropped}"),
        f.broker_bare.per_second(),
        f.mqtt.per_second() / f.broker_bare.per_second().max(1e-9)
    );
    let _ = writeln!(
        out,
        "  latency: HTTP per request, answered after commit; MQTT publish→PUBACK ({DEVICE_INFLIGHT} in flight per device){}",
        if f.mqtt_latency_is_commit {
            ", sent after commit"
        } else {
            " from the external broker (the commit is after; the rate waits for it)"
        }
    );
    let _ = writeln!(
        out,
        "  broker baseline: the same messages, {} publishers to 1 subscriber, QoS 1 both ways; readings/s = messages/s × {}",
        PUBLISHERS.min(opts.devices),
        opts.mqtt_batch
    );
    let _ = writeln!(out);
    let _ = match &f.fill {
        Some(fill) => writeln!(
            out,
            "store: {} readings ({} added in {:.1} s, {:.0}/s, by {}), then {}",
            f.store,
            fill.readings,
            fill.elapsed.as_secs_f64(),
            fill.per_second(),
            if f.copy.is_some() { "COPY" } else { "batched INSERT" },
            if f.copy.is_some() {
                "VACUUM (ANALYZE) and CHECKPOINT, as the service reaches on its own"
            } else {
                "ANALYZE"
            }
        ),
        None => writeln!(out, "store: {} readings", f.store),
    };
    let _ = writeln!(
        out,
        "{:<44} {:>8} {:>10} {:>8} {:>8}",
        "query (heart rate of one subject, 24 h)", "queries", "rows", "p50 ms", "p99 ms"
    );
    let n = f.raw.latencies.len();
    let (p50, p99) = latency_cells(&mut f.raw.latencies);
    let _ = writeln!(
        out,
        "{:<44} {:>8} {:>10.0} {:>8} {:>8}",
        "raw readings, every page (1,000 a page)", n, f.raw.rows_per_query, p50, p99
    );
    let (p50, p99) = latency_cells(&mut f.aggregate.latencies);
    let _ = writeln!(
        out,
        "{:<44} {:>8} {:>10.0} {:>8} {:>8}",
        "hourly buckets", n, f.aggregate.rows_per_query, p50, p99
    );
    let _ = writeln!(
        out,
        "  times are of the whole HTTP request, {WARMUP_QUERIES} warm-up queries not counted"
    );
    out
}
