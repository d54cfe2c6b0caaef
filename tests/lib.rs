//! Test kit for vitalfarm's black-box integration tests: boots the real
//! server on `127.0.0.1:0` against a fresh database (a SQLite file per test,
//! or, with `VITALFARM_TEST_DATABASE_URL=postgres://...`, a PostgreSQL
//! database cloned from a migrated template), and gives typed principals.

use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database as SeaDatabase};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use uuid::Uuid;
use vitalfarm_api::server::{self, Running};
use vitalfarm_app::config::Config;

pub mod mail_sink;

pub const PASSWORD: &str = "correct horse battery staple";

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Everything the servers of this test process have logged so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        if std::env::var_os("VITALFARM_TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One subscriber for the whole test process, writing into `LOGS`, at the
/// level production runs at (so the secrecy test sees what operators see),
/// or `VITALFARM_TEST_LOG` when set (then also echoed to stderr).
fn init_logging() {
    let filter = std::env::var("VITALFARM_TEST_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .try_init();
}
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// An external MQTT broker when the suite runs against one.
pub fn external_mqtt_url() -> Option<String> {
    std::env::var("VITALFARM_TEST_MQTT_URL")
        .ok()
        .filter(|u| u.starts_with("mqtt"))
}

/// A PostgreSQL server URL when the suite runs against PostgreSQL.
pub fn postgres_url() -> Option<String> {
    std::env::var("VITALFARM_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap_or((url, ""));
    format!("{base}/{db}")
}

/// Creates the migrated template once per test process, dropping databases
/// that earlier runs left behind (older than an hour).
async fn template(server: &str) -> anyhow::Result<String> {
    TEMPLATE
        .get_or_try_init(|| async {
            let now = chrono::Utc::now().timestamp();
            let admin = SeaDatabase::connect(server).await?;
            let stale = admin
                .query_all_raw(sea_orm::Statement::from_string(
                    admin.get_database_backend(),
                    "SELECT datname FROM pg_database WHERE datname LIKE 'vft\\_%'".to_owned(),
                ))
                .await?;
            for row in stale {
                let name: String = row.try_get("", "datname")?;
                let ts = name.split('_').nth(2).and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
                if now - ts > 3600 {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            }
            let name = format!("vft_tpl_{now}_{}", std::process::id());
            admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
            let db = vitalfarm_storage::Database::connect(&with_database(server, &name)).await?;
            db.migrate().await?;
            db.close().await?;
            admin.close().await?;
            Ok(name)
        })
        .await
        .cloned()
}

async fn fresh_postgres(server: &str) -> anyhow::Result<String> {
    let template = template(server).await?;
    let name = format!(
        "vft_db_{}_{}_{}",
        chrono::Utc::now().timestamp(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let admin = SeaDatabase::connect(server).await?;
    // Cloning fails while another session touches the template; that is
    // brief, so retry.
    let mut last = None;
    for _ in 0..50 {
        match admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""))
            .await
        {
            Ok(_) => {
                last = None;
                break;
            }
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    admin.close().await?;
    if let Some(e) = last {
        return Err(e).context("cloning the template database");
    }
    Ok(with_database(server, &name))
}

/// A running vitalfarm with its own database and data directory.
pub struct TestApp {
    pub config: Config,
    pub base: String,
    pub client: reqwest::Client,
    pub running: Running,
    pub data_dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server after `tweak` adjusted its configuration.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::try_spawn(tweak).await.expect("test server starts")
    }

    async fn try_spawn(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        vitalfarm_app::install_crypto_provider();
        let data_dir = tempfile::tempdir()?;
        let database_url = match postgres_url() {
            Some(server) => fresh_postgres(&server).await?,
            None => format!("sqlite://{}?mode=rwc", data_dir.path().join("vitalfarm.db").display()),
        };
        // With VITALFARM_TEST_OBJECT_STORE_URL=s3://bucket/prefix the farm
        // blobs go to that S3-compatible server, under a prefix of their own.
        let object_store_url = std::env::var("VITALFARM_TEST_OBJECT_STORE_URL")
            .ok()
            .filter(|u| u.starts_with("s3://"))
            .map(|u| format!("{}/{}", u.trim_end_matches('/'), Uuid::now_v7()));
        let mut config = Config {
            data_dir: data_dir.path().to_path_buf(),
            object_store_url,
            database_url: Some(database_url),
            bind: "127.0.0.1:0".into(),
            workers: Some(1),
            no_mqtt: true,
            // The suite's webhook receivers listen on loopback; the refusal
            // of private addresses has a test of its own.
            webhook_allow_private_networks: true,
            // Mail goes to a real SMTP server, from a sender of this test's
            // own (the sink files messages by sender).
            smtp_url: Some(format!("smtp://{}", mail_sink::sink().addr)),
            mail_from: format!("vitalfarm-{}@test.example", Uuid::now_v7().simple()),
            ..Config::default()
        };
        tweak(&mut config);
        Self::start(config, data_dir).await
    }

    async fn start(config: Config, data_dir: tempfile::TempDir) -> anyhow::Result<Self> {
        config.validate()?;
        init_logging();
        let state = vitalfarm_app::AppState::prepare(config.clone()).await?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let running = server::start(state, listener, false).await?;
        let base = format!("http://{}", running.addr);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            config,
            base,
            client,
            running,
            data_dir,
        })
    }

    /// Stops the server abruptly (in-flight requests are dropped, as in a
    /// crash) and starts a new one on the same database and data directory,
    /// after `tweak` adjusted the configuration.
    pub async fn restart(self, tweak: impl FnOnce(&mut Config)) -> Self {
        self.running.handle.stop(false).await;
        let _ = self.running.task.await;
        let _ = self.running.workers.shutdown(Duration::from_secs(5)).await;
        let mut config = self.config.clone();
        tweak(&mut config);
        Self::start(config, self.data_dir).await.expect("test server restarts")
    }

    /// Starts a server with MQTT on: the embedded broker on a free port, or,
    /// with `VITALFARM_TEST_MQTT_URL`, that external broker under a mount
    /// point of this test's own (so parallel tests do not see each other's
    /// messages) and a client id of its own.
    pub async fn spawn_mqtt() -> Self {
        Self::spawn_with(Self::mqtt_config).await
    }

    pub fn mqtt_config(c: &mut Config) {
        c.no_mqtt = false;
        c.mqtt_bind = "127.0.0.1:0".into();
        if let Some(url) = external_mqtt_url() {
            let tag = Uuid::now_v7().simple().to_string();
            c.mqtt_url = Some(url);
            c.mqtt_mountpoint = format!("t{tag}/");
            c.mqtt_client_id = format!("vft-{tag}");
        }
    }

    /// Whether MQTT goes through an external broker in this run.
    pub fn external_mqtt(&self) -> bool {
        self.config.mqtt_url.is_some()
    }

    /// Where devices connect: the embedded front, or the external broker.
    pub fn mqtt_endpoint(&self) -> (String, u16) {
        if let Some(url) = &self.config.mqtt_url {
            let parsed = reqwest::Url::parse(url).expect("valid mqtt url");
            return (
                parsed.host_str().unwrap_or("127.0.0.1").to_owned(),
                parsed.port().unwrap_or(1883),
            );
        }
        let addr = self
            .running
            .mqtt
            .as_ref()
            .and_then(|m| m.front_addr)
            .expect("MQTT is on");
        (addr.ip().to_string(), addr.port())
    }

    /// A topic as devices of this server see it (under the mount point).
    pub fn topic(&self, rest: &str) -> String {
        format!("{}vitalfarm/v1/{rest}", self.config.mqtt_mountpoint)
    }

    /// MQTT options for a device: client id and username its id, password
    /// its secret, a persistent session.
    pub fn device_mqtt_options(&self, device: &str, secret: &str) -> rumqttc::MqttOptions {
        let (host, port) = self.mqtt_endpoint();
        let mut o = rumqttc::MqttOptions::new(device, host, port);
        o.set_credentials(device, secret)
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(10))
            .set_max_packet_size(4 << 20, 4 << 20);
        o
    }

    /// Stops the server and hands back what it ran on, for a server in
    /// another process to take over.
    pub async fn stop(self) -> (Config, tempfile::TempDir) {
        self.running.handle.stop(false).await;
        // Then MQTT, the ingest writer and the background workers stop too.
        let _ = self.running.finish().await;
        (self.config, self.data_dir)
    }

    /// Starts a server on what an earlier one ran on.
    pub async fn resume(mut config: Config, data_dir: tempfile::TempDir) -> Self {
        config.no_mqtt = true;
        Self::start(config, data_dir).await.expect("test server resumes")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `method path` with an optional bearer credential and JSON body.
    pub async fn call(&self, method: Method, path: &str, bearer: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Resp::from(req.send().await.expect("request is sent")).await
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Resp {
        self.call(Method::GET, path, Some(bearer), None).await
    }

    pub async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, bearer, Some(body)).await
    }

    pub async fn patch(&self, path: &str, bearer: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(bearer), Some(body)).await
    }

    /// Uploads `bytes` to `path` of `farm` with extra headers.
    pub async fn upload(&self, bearer: &str, farm: Uuid, path: &str, bytes: Vec<u8>, headers: &[(&str, &str)]) -> Resp {
        let mut req = self
            .client
            .put(self.url(&format!("/v1/farms/{farm}/files/{path}")))
            .bearer_auth(bearer)
            .body(bytes);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Resp::from(req.send().await.expect("request is sent")).await
    }

    /// Downloads `path` of `farm` as raw bytes, with extra headers.
    pub async fn download(
        &self,
        bearer: &str,
        farm: Uuid,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self
            .client
            .get(self.url(&format!("/v1/farms/{farm}/files/{path}")))
            .bearer_auth(bearer);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request is sent");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        (status, headers, body)
    }

    /// Sends a request with `target` exactly as given (no URL normalisation,
    /// as a hostile client would) over a plain TCP connection; returns the
    /// status and body.
    pub async fn raw_request(&self, method: &str, target: &str, bearer: &str, body: &[u8]) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.running.addr)
            .await
            .expect("connect");
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {bearer}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.running.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        stream.write_all(body).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Runs one sweep of abandoned and replaced blobs now.
    pub async fn sweep(&self) -> usize {
        vitalfarm_app::workers::maintenance::sweep_blobs(&self.running.state)
            .await
            .expect("sweep")
    }

    pub async fn delete(&self, path: &str, bearer: &str) -> Resp {
        self.call(Method::DELETE, path, Some(bearer), None).await
    }

    /// Signs up `email` with a membership of `kind` and returns the new
    /// principal, signed in, with the address verified (as its operator
    /// would with `vitalfarm admin verify-email`; the accounts tests verify
    /// through the mailed token instead).
    pub async fn signup(&self, email: &str, kind: &str) -> Member {
        let member = self.signup_unverified(email, kind).await;
        self.verify_by_admin(&member.email).await;
        member
    }

    /// Signs up `email` without verifying the address.
    pub async fn signup_unverified(&self, email: &str, kind: &str) -> Member {
        let res = self
            .post(
                "/v1/auth/signup",
                None,
                json!({
                    "email": email,
                    "password": PASSWORD,
                    "display_name": email.split('@').next().unwrap_or(email),
                    "membership": {"kind": kind, "name": format!("{email}'s {kind}")}
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "signup {email}: {}", res.body);
        Member {
            email: res.str("/user/email"),
            user_id: res.id("/user/id"),
            membership_id: res.id("/membership/id"),
            farm_id: res.id("/membership/farm_id"),
            token: res.str("/tokens/access_token"),
            refresh_token: res.str("/tokens/refresh_token"),
        }
    }

    /// Marks `email` verified through `vitalfarm admin verify-email`'s
    /// code path.
    pub async fn verify_by_admin(&self, email: &str) {
        vitalfarm_app::admin::verify_email(self.db(), email)
            .await
            .expect("admin verify-email");
    }

    /// Verifies `member`'s address with the token of the newest
    /// verification mail it received, as its owner would.
    pub async fn verify_by_mail(&self, member: &Member) {
        let token = self.mailed_token(&member.email, "vf_ev_", 1).await;
        let res = self.post("/v1/auth/verify-email", None, json!({"token": token})).await;
        assert_eq!(res.status, StatusCode::OK, "verify {}: {}", member.email, res.text);
        assert_eq!(res.body["email_verified"], true);
    }

    /// The messages this server sent to `to`, oldest first (headers and
    /// body, line ends normalised).
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        let sink = mail_sink::sink();
        let dir = sink
            .dir
            .join(mail_sink::sender_folder(&self.config.mail_from_address()));
        let to = to.trim().to_lowercase();
        mail_sink::read_all(&dir)
            .into_iter()
            .filter(|m| mail_sink::header(m, "To").is_some_and(|v| v.to_lowercase().contains(&to)))
            .collect()
    }

    /// Waits (up to 15 s) until at least `count` messages to `to` carry a
    /// secret with `prefix`, and returns the newest such secret.
    pub async fn mailed_token(&self, to: &str, prefix: &str, count: usize) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<String> = self
                .mails_to(to)
                .iter()
                .filter_map(|m| mail_sink::tokens(mail_sink::body(m), prefix).into_iter().next())
                .collect();
            if found.len() >= count {
                return found.last().cloned().unwrap_or_default();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {count} mail(s) with {prefix}... to {to} arrived; got {}",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (up to 15 s) until at least `count` messages reached `to`.
    pub async fn wait_mails(&self, to: &str, count: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= count {
                return mails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{count} mail(s) to {to} did not arrive; got {}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn individual(&self, email: &str) -> Member {
        self.signup(email, "individual").await
    }

    pub async fn company(&self, email: &str) -> Member {
        self.signup(email, "company").await
    }

    /// A company device assigned to a new enrollee of `company`, ready to
    /// send readings.
    pub async fn monitored_device(&self, company: &Member, serial: &str) -> MonitoredDevice {
        let reg = self
            .post(
                &format!("/v1/memberships/{}/devices", company.membership_id),
                Some(&company.token),
                json!({"serial": serial}),
            )
            .await;
        assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);
        let id = reg.str("/devices/0/device_id");
        let secret = reg.str("/devices/0/secret");
        let subject = self
            .post(
                &format!("/v1/memberships/{}/subjects", company.membership_id),
                Some(&company.token),
                json!({"kind": "enrollee", "display_name": format!("Wearer of {serial}")}),
            )
            .await
            .str("/id");
        let res = self
            .post(
                &format!("/v1/devices/{id}/assign"),
                Some(&company.token),
                json!({"subject_id": subject}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        MonitoredDevice { id, secret, subject }
    }

    /// Signs in an existing user.
    pub async fn login(&self, email: &str) -> String {
        let res = self
            .post("/v1/auth/login", None, json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(res.status, StatusCode::OK, "login {email}: {}", res.body);
        res.str("/access_token")
    }

    /// Adds a staff member with `role` to `company` and returns their token.
    pub async fn staff(&self, company: &Member, email: &str, role: &str) -> String {
        self.staff_member(company, email, role).await.token
    }

    /// Adds a staff member with `role` to `company`: a new individual
    /// account (verified) that `company` invites and that accepts the
    /// invitation. Returns it signed in.
    pub async fn staff_member(&self, company: &Member, email: &str, role: &str) -> Member {
        let person = self.individual(email).await;
        self.invite_and_accept(company, &person, role).await;
        person
    }

    /// `company` invites the existing account `person` with `role`, and
    /// `person` accepts from their pending invitations.
    pub async fn invite_and_accept(&self, company: &Member, person: &Member, role: &str) {
        let res = self
            .post(
                &format!("/v1/memberships/{}/members", company.membership_id),
                Some(&company.token),
                json!({"email": person.email, "role": role}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let list = self.get("/v1/me/invitations", &person.token).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        let id = list.body["items"]
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .find(|i| i["membership_id"] == company.membership_id.to_string())
            })
            .and_then(|i| i["id"].as_str())
            .unwrap_or_else(|| panic!("no invitation from {}: {}", company.membership_id, list.body))
            .to_owned();
        let res = self
            .post(
                &format!("/v1/me/invitations/{id}/accept"),
                Some(&person.token),
                json!({}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    }

    /// Creates an API key with `role` for `company`, returning the secret.
    pub async fn api_key(&self, company: &Member, role: &str) -> String {
        let res = self
            .post(
                &format!("/v1/memberships/{}/api-keys", company.membership_id),
                Some(&company.token),
                json!({"name": "test key", "role": role}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.str("/secret")
    }

    // ---- Device commands: the service side, called in-process (these
    // servers run with MQTT off, so nothing arrives over a broker). ----

    /// Hands `payload` to the command-result handler as if `device` had
    /// published it on `.../devices/{device}/commands/{command}/result`.
    pub async fn command_result(&self, device: Uuid, command: Uuid, payload: &[u8]) {
        vitalfarm_app::commands::on_result(&self.running.state, device, command, payload).await;
    }

    /// Runs one expiry sweep of device commands now.
    pub async fn expire_commands(&self) -> u64 {
        vitalfarm_app::commands::expire_due(&self.running.state)
            .await
            .expect("expiry sweep")
    }

    /// Publishes queued commands now, as on a broker (re)connect.
    pub async fn dispatch_pending_commands(&self) -> usize {
        vitalfarm_app::commands::dispatch_pending(&self.running.state)
            .await
            .expect("dispatch")
    }

    /// Records command `command` as handed to the broker, as a dispatch
    /// with a live link would.
    pub async fn mark_command_sent(&self, command: Uuid) -> bool {
        vitalfarm_storage::repo::commands::mark_sent(
            &self.running.state.db,
            vitalfarm_domain::CommandId::from_uuid(command),
        )
        .await
        .expect("mark sent")
    }

    /// A device made by a new company and claimed by `buyer` for `subject`,
    /// ready to send readings.
    pub async fn claimed_device(&self, buyer: &Member, subject: &str, serial: &str) -> MonitoredDevice {
        let maker = self
            .company(&format!("maker-{}@makers.example", serial.to_lowercase()))
            .await;
        let reg = self
            .post(
                &format!("/v1/memberships/{}/devices", maker.membership_id),
                Some(&maker.token),
                json!({"serial": serial}),
            )
            .await;
        assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);
        let res = self
            .post(
                "/v1/devices/claim",
                Some(&buyer.token),
                json!({"claim_code": reg.str("/devices/0/claim_code"), "subject_id": subject}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        MonitoredDevice {
            id: reg.str("/devices/0/device_id"),
            secret: reg.str("/devices/0/secret"),
            subject: subject.to_owned(),
        }
    }

    /// `grantor` grants `grantee` read access to `subjects` for `metrics`
    /// with `purpose`, for 30 days; returns the consent id.
    pub async fn grant_consent(
        &self,
        grantor: &Member,
        grantee: &Member,
        subjects: &[&str],
        metrics: &[&str],
        purpose: &str,
    ) -> String {
        let expires =
            (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let res = self
            .post(
                "/v1/consents",
                Some(&grantor.token),
                json!({
                    "grantee_membership_id": grantee.membership_id,
                    "subject_ids": subjects,
                    "metrics": metrics,
                    "purpose": purpose,
                    "access": "read",
                    "expires_at": expires,
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        res.str("/id")
    }

    /// Sends `{"readings": readings}` as `device`, asserting all are stored.
    pub async fn ingest(&self, device: &MonitoredDevice, readings: Value) -> Resp {
        let n = readings.as_array().map_or(0, Vec::len);
        let res = self
            .client
            .post(self.url("/v1/ingest/readings"))
            .header("authorization", device.credential())
            .json(&json!({ "readings": readings }))
            .send()
            .await
            .expect("request is sent");
        let res = Resp::from(res).await;
        assert_eq!(res.body["accepted"], n, "{}", res.text);
        res
    }
}

/// A device bound to a subject: its id, its secret, the subject.
pub struct MonitoredDevice {
    pub id: String,
    pub secret: String,
    pub subject: String,
}

impl MonitoredDevice {
    /// The HTTP credential: `Device <id>:<secret>`.
    pub fn credential(&self) -> String {
        format!("Device {}:{}", self.id, self.secret)
    }
}

/// A signed-up user with the membership they own.
#[derive(Debug, Clone)]
pub struct Member {
    pub email: String,
    pub user_id: Uuid,
    pub membership_id: Uuid,
    pub farm_id: Uuid,
    pub token: String,
    pub refresh_token: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub async fn from(res: reqwest::Response) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn str(&self, pointer: &str) -> String {
        self.body
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no string at {pointer} in {}", self.body))
            .to_owned()
    }

    pub fn id(&self, pointer: &str) -> Uuid {
        self.str(pointer)
            .parse()
            .unwrap_or_else(|_| panic!("no uuid at {pointer} in {}", self.body))
    }

    /// Asserts a problem document with `status` and `slug`, returning it.
    #[track_caller]
    pub fn problem(&self, status: u16, slug: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "problem content type; body: {}",
            self.text
        );
        assert_eq!(
            self.body["type"].as_str(),
            Some(format!("https://vitalfarm.dev/problems/{slug}").as_str()),
            "problem type; body: {}",
            self.text
        );
        assert_eq!(self.body["status"].as_u64(), Some(u64::from(status)));
        assert!(self.body["request_id"].is_string(), "problem has a request id");
        &self.body
    }

    /// The `field` names of a validation problem.
    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

// ---- The database behind the server and the audit log. ----
impl TestApp {
    /// The server's own database, for tests that must reach past the API
    /// (e.g. to tamper with stored rows as an attacker with database access
    /// would).
    pub fn db(&self) -> &vitalfarm_storage::Database {
        &self.running.state.db
    }

    /// Arms (or disarms) the server's fault point in the middle of every
    /// consent change: after the consent or request row is written, before
    /// its audit events and outbound events.
    pub fn fail_consent_changes_midway(&self, armed: bool) {
        self.running
            .state
            .faults
            .arm(vitalfarm_app::faults::FaultPoint::ConsentMidway, armed);
    }

    /// The first column of the one row `sql` returns, as an integer (a
    /// `COUNT(*)`, say).
    pub async fn sql_count(&self, sql: &str) -> i64 {
        let db = self.db().conn();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .expect("SQL query runs")
            .expect("SQL query returns a row");
        row.try_get_by_index::<i64>(0).expect("an integer")
    }

    /// Runs one SQL statement written with `?` placeholders (rewritten to
    /// `$1, $2...` on PostgreSQL); returns the number of rows it changed.
    pub async fn exec_sql(&self, sql: &str, values: Vec<sea_orm::Value>) -> u64 {
        let db = self.db();
        let sql = match db.kind() {
            vitalfarm_storage::DatabaseKind::Sqlite => sql.to_owned(),
            vitalfarm_storage::DatabaseKind::Postgres => {
                let mut out = String::new();
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        out.push_str(&format!("${n}"));
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        };
        db.conn()
            .execute_raw(sea_orm::Statement::from_sql_and_values(db.backend(), sql, values))
            .await
            .expect("SQL statement runs")
            .rows_affected()
    }

    /// Every audit event of `membership`, newest first, read page by page
    /// through the API with `query` (e.g. `action=auth&`) as filter.
    pub async fn audit(&self, membership: Uuid, bearer: &str, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/memberships/{membership}/audit?{query}limit=100");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let res = self.get(&path, bearer).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.text);
            items.extend(res.body["items"].as_array().cloned().unwrap_or_default());
            match res.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    /// The actions of `membership`'s audit events, oldest first.
    pub async fn audit_actions(&self, membership: Uuid, bearer: &str) -> Vec<String> {
        let mut actions: Vec<String> = self
            .audit(membership, bearer, "")
            .await
            .iter()
            .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
            .collect();
        actions.reverse();
        actions
    }

    /// `GET .../audit/verify` of `membership`.
    pub async fn audit_verify(&self, membership: Uuid, bearer: &str) -> Value {
        let res = self
            .get(&format!("/v1/memberships/{membership}/audit/verify"), bearer)
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        res.body
    }
}

/// The id of an individual's `self` subject.
pub async fn self_subject(app: &TestApp, m: &Member) -> String {
    app.get(
        &format!("/v1/memberships/{}/subjects?kind=self", m.membership_id),
        &m.token,
    )
    .await
    .str("/items/0/id")
}
