//! `vitalfarm demo`: a guided run of the mashup layer through the public API
//! only, the way a third-party developer would drive it.
//!
//! It starts the service on embedded defaults in a scratch directory (or
//! talks to `--url`), then plays one morning at a care service: a company
//! with enrollees and their devices, a family with an infant and a
//! grandmother who consented to the care service watching her, a day of
//! readings, a webhook receiver and a live stream. It prints the
//! elderly-watch board (one subject in hypertensive crisis, one gone
//! silent), the infant-monitor report (a fever episode), a cohort table with
//! its small groups suppressed, the signed webhook deliveries it verified
//! and the readings the stream showed live. Every step checks its answer; the
//! integration tests run the same function and assert on the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Days, SecondsFormat, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

use vitalfarm_api::server;
use vitalfarm_app::config::Config;

/// Where the demo runs.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// A running vitalfarm to drive (`http://host:port`), which must allow
    /// webhooks to loopback (`webhook_allow_private_networks`) since the
    /// demo's receiver listens there; without it the demo starts one on
    /// embedded defaults in a scratch directory.
    pub url: Option<String>,
}

/// What the demo saw, for printing and for tests.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub company_id: Uuid,
    /// The elderly-watch answer as the API gave it.
    pub elderly_watch: Value,
    /// Display names by subject id, for the board.
    pub names: BTreeMap<String, String>,
    pub infant_monitor: Value,
    pub cohort: Value,
    pub webhooks: Vec<WebhookSeen>,
    pub stream: Vec<StreamSeen>,
    /// Subject ids of the cast, by role.
    pub crisis_subject: Uuid,
    pub silent_subject: Uuid,
    pub infant_subject: Uuid,
    pub consented_subject: Uuid,
}

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
pub struct WebhookSeen {
    pub id: String,
    pub event_type: String,
    /// Whether `webhook-signature` verified with the endpoint's secret.
    pub signature_valid: bool,
    pub body: Value,
}

/// One event the stream client read.
#[derive(Debug, Clone)]
pub struct StreamSeen {
    pub event: String,
    pub data: Value,
    /// From sending the reading to reading it off the stream (readings the
    /// demo sent itself only).
    pub latency: Option<Duration>,
}

const PASSWORD: &str = "demo-Passw0rd-long-enough";
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// `vitalfarm demo`: runs the demo and prints its report.
#[allow(clippy::print_stdout, reason = "the demo reports on stdout")]
pub async fn command(opts: DemoOptions) -> anyhow::Result<()> {
    let report = run(opts).await?;
    print!("{}", report.render());
    Ok(())
}

/// Runs the demo against `opts.url`, or a fresh embedded service.
pub async fn run(opts: DemoOptions) -> anyhow::Result<DemoReport> {
    match opts.url {
        Some(url) => play(&url).await,
        None => {
            let dir = tempfile::tempdir().context("creating a scratch directory")?;
            let config = Config {
                data_dir: dir.path().to_path_buf(),
                no_mqtt: true,
                // The demo's webhook receiver listens on loopback.
                webhook_allow_private_networks: true,
                ..Config::default()
            };
            let state = vitalfarm_app::AppState::prepare(config).await?;
            let running = server::start(state, TcpListener::bind("127.0.0.1:0")?, false).await?;
            let outcome = play(&format!("http://{}", running.addr)).await;
            running.handle.stop(true).await;
            outcome
        }
    }
}

/// A thin client of the public API that fails with the server's problem
/// document.
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let resp = req.send().await.with_context(|| format!("{what}: request failed"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{what}: {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{what}: the answer is not JSON"))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value, what: &str) -> anyhow::Result<Value> {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req, what).await
    }

    async fn get(&self, path: &str, token: &str, what: &str) -> anyhow::Result<Value> {
        self.send(self.client.get(format!("{}{path}", self.base)).bearer_auth(token), what)
            .await
    }

    async fn signup(&self, email: &str, kind: &str, name: &str) -> anyhow::Result<Account> {
        let res = self
            .post(
                "/v1/auth/signup",
                None,
                json!({
                    "email": email, "password": PASSWORD, "display_name": name,
                    "membership": {"kind": kind, "name": name}
                }),
                "signing up",
            )
            .await?;
        Ok(Account {
            membership: uuid_at(&res, "/membership/id")?,
            token: str_at(&res, "/tokens/access_token")?,
        })
    }

    async fn subject(&self, who: &Account, kind: &str, name: &str, age_years: u64, sex: &str) -> anyhow::Result<Uuid> {
        let birth = Utc::now()
            .date_naive()
            .checked_sub_days(Days::new(age_years * 365 + 40))
            .context("a birth date before the calendar")?;
        let res = self
            .post(
                &format!("/v1/memberships/{}/subjects", who.membership),
                Some(&who.token),
                json!({"kind": kind, "display_name": name, "birth_date": birth, "sex": sex}),
                "adding a subject",
            )
            .await?;
        uuid_at(&res, "/id")
    }

    /// Registers a device of `maker` and binds it to `subject` of `owner`:
    /// assigned when the owner is the maker, claimed otherwise.
    async fn device(&self, maker: &Account, owner: &Account, subject: Uuid, serial: &str) -> anyhow::Result<Device> {
        let reg = self
            .post(
                &format!("/v1/memberships/{}/devices", maker.membership),
                Some(&maker.token),
                json!({"serial": serial}),
                "registering a device",
            )
            .await?;
        let id = uuid_at(&reg, "/devices/0/device_id")?;
        let secret = str_at(&reg, "/devices/0/secret")?;
        if maker.membership == owner.membership {
            self.post(
                &format!("/v1/devices/{id}/assign"),
                Some(&maker.token),
                json!({"subject_id": subject}),
                "assigning a device",
            )
            .await?;
        } else {
            self.post(
                "/v1/devices/claim",
                Some(&owner.token),
                json!({"claim_code": str_at(&reg, "/devices/0/claim_code")?, "subject_id": subject}),
                "claiming a device",
            )
            .await?;
        }
        Ok(Device { id, secret })
    }

    async fn ingest(&self, device: &Device, readings: Vec<Value>) -> anyhow::Result<()> {
        for chunk in readings.chunks(1000) {
            let res = self
                .send(
                    self.client
                        .post(format!("{}/v1/ingest/readings", self.base))
                        .header("authorization", format!("Device {}:{}", device.id, device.secret))
                        .json(&json!({"readings": chunk})),
                    "sending readings",
                )
                .await?;
            let rejected = res["rejected"].as_array().map_or(0, Vec::len);
            ensure!(rejected == 0, "the service rejected demo readings: {res}");
        }
        Ok(())
    }
}

struct Account {
    membership: Uuid,
    token: String,
}

struct Device {
    id: Uuid,
    secret: String,
}

fn str_at(v: &Value, pointer: &str) -> anyhow::Result<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no {pointer} in {v}"))
}

fn uuid_at(v: &Value, pointer: &str) -> anyhow::Result<Uuid> {
    Ok(str_at(v, pointer)?.parse()?)
}

fn ts(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A quiet day's vitals every `every` minutes over `[from, to)`: heart rate
/// and SpO2 each time, blood pressure and temperature every third time.
/// `wobble` keeps subjects apart.
fn steady(from: i64, to: i64, every: i64, wobble: f64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut t = from;
    let mut k = 0u32;
    while t < to {
        let w = f64::from(k % 7) - 3.0;
        out.push(json!({"metric": "heart_rate", "ts": ts(t), "value": 68.0 + wobble + w}));
        out.push(json!({"metric": "spo2", "ts": ts(t), "value": 97.0 + (w / 3.0).round()}));
        if k.is_multiple_of(3) {
            out.push(json!({"metric": "blood_pressure", "ts": ts(t),
                "components": {"systolic": 122.0 + wobble + w, "diastolic": 78.0 + w}}));
            out.push(json!({"metric": "body_temperature", "ts": ts(t), "value": 36.6 + w / 20.0}));
        }
        t += every * MINUTE_MS;
        k += 1;
    }
    out
}

/// An infant's day with a fever from `fever.0` to `fever.1`.
fn infant_day(from: i64, to: i64, fever: (i64, i64)) -> Vec<Value> {
    let mut out = Vec::new();
    let mut t = from;
    let mut k = 0u32;
    while t < to {
        let w = f64::from(k % 5) - 2.0;
        let feverish = t >= fever.0 && t < fever.1;
        let temp = if feverish {
            // Up to 39.4 °C in the middle of the episode.
            let mid = (fever.0 + fever.1) / 2;
            let half = ((fever.1 - fever.0) / 2).max(1);
            39.4 - 0.8 * ((t - mid).abs() as f64 / half as f64)
        } else {
            36.9 + w / 20.0
        };
        out.push(json!({"metric": "body_temperature", "ts": ts(t), "value": (temp * 10.0).round() / 10.0}));
        out.push(json!({"metric": "heart_rate", "ts": ts(t), "value": if feverish { 158.0 + w } else { 125.0 + w }}));
        out.push(json!({"metric": "spo2", "ts": ts(t), "value": 98.0 + (w / 2.0).round().min(1.0)}));
        t += 15 * MINUTE_MS;
        k += 1;
    }
    out
}

/// The HMAC of Standard Webhooks over `id.timestamp.body`, checked against
/// every `v1,` signature of the header.
fn verify_signature(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(key) = secret.strip_prefix("whsec_").and_then(|s| B64.decode(s).ok()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let mut signed = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|sig| {
        B64.decode(sig)
            .is_ok_and(|sig| hmac::verify(&key, &signed, &sig).is_ok())
    })
}

/// A webhook receiver on a loopback port, recording what it is sent.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<(actix_web::http::header::HeaderMap, bytes::Bytes)>>>,
    handle: actix_web::dev::ServerHandle,
}

async fn receiver() -> anyhow::Result<Receiver> {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let seen: Arc<Mutex<Vec<_>>> = Arc::default();
    let data = web::Data::new(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).default_service(web::to(
            |req: HttpRequest, body: web::Bytes, seen: web::Data<Arc<Mutex<Vec<_>>>>| async move {
                if let Ok(mut seen) = seen.lock() {
                    seen.push((req.headers().clone(), body));
                }
                HttpResponse::NoContent().finish()
            },
        ))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(Receiver {
        url: format!("http://{addr}/hooks/vitalfarm"),
        seen,
        handle,
    })
}

/// Reads the stream in the background: every event with the time it came.
fn stream_client(resp: reqwest::Response) -> Arc<Mutex<Vec<(String, Value, Instant)>>> {
    let events: Arc<Mutex<Vec<(String, Value, Instant)>>> = Arc::default();
    let sink = events.clone();
    tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            // An event ends with a blank line.
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                if let Ok(mut sink) = sink.lock() {
                    sink.push((event, value, Instant::now()));
                }
            }
        }
    });
    events
}

/// Polls `check` every 100 ms for up to `limit`.
async fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

async fn play(base: &str) -> anyhow::Result<DemoReport> {
    let api = Api {
        client: reqwest::Client::new(),
        base: base.trim_end_matches('/').to_owned(),
    };
    // Addresses unique to this run, so a demo can run against a service
    // that has seen one before.
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let now = Utc::now().timestamp_millis();
    let mut names = BTreeMap::new();

    progress("a care service, a device maker and a family sign up");
    let care = api
        .signup(&format!("owner-{tag}@sunrise-care.example"), "company", "Sunrise Care")
        .await?;
    let maker = api
        .signup(
            &format!("owner-{tag}@pulse-devices.example"),
            "company",
            "Pulse Devices",
        )
        .await?;
    let family = api
        .signup(&format!("maria-{tag}@family.example"), "individual", "Maria Rossi")
        .await?;

    // The enrollees: ages and sexes chosen so that one cohort group is
    // large enough to publish and the others are not.
    let cast: [(&str, u64, &str); 12] = [
        ("Ada Lovelace", 79, "female"),
        ("Bert Jansen", 83, "male"),
        ("Carla Mendes", 71, "female"),
        ("Dora Klein", 74, "female"),
        ("Edith Moreau", 68, "female"),
        ("Frida Olsen", 77, "female"),
        ("Greta Novak", 70, "female"),
        ("Hugo Berg", 72, "male"),
        ("Ivan Petrov", 69, "male"),
        ("Jonas Weber", 75, "male"),
        ("Karl Fischer", 86, "male"),
        ("Lena Braun", 88, "female"),
    ];
    progress("Sunrise Care enrolls 12 residents, each with a monitoring band");
    let mut residents = Vec::new();
    for (i, (name, age, sex)) in cast.iter().enumerate() {
        let sid = api.subject(&care, "enrollee", name, *age, sex).await?;
        let device = api.device(&care, &care, sid, &format!("SC-{tag}-{:02}", i + 1)).await?;
        names.insert(sid.to_string(), (*name).to_owned());
        residents.push((sid, device));
    }
    let (crisis_subject, crisis_device) = (residents[0].0, &residents[0].1);
    let (silent_subject, _) = (residents[1].0, &residents[1].1);

    progress("the family adds baby Leo and grandmother Rosa, with devices from Pulse Devices");
    let infant = api.subject(&family, "dependent", "Leo Rossi", 0, "male").await?;
    let rosa = api.subject(&family, "dependent", "Rosa Rossi", 84, "female").await?;
    names.insert(infant.to_string(), "Leo Rossi".to_owned());
    names.insert(rosa.to_string(), "Rosa Rossi".to_owned());
    let leo_band = api.device(&maker, &family, infant, &format!("PD-{tag}-LEO")).await?;
    let rosa_band = api.device(&maker, &family, rosa, &format!("PD-{tag}-ROSA")).await?;

    progress("Maria lets Sunrise Care watch over Rosa (purpose: care)");
    api.post(
        "/v1/consents",
        Some(&family.token),
        json!({
            "grantee_membership_id": care.membership,
            "subject_ids": [rosa],
            "metrics": ["heart_rate", "blood_pressure", "body_temperature", "spo2"],
            "farm_paths": [],
            "purpose": "care",
            "access": "read",
            "expires_at": ts(now + 90 * 24 * HOUR_MS),
        }),
        "granting a consent",
    )
    .await?;

    progress("twelve hours of readings arrive (one resident stops sending five hours ago)");
    let day_start = now - 12 * HOUR_MS;
    for (i, (sid, device)) in residents.iter().enumerate() {
        let until = if *sid == silent_subject {
            now - 5 * HOUR_MS
        } else {
            now - 10 * MINUTE_MS
        };
        api.ingest(device, steady(day_start, until, 10, i as f64)).await?;
    }
    api.ingest(&rosa_band, steady(day_start, now - 10 * MINUTE_MS, 10, 2.0))
        .await?;
    let fever = (now - 10 * HOUR_MS, now - 6 * HOUR_MS);
    api.ingest(&leo_band, infant_day(now - 24 * HOUR_MS, now - 15 * MINUTE_MS, fever))
        .await?;

    progress("Sunrise Care subscribes a webhook to alerts and adds a rule for hypertensive crisis");
    let hooks = receiver().await?;
    let hook = api
        .post(
            &format!("/v1/memberships/{}/webhooks", care.membership),
            Some(&care.token),
            json!({"url": hooks.url, "events": ["alert.opened", "alert.resolved"],
                   "description": "night desk pager"}),
            "registering a webhook",
        )
        .await?;
    let secret = str_at(&hook, "/secret")?;
    api.post(
        &format!("/v1/memberships/{}/alert-rules", care.membership),
        Some(&care.token),
        json!({"name": "Hypertensive crisis", "metric": "blood_pressure", "component": "systolic",
               "condition": {"kind": "threshold", "op": "gt", "value": 180}, "severity": "critical"}),
        "creating an alert rule",
    )
    .await?;

    progress("the night desk opens the live stream");
    let stream_resp = api
        .client
        .get(format!("{}/v1/memberships/{}/stream", api.base, care.membership))
        .bearer_auth(&care.token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .context("opening the stream")?;
    ensure!(
        stream_resp.status().is_success(),
        "opening the stream: {}",
        stream_resp.status()
    );
    let events = stream_client(stream_resp);
    // The stream starts at "now": give it a moment to take its cursor.
    tokio::time::sleep(Duration::from_millis(500)).await;

    progress("new readings come in: Carla's and Rosa's routine ones, then Ada's blood pressure spikes");
    let mut sent_at = Vec::new();
    let live_ts = now;
    for (sid, device) in [(residents[2].0, &residents[2].1)] {
        sent_at.push((sid, Instant::now()));
        api.ingest(
            device,
            vec![json!({"metric": "heart_rate", "ts": ts(live_ts), "value": 71})],
        )
        .await?;
    }
    sent_at.push((rosa, Instant::now()));
    api.ingest(
        &rosa_band,
        vec![json!({"metric": "heart_rate", "ts": ts(live_ts), "value": 74})],
    )
    .await?;
    sent_at.push((crisis_subject, Instant::now()));
    api.ingest(
        crisis_device,
        vec![json!({"metric": "blood_pressure", "ts": ts(live_ts),
                     "components": {"systolic": 192, "diastolic": 124}})],
    )
    .await?;

    let live: Vec<Uuid> = sent_at.iter().map(|(s, _)| *s).collect();
    let seen_all = wait_until(Duration::from_secs(10), || {
        events.lock().is_ok_and(|e| {
            live.iter().all(|s| {
                e.iter()
                    .any(|(kind, data, _)| kind == "reading" && data["subject_id"] == json!(s))
            }) && e.iter().any(|(kind, _, _)| kind == "alert")
        })
    })
    .await;
    ensure!(
        seen_all,
        "the stream did not show the live readings and the alert within 10 s"
    );
    let delivered = wait_until(Duration::from_secs(15), || {
        hooks.seen.lock().is_ok_and(|s| !s.is_empty())
    })
    .await;
    ensure!(delivered, "no webhook delivery within 15 s");

    let stream: Vec<StreamSeen> = events
        .lock()
        .map_err(|_| anyhow::anyhow!("stream client poisoned"))?
        .iter()
        .map(|(event, data, at)| StreamSeen {
            event: event.clone(),
            latency: sent_at
                .iter()
                .find(|(s, _)| event == "reading" && data["subject_id"] == json!(s))
                .map(|(_, sent)| at.saturating_duration_since(*sent)),
            data: data.clone(),
        })
        .collect();
    let webhooks: Vec<WebhookSeen> = hooks
        .seen
        .lock()
        .map_err(|_| anyhow::anyhow!("receiver poisoned"))?
        .iter()
        .map(|(headers, body)| {
            let h = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            WebhookSeen {
                signature_valid: verify_signature(
                    &secret,
                    &h("webhook-id"),
                    &h("webhook-timestamp"),
                    body,
                    &h("webhook-signature"),
                ),
                id: h("webhook-id"),
                event_type: parsed["type"].as_str().unwrap_or_default().to_owned(),
                body: parsed,
            }
        })
        .collect();
    hooks.handle.stop(true).await;

    progress("the morning round: elderly-watch over every resident Sunrise Care may see");
    let elderly_watch = api
        .post(
            "/v1/mashups/elderly-watch/run",
            Some(&care.token),
            json!({"membership_id": care.membership}),
            "running elderly-watch",
        )
        .await?;

    progress("Maria looks at Leo's last 24 hours");
    let infant_monitor = api
        .get(
            &format!(
                "/v1/mashups/infant-monitor/{infant}?from={}&to={}",
                ts(now - 24 * HOUR_MS),
                ts(now + MINUTE_MS)
            ),
            &family.token,
            "running infant-monitor",
        )
        .await?;

    progress("Sunrise Care's cohort of heart rates, by age band and sex (k = 5)");
    let cohort = api
        .post(
            "/v1/analytics/cohort",
            Some(&care.token),
            json!({"membership_id": care.membership, "metric": "heart_rate",
                   "from": ts(now - 24 * HOUR_MS), "to": ts(now + MINUTE_MS), "k": 5}),
            "running the cohort aggregate",
        )
        .await?;

    Ok(DemoReport {
        company_id: care.membership,
        elderly_watch,
        names,
        infant_monitor,
        cohort,
        webhooks,
        stream,
        crisis_subject,
        silent_subject,
        infant_subject: infant,
        consented_subject: rosa,
    })
}

#[allow(clippy::print_stderr, reason = "progress goes to stderr, the report to stdout")]
fn progress(step: &str) {
    eprintln!("· {step}");
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "-".to_owned(),
    }
}

impl DemoReport {
    /// The elderly-watch entry of `subject`.
    pub fn status_of(&self, subject: Uuid) -> Option<&Value> {
        self.elderly_watch["subjects"]
            .as_array()?
            .iter()
            .find(|s| s["subject_id"] == json!(subject))
    }

    /// The report as the terminal shows it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let name = |id: &Value| {
            id.as_str()
                .and_then(|s| self.names.get(s))
                .cloned()
                .unwrap_or_else(|| id.to_string())
        };

        let _ = writeln!(out, "\n== Elderly-watch board ==");
        let _ = writeln!(out, "{:<14} {:<10} reasons", "subject", "status");
        for s in self.elderly_watch["subjects"].as_array().into_iter().flatten() {
            let reasons: Vec<String> = s["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let values: Vec<String> = r["values"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| format!("{k} {}", num(v)))
                        .collect();
                    format!(
                        "{} {} ({})",
                        r["rule"].as_str().unwrap_or("?"),
                        r["category"].as_str().unwrap_or_default(),
                        values.join(", ")
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "{:<14} {:<10} {}",
                name(&s["subject_id"]),
                s["status"].as_str().unwrap_or("?"),
                if reasons.is_empty() {
                    "-".to_owned()
                } else {
                    reasons.join("; ")
                }
            );
        }
        let _ = writeln!(out, "summary: {}", self.elderly_watch["summary"]);

        let _ = writeln!(out, "\n== Infant monitor: Leo, last 24 hours ==");
        for metric in ["temperature", "spo2", "heart_rate"] {
            let m = &self.infant_monitor["metrics"][metric];
            let _ = writeln!(
                out,
                "{metric:<12} n={:<4} min={:<6} mean={:<6} max={:<6} norm {}–{}",
                num(&m["count"]),
                num(&m["min"]),
                num(&m["mean"]),
                num(&m["max"]),
                num(&m["norm"]["low"]),
                num(&m["norm"]["high"]),
            );
        }
        for e in self.infant_monitor["episodes"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "episode: {} {} from {} to {}, worst {}",
                e["metric"].as_str().unwrap_or("?"),
                e["kind"].as_str().unwrap_or("?"),
                e["start"].as_str().unwrap_or("?"),
                e["end"].as_str().unwrap_or("?"),
                num(&e["worst"]["value"]),
            );
        }

        let _ = writeln!(
            out,
            "\n== Cohort: heart rate by age band and sex (k = {}) ==",
            self.cohort["k"]
        );
        let _ = writeln!(
            out,
            "{:<10} {:<8} {:>8} {:>9} {:>7}",
            "age band", "sex", "subjects", "readings", "mean"
        );
        for g in self.cohort["groups"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "{:<10} {:<8} {:>8} {:>9} {:>7}",
                g["age_band"].as_str().unwrap_or("all"),
                g["sex"].as_str().unwrap_or("all"),
                num(&g["subjects"]),
                num(&g["readings"]),
                num(&g["mean"]),
            );
        }
        for g in self.cohort["suppressed"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "{:<10} {:<8} {:>8}",
                g["age_band"].as_str().unwrap_or("all"),
                g["sex"].as_str().unwrap_or("all"),
                "suppressed (fewer than k subjects)",
            );
        }

        let _ = writeln!(out, "\n== Webhook receiver ==");
        for w in &self.webhooks {
            let _ = writeln!(
                out,
                "{} {} signature {}",
                w.id,
                w.event_type,
                if w.signature_valid { "verified" } else { "INVALID" }
            );
        }

        let _ = writeln!(out, "\n== Live stream (SSE) ==");
        for s in &self.stream {
            let who = name(&s.data["subject_id"]);
            let latency = s
                .latency
                .map(|d| format!(" ({} ms after it was sent)", d.as_millis()))
                .unwrap_or_default();
            let what = match s.event.as_str() {
                "alert" => format!(
                    "{} {}",
                    s.data["type"].as_str().unwrap_or_default(),
                    s.data["data"]["rule_name"].as_str().unwrap_or_default()
                ),
                _ => s.data["metric"].as_str().unwrap_or_default().to_owned(),
            };
            let _ = writeln!(out, "{:<8} {who:<14} {what}{latency}", s.event);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_content() {
        let secret = format!("whsec_{}", B64.encode(b"0123456789abcdef0123456789abcdef"));
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef0123456789abcdef");
        let sig = B64.encode(hmac::sign(&key, b"msg_1.1700000000.{\"a\":1}").as_ref());
        let header = format!("v1,bogus v1,{sig}");
        assert!(verify_signature(&secret, "msg_1", "1700000000", b"{\"a\":1}", &header));
        assert!(!verify_signature(&secret, "msg_1", "1700000001", b"{\"a\":1}", &header));
        assert!(!verify_signature(&secret, "msg_1", "1700000000", b"{\"a\":2}", &header));
        assert!(!verify_signature(
            "whsec_AAAA",
            "msg_1",
            "1700000000",
            b"{\"a\":1}",
            &header
        ));
    }

    #[test]
    fn the_infant_day_has_its_fever_inside_the_episode_only() {
        let day = infant_day(0, 24 * HOUR_MS, (10 * HOUR_MS, 14 * HOUR_MS));
        let temps: Vec<(i64, f64)> = day
            .iter()
            .filter(|r| r["metric"] == "body_temperature")
            .map(|r| {
                let t = DateTime::parse_from_rfc3339(r["ts"].as_str().unwrap_or_default())
                    .map(|d| d.timestamp_millis())
                    .unwrap_or_default();
                (t, r["value"].as_f64().unwrap_or_default())
            })
            .collect();
        assert!(temps.iter().any(|(_, v)| *v >= 39.0));
        for (t, v) in temps {
            let inside = (10 * HOUR_MS..14 * HOUR_MS).contains(&t);
            assert_eq!(inside, v >= 38.0, "at {t}: {v}");
        }
    }
}
