//! Crash tests with real processes: a vitalfarm server runs as a child
//! process (this test binary, re-entered through `child_server`), devices
//! stream readings at it, the server is killed with SIGKILL mid-stream and
//! started again, and afterwards every reading is stored exactly once.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde_json::{Value, json};
use vitalfarm_app::config::{Config, Overrides};
use vitalfarm_tests::TestApp;

const READINGS: usize = 20_000;

/// The server process of the fault tests. Ignored in normal runs; the
/// tests start it with its configuration in `VITALFARM_*` variables.
#[tokio::test]
#[ignore = "the fault tests run it as their server process"]
async fn child_server() {
    if std::env::var_os("VITALFARM_CHILD").is_none() {
        return;
    }
    vitalfarm_app::install_crypto_provider();
    let config = Config::load(None, Overrides::default()).expect("child configuration");
    vitalfarm_api::server::serve(config).await.expect("child server runs");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A vitalfarm server in a child process, on fixed ports so that clients
/// find it again after a restart.
struct ServerProcess {
    config: Config,
    process: Option<Child>,
}

impl ServerProcess {
    fn new(config: Config) -> Self {
        Self { config, process: None }
    }

    async fn start(&mut self) {
        let c = &self.config;
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "faults::child_server",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VITALFARM_CHILD", "1")
        .env("VITALFARM_BIND", &c.bind)
        .env("VITALFARM_DATA_DIR", &c.data_dir)
        .env("VITALFARM_DATABASE_URL", c.database_url.as_deref().unwrap())
        .env("VITALFARM_NO_MQTT", "false")
        .env("VITALFARM_MQTT_BIND", &c.mqtt_bind)
        .env("VITALFARM_MQTT_MOUNTPOINT", &c.mqtt_mountpoint)
        .env("VITALFARM_MQTT_CLIENT_ID", &c.mqtt_client_id)
        .env("VITALFARM_PUBLIC_URL", c.public_url.as_deref().unwrap())
        .env(
            "VITALFARM_LOG_LEVEL",
            std::env::var("VITALFARM_TEST_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
        );
        if let Some(url) = &c.mqtt_url {
            cmd.env("VITALFARM_MQTT_URL", url);
        }
        if let Some(url) = &c.object_store_url {
            cmd.env("VITALFARM_OBJECT_STORE_URL", url);
        }
        if std::env::var_os("VITALFARM_TEST_LOG").is_none() {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        self.process = Some(cmd.spawn().expect("child server starts"));
        let health = format!("http://{}/readyz", c.bind);
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(&health).await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the child server did not become ready");
    }

    /// SIGKILL: no shutdown, no flush, as in a crash.
    fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill().unwrap();
            p.wait().unwrap();
        }
    }
}

impl ServerProcess {
    /// Sends `signal` (`TERM`, as an orchestrator stops a service, or
    /// `INT`, Ctrl-C); returns the exit status
    /// and how long the process took to exit (`None`: still running after
    /// `patience`, and then killed).
    async fn signal(&mut self, signal: &str, patience: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let mut p = self.process.take()?;
        let sent = std::time::Instant::now();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &p.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        while sent.elapsed() < patience {
            if let Some(status) = p.try_wait().unwrap() {
                return Some((status, sent.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = p.kill();
        let _ = p.wait();
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private Mosquitto that queues without limit for offline sessions (the
/// default keeps only 1,000, which a 20,000-message outage would exceed).
/// No in-flight quota either: Debian's 2.0.11 miscounts the quota when a
/// session resumes with messages in flight and then stops delivering
/// (fixed upstream in 2.0.13).
struct Mosquitto {
    process: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Mosquitto {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\n"
            ),
        )
        .unwrap();
        let process = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            process,
            _dir: dir,
            port,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn reading(i: usize) -> Value {
    let ts =
        chrono::DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z").unwrap() + chrono::Duration::seconds(i as i64);
    json!({"metric": "heart_rate", "ts": ts.to_rfc3339(), "value": 55 + (i % 60)})
}

/// Sets up a company device on the database the child will use, then
/// stops the in-process server: (child, device, secret, subject).
async fn prepared(
    tweak: impl FnOnce(&mut Config),
) -> (ServerProcess, tempfile::TempDir, String, String, String, String) {
    let (bind, mqtt) = (free_port(), free_port());
    let app = TestApp::spawn_with(|c| {
        c.mqtt_bind = format!("127.0.0.1:{mqtt}");
        // The token issuer stays the same whichever port serves.
        c.public_url = Some("http://vitalfarm.test".into());
        tweak(c);
    })
    .await;
    let care = app.company("faults@acme.example").await;
    let d = app.monitored_device(&care, "FT-1").await;
    let (device, secret, subject) = (d.id, d.secret, d.subject);
    let (mut config, dir) = app.stop().await;
    config.bind = format!("127.0.0.1:{bind}");
    (ServerProcess::new(config), dir, device, secret, subject, care.token)
}

/// What the server holds in the end: a fresh in-process server on the same
/// database counts the subject's heart-rate readings.
async fn stored(child: ServerProcess, dir: tempfile::TempDir, token: &str, subject: &str) -> u64 {
    let config = child.config.clone();
    drop(child);
    let app = TestApp::resume(config, dir).await;
    count_at(&app.base, token, subject).await
}

/// The subject's stored heart-rate readings, by the server at `base`.
/// The window holds every reading the tests send: `reading(i)` is `i`
/// seconds after 2026-11-20, and `i` stays below 300,000 (3.5 days).
async fn count_at(base: &str, token: &str, subject: &str) -> u64 {
    let res = reqwest::Client::new()
        .get(format!(
            "{base}/v1/subjects/{subject}/summary?from=2026-11-19T00:00:00Z&to=2026-11-24T00:00:00Z"
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["metric"] == "heart_rate"))
        .and_then(|m| m["count"].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn mqtt_readings_survive_a_kill_and_restart_exactly_once() {
    let mosquitto = match vitalfarm_tests::external_mqtt_url() {
        Some(_) => Some(Mosquitto::start().await),
        None => None,
    };
    let external = mosquitto.as_ref().map(|m| format!("mqtt://127.0.0.1:{}", m.port));
    let (mut child, dir, device, secret, subject, token) = prepared(|c| {
        if let Some(url) = &external {
            c.no_mqtt = false;
            c.mqtt_url = Some(url.clone());
            c.mqtt_client_id = format!("vft-fault-{}", uuid::Uuid::now_v7().simple());
        }
    })
    .await;
    child.start().await;

    let (host, port) = match &mosquitto {
        Some(m) => ("127.0.0.1".to_owned(), m.port),
        None => {
            let addr: std::net::SocketAddr = child.config.mqtt_bind.parse().unwrap();
            (addr.ip().to_string(), addr.port())
        }
    };
    let mut options = rumqttc::MqttOptions::new(&device, host, port);
    options
        .set_credentials(&device, &secret)
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let topic = format!("{}vitalfarm/v1/devices/{device}/readings", child.config.mqtt_mountpoint);
    let publisher = tokio::spawn(async move {
        for i in 0..READINGS {
            let body = json!({"readings": [reading(i)]}).to_string();
            client
                .publish(topic.clone(), QoS::AtLeastOnce, false, body)
                .await
                .unwrap();
        }
        client
    });

    let mut acked = 0;
    let mut killed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while acked < READINGS {
        assert!(tokio::time::Instant::now() < deadline, "stalled at {acked} acks");
        if !killed && acked >= READINGS / 4 {
            child.kill();
            tokio::time::sleep(Duration::from_millis(300)).await;
            child.start().await;
            killed = true;
        }
        match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) | Err(_) => {}
            // The server is down: rumqttc reconnects on the next poll and
            // sends every unacknowledged message again.
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(killed);
    let _client = publisher.await.unwrap();
    // An external broker hands the last messages on asynchronously.
    let mut count = 0;
    for _ in 0..60 {
        let probe = reqwest::get(format!("http://{}/readyz", child.config.bind)).await;
        assert!(probe.is_ok());
        count = count_at(&format!("http://{}", child.config.bind), &token, &subject).await;
        if count as usize >= READINGS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(count as usize, READINGS);
    assert_eq!(stored(child, dir, &token, &subject).await as usize, READINGS);
}

#[tokio::test]
async fn http_clients_that_retry_store_each_reading_once() {
    let (mut child, dir, device, secret, subject, token) = prepared(|_| {}).await;
    child.start().await;
    let url = format!("http://{}/v1/ingest/readings", child.config.bind);
    let credential = format!("Device {device}:{secret}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let batches: Vec<Vec<Value>> = (0..READINGS)
        .map(reading)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(<[Value]>::to_vec)
        .collect();
    let mut retried = 0;
    let mut killed = false;
    for (n, batch) in batches.iter().enumerate() {
        if !killed && n == batches.len() / 3 {
            // The crash lands while the request is in flight.
            let body = json!({"readings": batch});
            let req = client
                .post(&url)
                .header("authorization", &credential)
                .json(&body)
                .send();
            let kill_soon = async {
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            let (_, ()) = tokio::join!(req, kill_soon);
            child.kill();
            child.start().await;
            killed = true;
        }
        loop {
            let res = client
                .post(&url)
                .header("authorization", &credential)
                .json(&json!({"readings": batch}))
                .send()
                .await;
            match res {
                Ok(r) if r.status() == StatusCode::OK => {
                    let body: Value = r.json().await.unwrap();
                    let done = body["accepted"].as_u64().unwrap() + body["duplicates"].as_u64().unwrap();
                    assert_eq!(done, batch.len() as u64, "{body}");
                    break;
                }
                _ => {
                    retried += 1;
                    assert!(retried < 1000, "the server did not come back");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    assert!(killed);
    assert_eq!(stored(child, dir, &token, &subject).await as usize, READINGS);
}

/// SIGTERM while an HTTP client sends large batches back to back and a
/// device streams QoS 1 messages: the batch in flight is answered, the
/// process exits 0 within the shutdown deadline, and every reading the
/// clients saw acknowledged (HTTP 200, MQTT PUBACK) is stored.
#[tokio::test]
async fn sigterm_answers_the_batch_in_flight_stores_every_acknowledged_reading_and_exits_0() {
    stopped_mid_stream("TERM").await;
}

/// The same with Ctrl-C (SIGINT), which actix alone treats as a forced
/// stop that drops the requests in flight.
#[tokio::test]
async fn ctrl_c_answers_the_batch_in_flight_stores_every_acknowledged_reading_and_exits_0() {
    stopped_mid_stream("INT").await;
}

async fn stopped_mid_stream(signal: &str) {
    const BATCH: usize = 5000;
    const PER_MESSAGE: usize = 10;
    const MQTT_BASE: usize = 100_000;
    let mosquitto = match vitalfarm_tests::external_mqtt_url() {
        Some(_) => Some(Mosquitto::start().await),
        None => None,
    };
    let external = mosquitto.as_ref().map(|m| format!("mqtt://127.0.0.1:{}", m.port));
    let (mut child, dir, device, secret, subject, token) = prepared(|c| {
        if let Some(url) = &external {
            c.no_mqtt = false;
            c.mqtt_url = Some(url.clone());
            c.mqtt_client_id = format!("vft-term-{}", uuid::Uuid::now_v7().simple());
        }
    })
    .await;
    child.start().await;

    // The device: QoS 1, small batches, as fast as acknowledgements allow.
    let (host, port) = match &mosquitto {
        Some(m) => ("127.0.0.1".to_owned(), m.port),
        None => {
            let addr: std::net::SocketAddr = child.config.mqtt_bind.parse().unwrap();
            (addr.ip().to_string(), addr.port())
        }
    };
    let mut options = rumqttc::MqttOptions::new(&device, host, port);
    options
        .set_credentials(&device, &secret)
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let topic = format!("{}vitalfarm/v1/devices/{device}/readings", child.config.mqtt_mountpoint);
    let publisher = tokio::spawn(async move {
        for m in 0..10_000 {
            let items: Vec<Value> = (0..PER_MESSAGE)
                .map(|k| reading(MQTT_BASE + m * PER_MESSAGE + k))
                .collect();
            let body = json!({ "readings": items }).to_string();
            if client
                .publish(topic.clone(), QoS::AtLeastOnce, false, body)
                .await
                .is_err()
            {
                return m;
            }
        }
        10_000
    });
    let stop_polling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let stop = stop_polling.clone();
        tokio::spawn(async move {
            let mut acked = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await {
                    Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
                    Ok(Ok(_)) | Err(_) => {}
                    // The server went away: what was acknowledged is known.
                    Ok(Err(_)) => break,
                }
            }
            acked
        })
    };

    // The HTTP client: batches of 5,000 readings, one after the other.
    let url = format!("http://{}/v1/ingest/readings", child.config.bind);
    let credential = format!("Device {device}:{secret}");
    let http = reqwest::Client::new();
    let post = |n: usize| {
        let items: Vec<Value> = (0..BATCH).map(|i| reading(n * BATCH + i)).collect();
        http.post(&url)
            .header("authorization", &credential)
            .json(&json!({ "readings": items }))
            .send()
    };
    let started = std::time::Instant::now();
    let first = post(0).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let took = started.elapsed();
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["accepted"], BATCH as u64, "{first}");
    let mut http_accepted = BATCH as u64;

    // The second batch is in flight when the signal comes.
    let in_flight = post(1);
    let terminate = async {
        tokio::time::sleep(took / 3).await;
        child.signal(signal, Duration::from_secs(60)).await
    };
    let (answer, exited) = tokio::join!(in_flight, terminate);
    let answer = answer.expect("the batch in flight is answered");
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["accepted"], BATCH as u64, "{answer}");
    assert_eq!(answer["rejected"], json!([]), "{answer}");
    http_accepted += BATCH as u64;
    let (status, took) = exited.expect("the server exits after the signal");
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(30), "exited after {took:?}");
    // Nobody listens any more.
    assert!(post(2).await.is_err());

    stop_polling.store(true, std::sync::atomic::Ordering::Relaxed);
    let mqtt_acked = poller.await.unwrap() as u64 * PER_MESSAGE as u64;
    let published = publisher.await.unwrap();
    assert!(mqtt_acked > 0, "the device's stream was acknowledged before the signal");
    let expected = http_accepted + mqtt_acked;
    if mosquitto.is_some() {
        // The broker acknowledged for itself and keeps the rest for
        // vitalfarm's session: the next start takes them over.
        child.start().await;
        let base = format!("http://{}", child.config.bind);
        for _ in 0..120 {
            if count_at(&base, &token, &subject).await >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let stored = stored(child, dir, &token, &subject).await;
    assert!(
        stored >= expected,
        "stored {stored}, acknowledged {expected} ({http_accepted} over HTTP, {mqtt_acked} over MQTT)"
    );
    assert!(stored <= http_accepted + (published * PER_MESSAGE) as u64);
}
