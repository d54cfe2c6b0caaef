//! `vitalfarm simulate`: a fleet of simulated devices sending realistic vital
//! signs (from [`vitalfarm_domain::vitals`]) over HTTP or MQTT, for demos,
//! load and benchmarks.
//!
//! Setup goes through the public HTTP API only, as a customer's provisioning
//! script would (sign up or log in, a device model, one bulk registration,
//! an enrollee per device, assignment), so the simulator runs against any
//! vitalfarm, local or remote, and exercises the paths real fleets use.
//! [`provision_fleet`] and [`reading_json`] are public because `vitalfarm
//! bench ingest` builds on them.
//!
//! Counting: `sent` readings end up `acked` (stored: the HTTP answer's
//! `accepted`, or the MQTT PubAck), `duplicates` (HTTP only: already stored,
//! e.g. a retry whose first answer was lost), `rejected` (refused by the
//! server) or `errors` (given up after retries, or lost with an MQTT
//! session). Over HTTP the four add up to `sent` once the run has ended;
//! over MQTT, messages still unacknowledged at the end are `unconfirmed`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Days, SecondsFormat, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use uuid::Uuid;
use vitalfarm_domain::vitals::{Generator, Sample, SampleValue, SubjectProfile, Vital, derive_seed};
use vitalfarm_domain::{DeviceStatus, MembershipKind, Permission};
use vitalfarm_openapi::accounts::{MeResponse, SignupResponse, TokenResponse};
use vitalfarm_openapi::devices::{Device, DeviceModel, RegisteredDevices};
use vitalfarm_openapi::readings::IngestResponse;
use vitalfarm_openapi::subjects::Subject;

use vitalfarm_api::routes::devices::MAX_BULK;
use vitalfarm_app::auth::secrets;
use vitalfarm_app::readings::MAX_BATCH;

/// The mix a wearable-style fleet sends when `--metrics` is not given.
pub const DEFAULT_METRICS: [Vital; 6] = [
    Vital::HeartRate,
    Vital::Spo2,
    Vital::RespiratoryRate,
    Vital::BodyTemperature,
    Vital::BloodPressure,
    Vital::Steps,
];

/// Setup requests in flight at once: enough to create thousands of
/// enrollees quickly without queueing behind the server's worker pool.
const SETUP_CONCURRENCY: usize = 16;
/// Attempts of one ingest request before its readings count as errors.
const MAX_ATTEMPTS: u32 = 8;
/// How long, after the stop, in-flight requests and PubAcks may take.
const GRACE: Duration = Duration::from_secs(30);
/// How long an MQTT device waits for its last PubAcks before disconnecting.
const MQTT_DRAIN: Duration = Duration::from_secs(5);
/// Distinct error messages printed; later ones are only counted.
const MAX_NOTES: usize = 20;

/// `vitalfarm simulate`'s options.
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("transport").args(["mqtt", "http"]))]
pub struct SimulateArgs {
    /// vitalfarm's HTTP API: setup always goes through it, and readings too
    /// unless --mqtt.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The MQTT broker devices connect to with --mqtt.
    #[arg(long, value_name = "URL", default_value = "mqtt://127.0.0.1:1884")]
    pub mqtt_url: String,
    /// Number of devices, each recording its own simulated enrollee.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub devices: usize,
    /// Readings per second per device; fractions are fine (0.2 is one
    /// reading every 5 seconds).
    #[arg(long, value_name = "R", default_value_t = 1.0)]
    pub rate: f64,
    /// Devices publish over MQTT (QoS 1) and answer commands.
    #[arg(long)]
    pub mqtt: bool,
    /// Devices POST to /v1/ingest/readings (the default).
    #[arg(long)]
    pub http: bool,
    /// Seconds to run; default: until Ctrl-C.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Readings per HTTP request or MQTT message.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub batch: usize,
    /// Metrics to send, in turn (default: heart_rate, spo2,
    /// respiratory_rate, body_temperature, blood_pressure, steps).
    #[arg(long, value_name = "METRIC,...", value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// An existing company's owner or admin to add the fleet to (default:
    /// sign up a fresh company).
    #[arg(long, env = "VITALFARM_SIM_EMAIL", requires = "password")]
    pub email: Option<String>,
    /// Their password (prefer the environment variable: a command line is
    /// visible to other users of the machine).
    #[arg(long, env = "VITALFARM_SIM_PASSWORD", hide_env_values = true, requires = "email")]
    pub password: Option<String>,
    /// Seed of the subjects' profiles and readings (default: random; the
    /// run prints it).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl std::fmt::Debug for SimulateArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulateArgs")
            .field("url", &self.url)
            .field("mqtt_url", &self.mqtt_url)
            .field("devices", &self.devices)
            .field("rate", &self.rate)
            .field("mqtt", &self.mqtt)
            .field("duration", &self.duration)
            .field("batch", &self.batch)
            .field("metrics", &self.metrics)
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("seed", &self.seed)
            .finish()
    }
}

/// How the devices send their readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Mqtt,
}

impl Transport {
    const fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "HTTP",
            Transport::Mqtt => "MQTT",
        }
    }
}

/// The account a fleet is added to.
#[derive(Clone)]
pub struct Owner {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// One run of the simulator, checked.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The API base, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    pub mqtt_url: String,
    pub devices: usize,
    /// Readings per second per device.
    pub rate: f64,
    pub transport: Transport,
    /// `None`: until the shutdown future given to [`run`] completes.
    pub duration: Option<Duration>,
    /// Readings per request or message.
    pub batch: usize,
    /// Sent in turn by each device, each device starting at its own place.
    pub metrics: Vec<Vital>,
    /// `None`: sign up a fresh company.
    pub owner: Option<Owner>,
    pub seed: u64,
    /// Print a line of figures every second and a summary (the command
    /// does; an in-process caller such as a test may not want to).
    pub print: bool,
}

impl SimOptions {
    /// `devices` devices sending `rate` readings per second each over HTTP
    /// to `url`, with the defaults of the command otherwise.
    pub fn http(url: impl Into<String>, devices: usize, rate: f64) -> Self {
        Self {
            url: url.into(),
            mqtt_url: "mqtt://127.0.0.1:1884".into(),
            devices,
            rate,
            transport: Transport::Http,
            duration: None,
            batch: 1,
            metrics: DEFAULT_METRICS.to_vec(),
            owner: None,
            seed: 0,
            print: false,
        }
    }

    /// Checks the command's options and fills in the defaults.
    pub fn from_args(args: SimulateArgs) -> anyhow::Result<Self> {
        let mut metrics = Vec::new();
        for code in args.metrics.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
            let Some(v) = Vital::parse(code) else {
                let known: Vec<&str> = Vital::ALL.iter().map(|v| v.code()).collect();
                bail!("--metrics: unknown metric {code:?}; known: {}", known.join(", "));
            };
            if !metrics.contains(&v) {
                metrics.push(v);
            }
        }
        if metrics.is_empty() {
            metrics = DEFAULT_METRICS.to_vec();
        }
        let duration = match args.duration {
            None => None,
            Some(s) => Some(
                Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .context("--duration must be a positive number of seconds")?,
            ),
        };
        let owner = match (args.email, args.password) {
            (Some(email), Some(password)) => Some(Owner { email, password }),
            _ => None,
        };
        let seed = match args.seed {
            Some(s) => s,
            None => u64::from_le_bytes(secrets::random_bytes::<8>()?),
        };
        let opts = Self {
            url: args.url.trim_end_matches('/').to_owned(),
            mqtt_url: args.mqtt_url,
            devices: args.devices,
            rate: args.rate,
            transport: if args.mqtt { Transport::Mqtt } else { Transport::Http },
            duration,
            batch: args.batch,
            metrics,
            owner,
            seed,
            print: true,
        };
        opts.period()?;
        Ok(opts)
    }

    /// Time between two sends of one device, after checking the figures
    /// that make it.
    fn period(&self) -> anyhow::Result<Duration> {
        ensure!(self.devices >= 1, "--devices must be at least 1");
        ensure!(
            (1..=MAX_BATCH).contains(&self.batch),
            "--batch must be between 1 and {MAX_BATCH} (the most one ingest request takes)"
        );
        ensure!(
            self.rate.is_finite() && self.rate > 0.0,
            "--rate must be a positive number of readings per second"
        );
        ensure!(!self.metrics.is_empty(), "--metrics must name at least one metric");
        Duration::try_from_secs_f64(self.batch as f64 / self.rate)
            .ok()
            .filter(|d| *d >= Duration::from_micros(100))
            .context("--rate / --batch: at most 10,000 sends per second per device")
    }
}

/// A provisioned fleet: the company's credentials and each device's.
#[derive(Clone)]
pub struct Fleet {
    /// The owner's access token (valid for the server's access-token TTL,
    /// 15 minutes by default).
    pub token: String,
    pub membership_id: Uuid,
    /// The account the fleet belongs to.
    pub email: String,
    pub devices: Vec<SimDevice>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("token", &"[redacted]")
            .field("membership_id", &self.membership_id)
            .field("email", &self.email)
            .field("devices", &self.devices)
            .finish()
    }
}

/// One device of a fleet, bound to its own enrollee.
#[derive(Clone)]
pub struct SimDevice {
    pub id: Uuid,
    /// Shown once by the registration; never printed.
    pub secret: String,
    pub subject_id: Uuid,
}

impl std::fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDevice")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("subject_id", &self.subject_id)
            .finish()
    }
}

/// The profile of the `index`-th subject of a fleet seeded with `seed`: the
/// same in setup (birth date, sex) and in the readings.
pub fn profile_for(seed: u64, index: usize) -> SubjectProfile {
    SubjectProfile::random(derive_seed(seed, index as u64))
}

/// One reading as `POST /v1/ingest/readings` and the MQTT readings topic
/// take it: `{metric, ts, value | components, unit}`, with `ts` in RFC 3339
/// UTC to the millisecond (the reading's identity with device and metric).
pub fn reading_json(sample: &Sample, ts_ms: i64) -> Value {
    let ts = DateTime::<Utc>::from_timestamp_millis(ts_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut item = Map::new();
    item.insert("metric".into(), Value::from(sample.metric));
    item.insert("ts".into(), Value::from(ts));
    match &sample.value {
        SampleValue::Scalar(v) => {
            item.insert("value".into(), Value::from(*v));
        }
        SampleValue::Components(c) => {
            let c: Map<String, Value> = c.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
            item.insert("components".into(), Value::Object(c));
        }
    }
    item.insert("unit".into(), Value::from(sample.unit));
    Value::Object(item)
}

/// Sends a setup request and reads its JSON answer, or fails with the
/// server's problem document in the message.
async fn call<T: serde::de::DeserializeOwned>(req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<T> {
    let res = req.send().await.with_context(|| format!("{what}: no answer"))?;
    let status = res.status();
    if !status.is_success() {
        let body = res.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<Value>(&body)
            .ok()
            .map(|p| {
                let mut s = p["detail"]
                    .as_str()
                    .or(p["title"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                if let Some(errors) = p["errors"].as_array() {
                    for e in errors.iter().take(3) {
                        s.push_str(&format!("; {}: {}", e["field"], e["message"]));
                    }
                }
                s
            })
            .unwrap_or(body);
        bail!("{what}: HTTP {status}: {detail}");
    }
    res.json::<T>()
        .await
        .with_context(|| format!("{what}: unexpected answer"))
}

/// A short random tag that keeps this run's email and serials apart from
/// earlier runs against the same server.
fn run_tag() -> anyhow::Result<String> {
    Ok(hex::encode(secrets::random_bytes::<4>()?))
}

/// Signs in (or signs up a fresh company) and returns the token, the
/// company membership and its email.
async fn company(
    client: &reqwest::Client,
    base: &str,
    owner: Option<&Owner>,
    tag: &str,
) -> anyhow::Result<(String, Uuid, String)> {
    match owner {
        None => {
            let email = format!("sim-{tag}@example.com");
            // Nobody signs in to this throwaway account; pass --email to
            // simulate into a company you can look at.
            let password = secrets::generate("sim_")?;
            let signup: SignupResponse = call(
                client.post(format!("{base}/v1/auth/signup")).json(&json!({
                    "email": email, "password": password, "display_name": "Fleet simulator",
                    "membership": {"kind": "company", "name": format!("Simulated fleet {tag}")}
                })),
                "signing up a company",
            )
            .await?;
            Ok((signup.tokens.access_token, signup.membership.id, email))
        }
        Some(owner) => {
            let tokens: TokenResponse = call(
                client
                    .post(format!("{base}/v1/auth/login"))
                    .json(&json!({"email": owner.email, "password": owner.password})),
                "logging in",
            )
            .await?;
            let me: MeResponse = call(
                client.get(format!("{base}/v1/me")).bearer_auth(&tokens.access_token),
                "reading /v1/me",
            )
            .await?;
            let membership = me
                .memberships
                .iter()
                .find(|m| {
                    m.kind == MembershipKind::Company
                        && m.role.allows(Permission::ManageDevices)
                        && m.role.allows(Permission::WriteData)
                })
                .with_context(|| format!("{} is not an owner or admin of any company", owner.email))?;
            Ok((tokens.access_token, membership.id, owner.email.clone()))
        }
    }
}

/// Creates a company fleet of `n` devices through the public API: a
/// company (signed up fresh, or `owner`'s), a device model, the devices in
/// one bulk registration (chunks of 20,000 beyond that), one enrollee per
/// device (birth date and sex from [`profile_for`]`(seed, i)`), each device
/// assigned to its enrollee and active.
pub async fn provision_fleet(
    client: &reqwest::Client,
    base_url: &str,
    n: usize,
    owner: Option<&Owner>,
    seed: u64,
) -> anyhow::Result<Fleet> {
    ensure!(n >= 1, "a fleet needs at least one device");
    let base = base_url.trim_end_matches('/');
    let tag = run_tag()?;
    let (token, mid, email) = company(client, base, owner, &tag).await?;

    let model: DeviceModel = call(
        client
            .post(format!("{base}/v1/memberships/{mid}/device-models"))
            .bearer_auth(&token)
            .json(&json!({
                "name": format!("SimBand {tag}"),
                "manufacturer": "vitalfarm simulator",
                "metrics": Vital::ALL.iter().map(|v| v.code()).collect::<Vec<_>>(),
            })),
        "creating a device model",
    )
    .await?;

    let serials: Vec<String> = (0..n).map(|i| format!("SIM-{tag}-{:06}", i + 1)).collect();
    let mut registered = Vec::with_capacity(n);
    for chunk in serials.chunks(MAX_BULK) {
        let devices: Vec<Value> = chunk
            .iter()
            .map(|s| json!({"serial": s, "model_id": model.id}))
            .collect();
        let answer: RegisteredDevices = call(
            client
                .post(format!("{base}/v1/memberships/{mid}/devices"))
                .bearer_auth(&token)
                .json(&json!({ "devices": devices })),
            "registering devices",
        )
        .await?;
        ensure!(
            answer.devices.len() == chunk.len(),
            "registering devices: asked for {}, got {}",
            chunk.len(),
            answer.devices.len()
        );
        registered.extend(answer.devices);
    }

    let today = Utc::now().date_naive();
    let subjects: Vec<Uuid> = stream::iter(serials.iter().enumerate())
        .map(|(i, serial)| {
            let profile = profile_for(seed, i);
            // Spread birthdays over the year so ages match the profiles.
            let days = u64::from(profile.age_years) * 365 + derive_seed(seed, i as u64) % 365;
            let birth_date = today.checked_sub_days(Days::new(days));
            let req = client
                .post(format!("{base}/v1/memberships/{mid}/subjects"))
                .bearer_auth(&token)
                .json(&json!({
                    "kind": "enrollee",
                    "display_name": format!("Simulated enrollee {}", i + 1),
                    "birth_date": birth_date,
                    "sex": profile.sex,
                    "external_ref": serial,
                }));
            async move { call::<Subject>(req, "creating an enrollee").await.map(|s| s.id) }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;

    let devices: Vec<SimDevice> = stream::iter(registered.into_iter().zip(subjects))
        .map(|(dev, subject_id)| {
            let (client, token) = (client.clone(), token.clone());
            async move {
                let id = dev.device_id;
                let assigned: Device = call(
                    client
                        .post(format!("{base}/v1/devices/{id}/assign"))
                        .bearer_auth(&token)
                        .json(&json!({ "subject_id": subject_id })),
                    "assigning a device",
                )
                .await?;
                // Assignment activates a provisioned device; one that was
                // suspended meanwhile is resumed so that ingest takes it.
                if assigned.status != DeviceStatus::Active {
                    ensure!(
                        assigned.status.may_become(DeviceStatus::Active),
                        "device {id} is {} and cannot become active",
                        assigned.status.as_str()
                    );
                    call::<Device>(
                        client
                            .patch(format!("{base}/v1/devices/{id}"))
                            .bearer_auth(&token)
                            .json(&json!({"status": "active"})),
                        "activating a device",
                    )
                    .await?;
                }
                Ok::<_, anyhow::Error>(SimDevice {
                    id,
                    secret: dev.secret,
                    subject_id,
                })
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;

    Ok(Fleet {
        token,
        membership_id: mid,
        email,
        devices,
    })
}

/// Latencies in microseconds, in log-linear buckets (16 per power of two,
/// so a quantile is within about 6 %), small and mergeable however long the
/// run.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    n: u64,
    max_us: u64,
}

const SUB_BUCKETS: u64 = 16;

impl Histogram {
    fn new() -> Self {
        Self {
            counts: vec![0; 61 * SUB_BUCKETS as usize],
            n: 0,
            max_us: 0,
        }
    }

    fn index(us: u64) -> usize {
        if us < SUB_BUCKETS {
            return us as usize;
        }
        let exp = u64::from(63 - us.leading_zeros());
        let mantissa = (us >> (exp - 4)) & (SUB_BUCKETS - 1);
        ((exp - 3) * SUB_BUCKETS + mantissa) as usize
    }

    /// The smallest value of bucket `i`.
    fn lower(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB_BUCKETS {
            return i;
        }
        let (exp, mantissa) = (i / SUB_BUCKETS + 3, i % SUB_BUCKETS);
        (SUB_BUCKETS + mantissa) << (exp - 4)
    }

    fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if let Some(c) = self.counts.get_mut(Self::index(us)) {
            *c += 1;
        }
        self.n += 1;
        self.max_us = self.max_us.max(us);
    }

    fn quantile(&self, q: f64) -> Option<Duration> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                // The middle of the bucket, but never above the largest seen.
                let mid = Self::lower(i).saturating_add(Self::lower(i + 1)) / 2;
                return Some(Duration::from_micros(mid.min(self.max_us)));
            }
        }
        Some(Duration::from_micros(self.max_us))
    }
}

/// The run's figures, shared by every device task.
struct Stats {
    sent: AtomicU64,
    acked: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    reconnects: AtomicU64,
    commands: AtomicU64,
    acked_per_device: Vec<AtomicU64>,
    /// This second's latencies and the whole run's.
    latency: Mutex<(Histogram, Histogram)>,
    notes: Mutex<Vec<String>>,
    print: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    sent: u64,
    acked: u64,
    duplicates: u64,
    rejected: u64,
    errors: u64,
}

impl Stats {
    fn new(devices: usize, print: bool) -> Self {
        Self {
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            acked_per_device: (0..devices).map(|_| AtomicU64::new(0)).collect(),
            latency: Mutex::new((Histogram::new(), Histogram::new())),
            notes: Mutex::new(Vec::new()),
            print,
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn acked(&self, device: usize, n: u64) {
        Self::add(&self.acked, n);
        if let Some(c) = self.acked_per_device.get(device) {
            Self::add(c, n);
        }
    }

    fn counts(&self) -> Counts {
        Counts {
            sent: self.sent.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    fn latency(&self, d: Duration) {
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        h.0.record(d);
        h.1.record(d);
    }

    /// p50 and p99 of the second just ended, starting the next.
    fn take_window(&self) -> (Option<Duration>, Option<Duration>) {
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let window = std::mem::replace(&mut h.0, Histogram::new());
        (window.quantile(0.5), window.quantile(0.99))
    }

    fn total_latency(&self) -> Histogram {
        self.latency.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    /// Reports a problem the first time it happens, so that an operator
    /// sees why errors climb without a line per failed request.
    fn note(&self, message: String) {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if notes.len() < MAX_NOTES && !notes.contains(&message) {
            if self.print {
                eprintln!("simulate: {message}");
            }
            notes.push(message);
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub sent: u64,
    pub acked: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub errors: u64,
    /// Sent but neither acknowledged nor known lost when the run ended
    /// (MQTT only).
    pub unconfirmed: u64,
    /// HTTP requests sent again after a connection failure or a 5xx/429.
    pub retries: u64,
    /// MQTT connections lost and re-established.
    pub reconnects: u64,
    /// MQTT commands answered.
    pub commands: u64,
    pub elapsed: Duration,
    /// HTTP request, or publish to PubAck.
    pub latency_p50: Option<Duration>,
    pub latency_p99: Option<Duration>,
}

/// A finished run: the fleet it set up (to look at what was stored) and its
/// figures.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub fleet: Fleet,
    pub totals: Totals,
    /// Readings acknowledged per device, in the order of `fleet.devices`.
    pub acked_per_device: Vec<u64>,
}

/// One device's readings: the subject's generator, the metric rotation and
/// the last timestamp per metric (a reading's identity is device, metric,
/// ts, so two readings of one metric never share a millisecond).
struct Producer {
    generator: Generator,
    metrics: Arc<[Vital]>,
    next: usize,
    last_ts: HashMap<Vital, i64>,
}

impl Producer {
    fn new(seed: u64, index: usize, metrics: Arc<[Vital]>) -> Self {
        let seed_i = derive_seed(seed, index as u64);
        Self {
            generator: Generator::new(SubjectProfile::random(seed_i), seed_i),
            next: index % metrics.len(),
            metrics,
            last_ts: HashMap::new(),
        }
    }

    fn reading(&mut self, vital: Vital) -> Value {
        let now = Utc::now().timestamp_millis();
        let ts = match self.last_ts.get(&vital) {
            Some(&last) if now <= last => last + 1,
            _ => now,
        };
        self.last_ts.insert(vital, ts);
        reading_json(&self.generator.sample(vital, ts), ts)
    }

    fn batch(&mut self, n: usize) -> Vec<Value> {
        (0..n)
            .map(|_| {
                let vital = self.metrics.get(self.next).copied().unwrap_or(Vital::HeartRate);
                self.next = (self.next + 1) % self.metrics.len().max(1);
                self.reading(vital)
            })
            .collect()
    }
}

/// What every device task shares.
struct Ctx {
    opts: SimOptions,
    client: reqwest::Client,
    ingest_url: String,
    mqtt_addr: (String, u16),
    stats: Arc<Stats>,
    metrics: Arc<[Vital]>,
    period: Duration,
    /// When the first device sends; the others follow, spread over one
    /// period so the load is smooth rather than in waves.
    start: tokio::time::Instant,
}

impl Ctx {
    fn ticks(&self, index: usize) -> tokio::time::Interval {
        let phase = self.period.mul_f64(index as f64 / self.opts.devices as f64);
        let mut ticks = tokio::time::interval_at(self.start + phase, self.period);
        // A device that fell behind (a slow answer) carries on at its pace
        // instead of firing the missed sends at once.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    }
}

/// Waits for the next tick, or `None` once the run is stopping.
async fn next_tick(ticks: &mut tokio::time::Interval, stop: &mut watch::Receiver<bool>) -> Option<()> {
    if *stop.borrow() {
        return None;
    }
    tokio::select! {
        _ = ticks.tick() => (!*stop.borrow()).then_some(()),
        _ = stop.changed() => None,
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}

async fn http_device(ctx: Arc<Ctx>, index: usize, device: SimDevice, mut stop: watch::Receiver<bool>) {
    let credential = match HeaderValue::from_str(&format!("Device {}:{}", device.id, device.secret)) {
        Ok(mut v) => {
            v.set_sensitive(true);
            v
        }
        Err(_) => {
            ctx.stats
                .note(format!("device {}: its secret is not a valid header", device.id));
            return;
        }
    };
    let mut producer = Producer::new(ctx.opts.seed, index, ctx.metrics.clone());
    let mut ticks = ctx.ticks(index);
    while next_tick(&mut ticks, &mut stop).await.is_some() {
        let readings = producer.batch(ctx.opts.batch);
        let count = readings.len() as u64;
        let body = match serde_json::to_vec(&json!({ "readings": readings })) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                ctx.stats.note(format!("encoding a batch: {e}"));
                continue;
            }
        };
        Stats::add(&ctx.stats.sent, count);
        post_batch(&ctx, index, &credential, body, count).await;
    }
}

/// Sends one batch until it gets an answer; a connection failure, a 5xx or
/// a 429 is retried with the same body, which ingest makes harmless (a
/// reading stored by an attempt whose answer was lost comes back as a
/// duplicate).
async fn post_batch(ctx: &Ctx, index: usize, credential: &HeaderValue, body: bytes::Bytes, count: u64) {
    let stats = &ctx.stats;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = Instant::now();
        let res = ctx
            .client
            .post(&ctx.ingest_url)
            .header(AUTHORIZATION, credential.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let problem = match res {
            Ok(r) if r.status() == reqwest::StatusCode::OK => {
                let elapsed = started.elapsed();
                match r.json::<IngestResponse>().await {
                    Ok(answer) => {
                        stats.latency(elapsed);
                        stats.acked(index, answer.accepted);
                        Stats::add(&stats.duplicates, answer.duplicates);
                        Stats::add(&stats.rejected, answer.rejected.len() as u64);
                        if let Some(first) = answer.rejected.first().and_then(|r| r.errors.first()) {
                            stats.note(format!("reading rejected: {}: {}", first.field, first.message));
                        }
                    }
                    Err(e) => {
                        Stats::add(&stats.errors, count);
                        stats.note(format!("unreadable ingest answer: {e}"));
                    }
                }
                return;
            }
            Ok(r) if r.status().is_server_error() || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                format!("ingest answered HTTP {}", r.status())
            }
            Ok(r) => {
                let status = r.status();
                let detail = r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|p| p["detail"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                Stats::add(&stats.rejected, count);
                stats.note(format!("ingest refused a batch: HTTP {status}: {detail}"));
                return;
            }
            Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                format!("ingest request failed: {}", chain(&e))
            }
            Err(e) => {
                Stats::add(&stats.errors, count);
                stats.note(format!("ingest request failed: {}", chain(&e)));
                return;
            }
        };
        if attempt >= MAX_ATTEMPTS {
            Stats::add(&stats.errors, count);
            stats.note(format!("{problem} (gave up after {MAX_ATTEMPTS} attempts)"));
            return;
        }
        stats.note(problem);
        Stats::add(&stats.retries, 1);
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// A message handed to the MQTT client, waiting for its PubAck.
struct Published {
    /// Readings it carries (0 for a command result).
    readings: u64,
    at: Instant,
}

/// Publishes in flight. rumqttc names a publish by its packet id only once
/// it is written, in the order of the `publish` calls, so each call queues
/// its figures here and the event loop moves them to `by_pkid` when the
/// packet goes out. A retransmission after a reconnect reuses its packet
/// id and is not a new publish.
#[derive(Default)]
struct Inflight {
    queued: VecDeque<Published>,
    by_pkid: HashMap<u16, Published>,
}

impl Inflight {
    fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.by_pkid.is_empty()
    }

    fn unconfirmed_readings(&self) -> u64 {
        self.queued
            .iter()
            .chain(self.by_pkid.values())
            .map(|p| p.readings)
            .sum()
    }
}

/// A command as vitalfarm publishes it to a device.
#[derive(Debug, Deserialize)]
struct CommandIn {
    id: String,
    name: String,
    #[serde(default)]
    params: Value,
}

/// A command id is part of the result topic: refuse anything that would
/// change the topic's shape.
fn topic_safe(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.contains(['/', '+', '#', '\0'])
}

struct MqttDevice {
    ctx: Arc<Ctx>,
    index: usize,
    client: AsyncClient,
    inflight: Arc<Mutex<Inflight>>,
    readings_topic: String,
    commands_topic: String,
    results_prefix: String,
}

impl MqttDevice {
    fn inflight(&self) -> std::sync::MutexGuard<'_, Inflight> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes QoS 1, accounting for it; false when the client is gone.
    async fn publish(&self, topic: String, payload: Vec<u8>, readings: u64) -> bool {
        self.inflight().queued.push_back(Published {
            readings,
            at: Instant::now(),
        });
        match self.client.publish(topic, QoS::AtLeastOnce, false, payload).await {
            Ok(()) => {
                Stats::add(&self.ctx.stats.sent, readings);
                true
            }
            Err(e) => {
                self.inflight().queued.pop_back();
                self.ctx.stats.note(format!("MQTT publish failed: {e}"));
                false
            }
        }
    }

    async fn send_readings(&self, readings: Vec<Value>) -> bool {
        let count = readings.len() as u64;
        match serde_json::to_vec(&json!({ "readings": readings })) {
            Ok(body) => self.publish(self.readings_topic.clone(), body, count).await,
            Err(e) => {
                self.ctx.stats.note(format!("encoding a batch: {e}"));
                true
            }
        }
    }

    /// Runs a command: `MEASURE` sends a fresh reading at once (of
    /// `params.metric` if the device can, else of its first metric), then
    /// reports which metric it measured.
    async fn answer(&self, command: CommandIn, producer: &mut Producer) -> bool {
        let result = if command.name == "MEASURE" {
            let vital = command
                .params
                .get("metric")
                .and_then(Value::as_str)
                .and_then(Vital::parse)
                .unwrap_or_else(|| self.ctx.metrics.first().copied().unwrap_or(Vital::HeartRate));
            if !self.send_readings(vec![producer.reading(vital)]).await {
                return false;
            }
            json!({"status": "acked", "result": {"measured": vital.code()}})
        } else {
            json!({"status": "failed", "error": "unsupported command"})
        };
        Stats::add(&self.ctx.stats.commands, 1);
        let topic = format!("{}/{}/result", self.results_prefix, command.id);
        self.publish(topic, result.to_string().into_bytes(), 0).await
    }

    /// The device: sends on its ticks and answers commands until the stop,
    /// then waits briefly for its last PubAcks and disconnects.
    async fn produce(&self, mut commands: mpsc::UnboundedReceiver<CommandIn>, mut stop: watch::Receiver<bool>) {
        let mut producer = Producer::new(self.ctx.opts.seed, self.index, self.ctx.metrics.clone());
        let mut ticks = self.ctx.ticks(self.index);
        loop {
            let alive = tokio::select! {
                tick = next_tick(&mut ticks, &mut stop) => match tick {
                    Some(()) => self.send_readings(producer.batch(self.ctx.opts.batch)).await,
                    None => break,
                },
                Some(command) = commands.recv() => self.answer(command, &mut producer).await,
            };
            if !alive {
                break;
            }
        }
        let deadline = Instant::now() + MQTT_DRAIN;
        while !self.inflight().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Drives the connection: counts PubAcks, hands commands to the device,
    /// resubscribes after each connect, and keeps polling after an error
    /// (which is how rumqttc reconnects) until the device is done.
    async fn drive(&self, mut eventloop: EventLoop, commands: mpsc::UnboundedSender<CommandIn>, done: &AtomicBool) {
        let stats = &self.ctx.stats;
        let mut connected_before = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    if connected_before {
                        Stats::add(&stats.reconnects, 1);
                    }
                    connected_before = true;
                    if !ack.session_present {
                        // The broker forgot the session: what was in flight
                        // will not be acknowledged.
                        let lost: u64 = self.inflight().by_pkid.drain().map(|(_, p)| p.readings).sum();
                        Stats::add(&stats.errors, lost);
                    }
                    if let Err(e) = self.client.try_subscribe(self.commands_topic.clone(), QoS::AtLeastOnce) {
                        stats.note(format!("MQTT subscribe failed: {e}"));
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    let mut inflight = self.inflight();
                    if !inflight.by_pkid.contains_key(&pkid)
                        && let Some(p) = inflight.queued.pop_front()
                    {
                        inflight.by_pkid.insert(pkid, p);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    let done = self.inflight().by_pkid.remove(&ack.pkid);
                    if let Some(p) = done {
                        stats.latency(p.at.elapsed());
                        stats.acked(self.index, p.readings);
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == self.commands_topic => {
                    match serde_json::from_slice::<CommandIn>(&p.payload) {
                        Ok(c) if topic_safe(&c.id) => {
                            let _ = commands.send(c);
                        }
                        Ok(_) => stats.note("command with an id unusable in a topic".into()),
                        Err(e) => stats.note(format!("unreadable command: {e}")),
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(e) => {
                    if done.load(Ordering::Relaxed) {
                        return;
                    }
                    stats.note(format!("MQTT connection: {e}"));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

async fn mqtt_device(ctx: Arc<Ctx>, index: usize, device: SimDevice, stop: watch::Receiver<bool>) {
    let id = device.id.to_string();
    let (host, port) = ctx.mqtt_addr.clone();
    let mut options = MqttOptions::new(id.clone(), host, port);
    options
        .set_credentials(id.clone(), device.secret.clone())
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(30));
    // A full batch (up to 5,000 readings of about 120 bytes) must fit.
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, eventloop) = AsyncClient::new(options, 64);
    let root = format!("vitalfarm/v1/devices/{id}");
    let dev = MqttDevice {
        ctx,
        index,
        client,
        inflight: Arc::new(Mutex::new(Inflight::default())),
        readings_topic: format!("{root}/readings"),
        commands_topic: format!("{root}/commands"),
        results_prefix: format!("{root}/commands"),
    };
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let done = AtomicBool::new(false);
    let produce = async {
        dev.produce(commands_rx, stop).await;
        done.store(true, Ordering::Relaxed);
        if let Err(e) = dev.client.disconnect().await {
            dev.ctx.stats.note(format!("MQTT disconnect: {e}"));
        }
    };
    tokio::join!(produce, dev.drive(eventloop, commands_tx, &done));
    let lost = dev.inflight().unconfirmed_readings();
    if lost > 0 {
        dev.ctx
            .stats
            .note(format!("{lost} readings still unacknowledged at the end"));
    }
}

/// `mqtt://host[:port]` (or `tcp://`) as rumqttc wants it.
fn mqtt_address(url: &str) -> anyhow::Result<(String, u16)> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--mqtt-url {url:?} is not a URL"))?;
    ensure!(
        matches!(parsed.scheme(), "mqtt" | "tcp"),
        "--mqtt-url must be mqtt://host:port (TLS is not supported by the simulator)"
    );
    let host = parsed.host_str().context("--mqtt-url has no host")?.to_owned();
    Ok((host, parsed.port().unwrap_or(1883)))
}

/// An error with its causes: reqwest's own message ("error sending
/// request") says nothing of why.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0))
}

#[allow(
    clippy::print_stdout,
    reason = "the figures are what the simulator reports to the operator"
)]
async fn report_every_second(stats: Arc<Stats>, started: Instant, mut stop: watch::Receiver<bool>) {
    println!(
        "{:>7} {:>9} {:>9} {:>11} {:>11} {:>6} {:>8} {:>7} {:>8} {:>8}",
        "time", "sent/s", "acked/s", "sent", "acked", "dup", "rejected", "errors", "p50 ms", "p99 ms"
    );
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    let mut prev = stats.counts();
    let mut prev_at = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let now = stats.counts();
        let secs = prev_at.elapsed().as_secs_f64().max(1e-3);
        prev_at = Instant::now();
        let (p50, p99) = stats.take_window();
        println!(
            "{:>6.0}s {:>9.1} {:>9.1} {:>11} {:>11} {:>6} {:>8} {:>7} {:>8} {:>8}",
            started.elapsed().as_secs_f64(),
            (now.sent - prev.sent) as f64 / secs,
            (now.acked - prev.acked) as f64 / secs,
            now.sent,
            now.acked,
            now.duplicates,
            now.rejected,
            now.errors,
            ms(p50),
            ms(p99),
        );
        prev = now;
    }
}

/// Provisions a fleet and runs it until `opts.duration` has passed or
/// `shutdown` completes, whichever is first; then lets in-flight requests
/// finish (up to 30 seconds) and returns the figures.
#[allow(
    clippy::print_stdout,
    reason = "the figures are what the simulator reports to the operator"
)]
pub async fn run(opts: SimOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<Outcome> {
    let period = opts.period()?;
    let mqtt_addr = match opts.transport {
        Transport::Mqtt => mqtt_address(&opts.mqtt_url)?,
        Transport::Http => (String::new(), 0),
    };
    let base = opts.url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;

    let fleet = provision_fleet(&client, &base, opts.devices, opts.owner.as_ref(), opts.seed).await?;
    let metrics: Arc<[Vital]> = opts.metrics.clone().into();
    if opts.print {
        let codes: Vec<&str> = metrics.iter().map(|m| m.code()).collect();
        let target = match opts.transport {
            Transport::Http => format!("{base}/v1/ingest/readings"),
            Transport::Mqtt => opts.mqtt_url.clone(),
        };
        println!(
            "vitalfarm simulate: {} devices x {} readings/s = {:.1} readings/s, batches of {}, over {} to {target}",
            opts.devices,
            opts.rate,
            opts.rate * opts.devices as f64,
            opts.batch,
            opts.transport.as_str()
        );
        println!(
            "company {} ({}), seed {}, metrics {}",
            fleet.membership_id,
            fleet.email,
            opts.seed,
            codes.join(", ")
        );
    }

    let stats = Arc::new(Stats::new(fleet.devices.len(), opts.print));
    let ctx = Arc::new(Ctx {
        ingest_url: format!("{base}/v1/ingest/readings"),
        client,
        mqtt_addr,
        stats: stats.clone(),
        metrics,
        period,
        start: tokio::time::Instant::now() + Duration::from_millis(50),
        opts,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (i, device) in fleet.devices.iter().cloned().enumerate() {
        let (ctx, stop) = (ctx.clone(), stop_rx.clone());
        match ctx.opts.transport {
            Transport::Http => tasks.spawn(http_device(ctx, i, device, stop)),
            Transport::Mqtt => tasks.spawn(mqtt_device(ctx, i, device, stop)),
        };
    }
    let reporter = ctx
        .opts
        .print
        .then(|| tokio::spawn(report_every_second(stats.clone(), started, stop_rx.clone())));

    let until_done = async {
        match ctx.opts.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = until_done => {}
        _ = shutdown => {}
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    let finished = tokio::time::timeout(GRACE, async { while tasks.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        stats.note(format!(
            "{} devices still busy after {GRACE:?}; stopped them",
            tasks.len()
        ));
        tasks.abort_all();
    }
    if let Some(r) = reporter {
        let _ = r.await;
    }

    let c = stats.counts();
    let latency = stats.total_latency();
    let totals = Totals {
        sent: c.sent,
        acked: c.acked,
        duplicates: c.duplicates,
        rejected: c.rejected,
        errors: c.errors,
        unconfirmed: c.sent.saturating_sub(c.acked + c.duplicates + c.rejected + c.errors),
        retries: stats.retries.load(Ordering::Relaxed),
        reconnects: stats.reconnects.load(Ordering::Relaxed),
        commands: stats.commands.load(Ordering::Relaxed),
        elapsed,
        latency_p50: latency.quantile(0.5),
        latency_p99: latency.quantile(0.99),
    };
    if ctx.opts.print {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let what = match ctx.opts.transport {
            Transport::Http => "HTTP request",
            Transport::Mqtt => "publish to PubAck",
        };
        println!(
            "summary: {} devices over {} for {secs:.1} s: sent {} ({:.1}/s), acked {} ({:.1}/s), \
             duplicates {}, rejected {}, errors {}, unconfirmed {}",
            fleet.devices.len(),
            ctx.opts.transport.as_str(),
            totals.sent,
            totals.sent as f64 / secs,
            totals.acked,
            totals.acked as f64 / secs,
            totals.duplicates,
            totals.rejected,
            totals.errors,
            totals.unconfirmed,
        );
        println!(
            "latency ({what}): p50 {} ms, p90 {} ms, p99 {} ms, max {} ms; retries {}, reconnects {}, commands answered {}",
            ms(totals.latency_p50),
            ms(latency.quantile(0.9)),
            ms(totals.latency_p99),
            ms(latency.quantile(1.0)),
            totals.retries,
            totals.reconnects,
            totals.commands,
        );
    }
    Ok(Outcome {
        acked_per_device: stats
            .acked_per_device
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect(),
        fleet,
        totals,
    })
}

/// `vitalfarm simulate`: runs until `--duration` or Ctrl-C.
pub async fn command(args: SimulateArgs) -> anyhow::Result<()> {
    vitalfarm_app::install_crypto_provider();
    let opts = SimOptions::from_args(args)?;
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    run(opts, ctrl_c).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitalfarm_domain::metrics;

    #[test]
    fn reading_json_is_an_ingest_item() {
        let sample = Sample {
            metric: "blood_pressure",
            value: SampleValue::Components(vec![("systolic", 121.0), ("diastolic", 79.0)]),
            unit: "mm[Hg]",
        };
        assert_eq!(
            reading_json(&sample, 1_795_000_000_123),
            json!({"metric": "blood_pressure", "ts": "2026-11-18T11:06:40.123Z",
                   "components": {"systolic": 121.0, "diastolic": 79.0}, "unit": "mm[Hg]"})
        );
        let hr = Sample {
            metric: "heart_rate",
            value: SampleValue::Scalar(72.0),
            unit: "/min",
        };
        let v = reading_json(&hr, 0);
        assert_eq!(v["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["value"], 72.0);
        assert!(v.get("components").is_none());
        let parsed: vitalfarm_openapi::readings::ReadingIn = serde_json::from_value(v).unwrap();
        assert_eq!(parsed.unit.as_deref(), Some("/min"));
    }

    #[test]
    fn timestamps_are_unique_per_metric_and_values_valid() {
        let mut p = Producer::new(9, 3, DEFAULT_METRICS.to_vec().into());
        let batch = p.batch(600);
        let mut seen = std::collections::HashSet::new();
        for r in &batch {
            let key = (
                r["metric"].as_str().unwrap().to_owned(),
                r["ts"].as_str().unwrap().to_owned(),
            );
            assert!(seen.insert(key), "repeated {r}");
            let comps: Option<Vec<(String, f64)>> = r["components"]
                .as_object()
                .map(|c| c.iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect());
            metrics::normalize(
                r["metric"].as_str().unwrap(),
                r["value"].as_f64(),
                comps.as_deref(),
                r["unit"].as_str(),
            )
            .unwrap();
        }
        // Device 3 starts its rotation at its own place.
        assert_eq!(batch[0]["metric"], DEFAULT_METRICS[3].code());
    }

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        for (q, want) in [(0.5, 5_000.0), (0.99, 9_900.0), (1.0, 10_000.0)] {
            let got = h.quantile(q).unwrap().as_micros() as f64;
            assert!((got - want).abs() / want < 0.07, "q{q}: {got} vs {want}");
        }
        for us in [0, 1, 15, 16, 17, 31, 32, 1 << 20, u64::MAX] {
            let i = Histogram::index(us);
            assert!(Histogram::lower(i) <= us && i < h.counts.len(), "{us}");
        }
    }

    #[test]
    fn options_are_checked() {
        let ok = SimOptions::http("http://x", 2, 0.2);
        assert_eq!(ok.period().unwrap(), Duration::from_secs(5));
        let mut bad = ok.clone();
        bad.rate = 0.0;
        assert!(bad.period().is_err());
        let mut bad = ok.clone();
        bad.batch = MAX_BATCH + 1;
        assert!(bad.period().is_err());
        assert_eq!(mqtt_address("mqtt://broker:1884").unwrap(), ("broker".into(), 1884));
        assert_eq!(mqtt_address("mqtt://127.0.0.1").unwrap(), ("127.0.0.1".into(), 1883));
        assert!(mqtt_address("mqtts://broker").is_err());
        assert!(topic_safe("0193-ab") && !topic_safe("a/b") && !topic_safe("#") && !topic_safe(""));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let d = SimDevice {
            id: Uuid::nil(),
            secret: "vf_dev_topsecret".into(),
            subject_id: Uuid::nil(),
        };
        let f = Fleet {
            token: "eyJtoken".into(),
            membership_id: Uuid::nil(),
            email: "a@example.com".into(),
            devices: vec![d],
        };
        let o = Owner {
            email: "a@example.com".into(),
            password: "hunter2hunter2".into(),
        };
        let text = format!("{f:?} {o:?}");
        assert!(!text.contains("topsecret") && !text.contains("eyJtoken") && !text.contains("hunter2"));
    }
}
