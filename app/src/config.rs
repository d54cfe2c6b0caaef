//! Configuration, layered: built-in defaults, then an optional TOML file,
//! then `VITALFARM_*` environment variables, then command-line flags. Invalid
//! configuration stops the process at start with a message naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Every key, as in the TOML file; the environment variable is the key in
/// upper case behind `VITALFARM_`.
pub const KEYS: &[&str] = &[
    "bind",
    "data_dir",
    "database_url",
    "public_url",
    "mqtt_url",
    "mqtt_bind",
    "no_mqtt",
    "mqtt_client_id",
    "mqtt_shared_group",
    "mqtt_mountpoint",
    "ingest_batch_rows",
    "ingest_queue",
    "ingest_writers",
    "object_store_url",
    "jwt_key_file",
    "access_token_ttl_secs",
    "refresh_token_ttl_secs",
    "invitation_ttl_secs",
    "email_verification_ttl_secs",
    "password_reset_ttl_secs",
    "smtp_url",
    "mail_from",
    "login_window_secs",
    "login_max_failures_per_account",
    "login_max_attempts_per_ip",
    "login_max_failures_account_wide",
    "trust_forwarded_for",
    "max_json_body_bytes",
    "farm_quota_bytes",
    "max_file_bytes",
    "max_bulk_body_bytes",
    "claim_code_ttl_secs",
    "master_key_file",
    "orphan_grace_secs",
    "sweep_interval_secs",
    "workers",
    "shutdown_timeout_secs",
    "log_format",
    "log_level",
    "no_jobs",
    "job_poll_interval_ms",
    "alert_due_interval_ms",
    "job_lease_secs",
    "export_ttl_secs",
    "stream_max_per_membership",
    "webhook_poll_interval_ms",
    "webhook_timeout_ms",
    "webhook_max_attempts",
    "webhook_backoff_base_ms",
    "device_offline_after_secs",
    "webhook_allow_private_networks",
    "mqtt_hook_secret",
    "mqtt_hook_max_failures",
    "export_max_queued",
    "export_retain",
    "body_read_timeout_secs",
    "min_transfer_bytes_per_sec",
    "share_link_max_concurrent_downloads",
    "elderly_watch_min_age_years",
];

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub bind: String,
    /// Where embedded defaults keep their state: the SQLite database, the
    /// farm blobs and the generated signing key.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`; default: SQLite in
    /// `data_dir`.
    pub database_url: Option<String>,
    /// The URL clients reach this service at; the issuer of access tokens.
    pub public_url: Option<String>,
    /// An external MQTT broker (`mqtt://host:1883`) instead of the in-process
    /// one.
    pub mqtt_url: Option<String>,
    /// Address of the in-process MQTT broker.
    pub mqtt_bind: String,
    /// Runs without any MQTT link.
    pub no_mqtt: bool,
    /// vitalfarm's client id at an external broker. The broker keeps this
    /// session's messages while the node is down, so it must be stable per
    /// node and different between nodes.
    pub mqtt_client_id: String,
    /// With several nodes on one external broker: the shared-subscription
    /// group (`$share/GROUP/...`) that splits device messages among them.
    pub mqtt_shared_group: Option<String>,
    /// A prefix in front of every topic on an external broker, for brokers
    /// shared between environments (`staging/` gives
    /// `staging/vitalfarm/v1/...`). Devices publish under it too.
    pub mqtt_mountpoint: String,
    /// The most reading rows one coalesced write carries.
    pub ingest_batch_rows: usize,
    /// Ingest requests waiting for the writer; beyond it senders wait
    /// (back-pressure reaches HTTP clients and MQTT connections).
    pub ingest_queue: usize,
    /// Concurrent writer tasks: with two, the database stores one batch
    /// while the next gathers (one alone left a core idle in `vitalfarm
    /// bench ingest` on PostgreSQL).
    pub ingest_writers: usize,
    /// Where farm blobs live: `file:///path` or `s3://bucket/prefix`; default
    /// `data_dir/farms`.
    pub object_store_url: Option<String>,
    /// PKCS#8 PEM Ed25519 key that signs access tokens; default: generated
    /// into `data_dir/jwt-ed25519.pem`.
    pub jwt_key_file: Option<PathBuf>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub invitation_ttl_secs: u64,
    /// How long the link in an address-verification mail works.
    pub email_verification_ttl_secs: u64,
    /// How long the link in a password-reset mail works.
    pub password_reset_ttl_secs: u64,
    /// The SMTP server mail goes out through: `smtp://host:25` (plain, or
    /// STARTTLS with `?tls=required`), `smtps://host:465` (TLS), with
    /// optional `user:password@`. Unset: each message is written to
    /// `data_dir/outbox/` as an `.eml` file instead.
    pub smtp_url: Option<String>,
    /// The sender of vitalfarm's mail (`Name <address>` or an address).
    pub mail_from: String,
    /// Window over which login attempts are counted.
    pub login_window_secs: u64,
    /// Failed sign-ins of one account from one client network (an IPv4
    /// address or an IPv6 /64) allowed per window.
    pub login_max_failures_per_account: u32,
    /// Failed sign-ins from one client network (an IPv4 address or an IPv6
    /// /64), whatever the account, allowed per window. Successful sign-ins
    /// do not count.
    pub login_max_attempts_per_ip: u32,
    /// Failed sign-ins of one account from all networks together allowed
    /// per window; beyond it only networks the account signed in from before
    /// (in the last 90 days) are still checked, so spread-out guessing stops
    /// while the owner still gets in.
    pub login_max_failures_account_wide: u32,
    /// Behind a reverse proxy: use the last `X-Forwarded-For` address (the
    /// one the proxy appended) as the client address, and the forwarded host
    /// and scheme (`Forwarded`, `X-Forwarded-Host`, `X-Forwarded-Proto`,
    /// `Host`) in absolute URLs when `public_url` is unset. Without it those
    /// headers are ignored and absolute URLs use the bind address.
    pub trust_forwarded_for: bool,
    pub max_json_body_bytes: usize,
    /// Default quota of a new farm.
    pub farm_quota_bytes: u64,
    /// The largest single file an upload may carry.
    pub max_file_bytes: u64,
    /// The largest body of a bulk request (device registration).
    pub max_bulk_body_bytes: usize,
    /// How long a device's claim code works after registration.
    pub claim_code_ttl_secs: u64,
    /// The master key (32 bytes, base64) that wraps every farm's data key;
    /// default: generated into `data_dir/master.key`. Losing it loses every
    /// farm's files.
    pub master_key_file: Option<PathBuf>,
    /// How long an upload may stay unfinished before its blob counts as
    /// abandoned and is swept.
    pub orphan_grace_secs: u64,
    /// How often abandoned and replaced blobs are swept from the store.
    pub sweep_interval_secs: u64,
    /// HTTP worker threads; default: one per core.
    pub workers: Option<usize>,
    /// On SIGTERM or Ctrl-C, how long in-flight requests may take to
    /// finish, and then how long draining ingest, MQTT acknowledgements and
    /// the background workers may take, before the process exits anyway.
    pub shutdown_timeout_secs: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// A tracing filter such as `info` or `vitalfarm_api=debug,info`.
    pub log_level: String,
    /// Run no background job worker on this node (jobs still queue, for
    /// other nodes to run).
    pub no_jobs: bool,
    /// How often an idle job worker looks for work queued by other nodes
    /// (jobs queued on this node wake it at once).
    pub job_poll_interval_ms: u64,
    /// How often a node looks for silence (`no_data`) alert rules that
    /// have come due.
    pub alert_due_interval_ms: u64,
    /// How long a claimed job stays with its worker without a renewal; a
    /// worker renews at a third of it, and another node takes the job over
    /// once it runs out.
    pub job_lease_secs: u64,
    /// How long a finished export can be downloaded.
    pub export_ttl_secs: u64,
    /// Live streams one membership may hold open on one node; more answer
    /// 429.
    pub stream_max_per_membership: usize,
    /// How often the webhook loop looks for new events, due deliveries and
    /// silent devices.
    pub webhook_poll_interval_ms: u64,
    /// How long one delivery attempt may take.
    pub webhook_timeout_ms: u64,
    /// Attempts of a delivery before it is `failed`.
    pub webhook_max_attempts: u32,
    /// The wait after the first failed attempt; later waits grow from it
    /// (x6, x24, x120, x720, ... with jitter: 5 s, 30 s, 2 min, 10 min, 1 h by default).
    pub webhook_backoff_base_ms: u64,
    /// A device not heard from for this long is flagged offline
    /// (`device.offline`).
    pub device_offline_after_secs: u64,
    /// Lets webhooks reach loopback and private-network addresses (and http
    /// to loopback): for development and tests, never where the service's
    /// network holds anything a tenant must not reach.
    pub webhook_allow_private_networks: bool,
    /// The shared secret an external MQTT broker sends to the hooks
    /// `/v1/mqtt/auth/*` (header `X-Vitalfarm-Hook-Secret`, or as the
    /// password of HTTP Basic authentication); at least 16 characters.
    /// Unset, the hooks answer 404.
    pub mqtt_hook_secret: Option<String>,
    /// Failed device logins through the hooks allowed per device id per
    /// `login_window_secs`; beyond it the hook refuses without checking.
    pub mqtt_hook_max_failures: u32,
    /// Exports one membership may have waiting behind the one it runs;
    /// more answer 429.
    pub export_max_queued: u64,
    /// Finished exports kept per membership: when one more succeeds, older
    /// ones beyond this many expire at once (their archives are removed).
    /// With `export_max_queued`, it bounds the space a membership's exports
    /// take to `export_retain + 1` archives.
    pub export_retain: u64,
    /// How long a request body may send nothing before the request is
    /// answered 408 and its connection closed; also how long a response may
    /// sit unread by the client (unacknowledged, or behind a zero TCP
    /// window) before the connection is dropped (Linux `TCP_USER_TIMEOUT`).
    pub body_read_timeout_secs: u64,
    /// The slowest average rate, in bytes a second, a request or response
    /// body may move at once it has run for `body_read_timeout_secs`;
    /// slower ones are cut off. 0 turns the check off.
    pub min_transfer_bytes_per_sec: u64,
    /// Downloads through one share link this node serves at once; more
    /// answer 429.
    pub share_link_max_concurrent_downloads: usize,
    /// The age, in whole years at the moment judged, from which the elderly
    /// watch puts a subject on its board; subjects without a birth date stay
    /// on it, judged by adult ranges and marked "age unknown".
    pub elderly_watch_min_age_years: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./vitalfarm-data"),
            database_url: None,
            public_url: None,
            mqtt_url: None,
            // Not 1883: a system Mosquitto often holds it, and the embedded
            // broker must start beside one.
            mqtt_bind: "127.0.0.1:1884".into(),
            no_mqtt: false,
            mqtt_client_id: "vitalfarm".into(),
            mqtt_shared_group: None,
            mqtt_mountpoint: String::new(),
            ingest_batch_rows: 20_000,
            ingest_queue: 1024,
            ingest_writers: 2,
            object_store_url: None,
            jwt_key_file: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            invitation_ttl_secs: 7 * 24 * 3600,
            email_verification_ttl_secs: 2 * 24 * 3600,
            password_reset_ttl_secs: 3600,
            smtp_url: None,
            mail_from: "vitalfarm <noreply@vitalfarm.localhost>".into(),
            login_window_secs: 15 * 60,
            login_max_failures_per_account: 5,
            login_max_attempts_per_ip: 100,
            login_max_failures_account_wide: 50,
            trust_forwarded_for: false,
            max_json_body_bytes: 1024 * 1024,
            farm_quota_bytes: 1024 * 1024 * 1024,
            max_file_bytes: 1024 * 1024 * 1024,
            max_bulk_body_bytes: 16 * 1024 * 1024,
            claim_code_ttl_secs: 3 * 365 * 24 * 3600,
            master_key_file: None,
            orphan_grace_secs: 24 * 3600,
            sweep_interval_secs: 300,
            workers: None,
            shutdown_timeout_secs: 30,
            log_format: "text".into(),
            log_level: "info".into(),
            no_jobs: false,
            job_poll_interval_ms: 2000,
            alert_due_interval_ms: 5000,
            job_lease_secs: 60,
            export_ttl_secs: 7 * 24 * 3600,
            stream_max_per_membership: 20,
            webhook_poll_interval_ms: 1000,
            webhook_timeout_ms: 10_000,
            webhook_max_attempts: 8,
            webhook_backoff_base_ms: 5000,
            device_offline_after_secs: 15 * 60,
            webhook_allow_private_networks: false,
            mqtt_hook_secret: None,
            mqtt_hook_max_failures: 10,
            export_max_queued: 3,
            export_retain: 2,
            body_read_timeout_secs: 30,
            min_transfer_bytes_per_sec: 1024,
            share_link_max_concurrent_downloads: 4,
            elderly_watch_min_age_years: 65,
        }
    }
}

impl std::fmt::Debug for Config {
    // Hand-written so that credentials inside `database_url` never print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database_url_redacted())
            .field("object_store_url", &self.object_store_url)
            .field("mqtt_url", &self.mqtt_url_redacted())
            .finish_non_exhaustive()
    }
}

/// Flags given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_mqtt: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

fn invalid(key: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("`{key}` (VITALFARM_{}): {message}", key.to_uppercase()))
}

impl Config {
    /// Loads the layers. `file` is the `--config` flag, else
    /// `VITALFARM_CONFIG`; a named file must exist.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("VITALFARM_CONFIG").map(PathBuf::from));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!("config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment
            .merge(Env::prefixed("VITALFARM_").only(KEYS))
            .merge(Serialized::globals(overrides));
        let config: Config = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            if key.is_empty() {
                ConfigError(e.to_string())
            } else {
                invalid(&key, e)
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        self.mqtt_bind
            .parse::<SocketAddr>()
            .map_err(|e| invalid("mqtt_bind", e))?;
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if let Some(url) = &self.mqtt_url
            && !(url.starts_with("mqtt://") || url.starts_with("mqtts://"))
        {
            return Err(invalid("mqtt_url", "must start with mqtt:// or mqtts://"));
        }
        if self.mqtt_client_id.is_empty() || self.mqtt_client_id.len() > 64 {
            return Err(invalid("mqtt_client_id", "must be 1 to 64 characters"));
        }
        if let Some(group) = &self.mqtt_shared_group
            && (group.is_empty() || group.contains(['/', '+', '#']))
        {
            return Err(invalid(
                "mqtt_shared_group",
                "must be a non-empty name without `/`, `+` or `#`",
            ));
        }
        if self.mqtt_mountpoint.contains(['+', '#']) || self.mqtt_mountpoint.starts_with('$') {
            return Err(invalid(
                "mqtt_mountpoint",
                "must not contain `+` or `#` nor start with `$`",
            ));
        }
        if !(100..=1_000_000).contains(&self.ingest_batch_rows) {
            return Err(invalid("ingest_batch_rows", "must be between 100 and 1000000"));
        }
        if self.ingest_queue == 0 {
            return Err(invalid("ingest_queue", "must be at least 1"));
        }
        if !(1..=64).contains(&self.ingest_writers) {
            return Err(invalid("ingest_writers", "must be between 1 and 64"));
        }
        if let Some(url) = &self.object_store_url
            && !(url.starts_with("file://") || url.starts_with("s3://"))
        {
            return Err(invalid("object_store_url", "must start with file:// or s3://"));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid("public_url", "must start with http:// or https://"));
        }
        for (key, value) in [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            ("invitation_ttl_secs", self.invitation_ttl_secs),
            ("email_verification_ttl_secs", self.email_verification_ttl_secs),
            ("password_reset_ttl_secs", self.password_reset_ttl_secs),
            ("login_window_secs", self.login_window_secs),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        for (key, value, max) in [
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs, 365 * 24 * 3600),
            ("invitation_ttl_secs", self.invitation_ttl_secs, 90 * 24 * 3600),
            (
                "email_verification_ttl_secs",
                self.email_verification_ttl_secs,
                30 * 24 * 3600,
            ),
            ("password_reset_ttl_secs", self.password_reset_ttl_secs, 24 * 3600),
            ("login_window_secs", self.login_window_secs, 24 * 3600),
        ] {
            if value > max {
                return Err(invalid(key, format!("must be at most {max}")));
            }
        }
        if self.access_token_ttl_secs > 24 * 3600 {
            return Err(invalid(
                "access_token_ttl_secs",
                "must be at most 86400: access tokens cannot be revoked",
            ));
        }
        if let Some(url) = &self.smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return Err(invalid("smtp_url", "must start with smtp:// or smtps://"));
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid("mail_from", "must be an address or `Name <address>`"));
        }
        if self.login_max_failures_per_account == 0 || self.login_max_attempts_per_ip == 0 {
            return Err(invalid("login_max_failures_per_account", "limits must be at least 1"));
        }
        if self.login_max_failures_account_wide == 0 {
            return Err(invalid("login_max_failures_account_wide", "must be at least 1"));
        }
        if self.mqtt_hook_max_failures == 0 {
            return Err(invalid("mqtt_hook_max_failures", "must be at least 1"));
        }
        if let Some(secret) = &self.mqtt_hook_secret
            && secret.chars().count() < 16
        {
            return Err(invalid("mqtt_hook_secret", "must be at least 16 characters"));
        }
        if self.max_json_body_bytes < 1024 {
            return Err(invalid("max_json_body_bytes", "must be at least 1024"));
        }
        if self.max_file_bytes == 0 || self.max_file_bytes > i64::MAX as u64 {
            return Err(invalid("max_file_bytes", "must be between 1 and 2^63-1"));
        }
        if self.farm_quota_bytes > i64::MAX as u64 {
            return Err(invalid("farm_quota_bytes", "must be at most 2^63-1"));
        }
        if self.max_bulk_body_bytes < 1024 {
            return Err(invalid("max_bulk_body_bytes", "must be at least 1024"));
        }
        if self.claim_code_ttl_secs == 0 || self.claim_code_ttl_secs > 10 * 365 * 24 * 3600 {
            return Err(invalid("claim_code_ttl_secs", "must be between 1 and 315360000"));
        }
        if self.shutdown_timeout_secs > 3600 {
            return Err(invalid("shutdown_timeout_secs", "must be at most 3600"));
        }
        if self.sweep_interval_secs == 0 {
            return Err(invalid("sweep_interval_secs", "must be greater than 0"));
        }
        if self.orphan_grace_secs > 30 * 24 * 3600 {
            return Err(invalid("orphan_grace_secs", "must be at most 2592000"));
        }
        if self.job_poll_interval_ms < 10 || self.job_poll_interval_ms > 3_600_000 {
            return Err(invalid("job_poll_interval_ms", "must be between 10 and 3600000"));
        }
        if self.alert_due_interval_ms < 10 || self.alert_due_interval_ms > 3_600_000 {
            return Err(invalid("alert_due_interval_ms", "must be between 10 and 3600000"));
        }
        if self.job_lease_secs < 3 || self.job_lease_secs > 3600 {
            return Err(invalid("job_lease_secs", "must be between 3 and 3600"));
        }
        if self.export_ttl_secs == 0 || self.export_ttl_secs > 365 * 24 * 3600 {
            return Err(invalid("export_ttl_secs", "must be between 1 and 31536000"));
        }
        if self.stream_max_per_membership == 0 {
            return Err(invalid("stream_max_per_membership", "must be at least 1"));
        }
        if self.webhook_poll_interval_ms < 10 || self.webhook_poll_interval_ms > 3_600_000 {
            return Err(invalid("webhook_poll_interval_ms", "must be between 10 and 3600000"));
        }
        if self.webhook_timeout_ms < 100 || self.webhook_timeout_ms > 120_000 {
            return Err(invalid("webhook_timeout_ms", "must be between 100 and 120000"));
        }
        if !(1..=50).contains(&self.webhook_max_attempts) {
            return Err(invalid("webhook_max_attempts", "must be between 1 and 50"));
        }
        if self.webhook_backoff_base_ms < 10 || self.webhook_backoff_base_ms > 3_600_000 {
            return Err(invalid("webhook_backoff_base_ms", "must be between 10 and 3600000"));
        }
        if self.device_offline_after_secs == 0 || self.device_offline_after_secs > 30 * 24 * 3600 {
            return Err(invalid("device_offline_after_secs", "must be between 1 and 2592000"));
        }
        if self.export_max_queued > 100 {
            return Err(invalid("export_max_queued", "must be at most 100"));
        }
        if !(1..=100).contains(&self.export_retain) {
            return Err(invalid("export_retain", "must be between 1 and 100"));
        }
        if !(1..=3600).contains(&self.body_read_timeout_secs) {
            return Err(invalid("body_read_timeout_secs", "must be between 1 and 3600"));
        }
        if !(1..=10_000).contains(&self.share_link_max_concurrent_downloads) {
            return Err(invalid(
                "share_link_max_concurrent_downloads",
                "must be between 1 and 10000",
            ));
        }
        if self.elderly_watch_min_age_years > 130 {
            return Err(invalid("elderly_watch_min_age_years", "must be between 0 and 130"));
        }
        if self.workers == Some(0) {
            return Err(invalid("workers", "must be at least 1"));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(invalid("log_format", "must be `text` or `json`"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(invalid("log_level", "must be a tracing filter such as `info`"));
        }
        Ok(())
    }

    /// How long a device may stay silent before it counts as offline.
    pub fn device_offline_after(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.device_offline_after_secs).unwrap_or(i64::MAX / 1000))
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.bind.parse().map_err(|e| invalid("bind", e))
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("vitalfarm.db").display()),
        }
    }

    /// The database URL without its password, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact(self.database_url())
    }

    /// `mqtt_url` without its password, for logs.
    pub fn mqtt_url_redacted(&self) -> Option<String> {
        self.mqtt_url.clone().map(redact)
    }

    pub fn jwt_key_path(&self) -> PathBuf {
        self.jwt_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("jwt-ed25519.pem"))
    }
}

/// A URL with the password of its user info replaced by `***`.
fn redact(url: String) -> String {
    {
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let creds = &url[scheme_end + 3..at];
                let user = creds.split(':').next().unwrap_or_default();
                format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..])
            }
            _ => url,
        }
    }
}

impl Config {
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The directory of farm blobs on embedded defaults.
    pub fn farm_dir(&self) -> PathBuf {
        self.data_dir.join("farms")
    }

    /// The bare address of `mail_from` (the SMTP envelope sender).
    pub fn mail_from_address(&self) -> String {
        self.mail_from
            .parse::<lettre::message::Mailbox>()
            .map(|m| m.email.to_string())
            .unwrap_or_else(|_| self.mail_from.clone())
    }

    pub fn issuer(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.database_url().starts_with("sqlite://./vitalfarm-data/vitalfarm.db"));
        assert_eq!(c.jwt_key_path(), PathBuf::from("./vitalfarm-data/jwt-ed25519.pem"));
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases = [
            (
                Config {
                    bind: "nowhere".into(),
                    ..Config::default()
                },
                "`bind` (VITALFARM_BIND)",
            ),
            (
                Config {
                    database_url: Some("mysql://x".into()),
                    ..Config::default()
                },
                "database_url",
            ),
            (
                Config {
                    log_format: "xml".into(),
                    ..Config::default()
                },
                "log_format",
            ),
            (
                Config {
                    refresh_token_ttl_secs: u64::MAX,
                    ..Config::default()
                },
                "refresh_token_ttl_secs",
            ),
            (
                Config {
                    workers: Some(0),
                    ..Config::default()
                },
                "workers",
            ),
            (
                Config {
                    body_read_timeout_secs: 0,
                    ..Config::default()
                },
                "body_read_timeout_secs",
            ),
            (
                Config {
                    export_retain: 0,
                    ..Config::default()
                },
                "export_retain",
            ),
            (
                Config {
                    share_link_max_concurrent_downloads: 0,
                    ..Config::default()
                },
                "share_link_max_concurrent_downloads",
            ),
            (
                Config {
                    elderly_watch_min_age_years: 131,
                    ..Config::default()
                },
                "elderly_watch_min_age_years",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn toml_file_layers_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vf.toml");
        std::fs::write(&file, "bind = \"127.0.0.1:9999\"\nlogin_window_secs = 60\n").unwrap();
        let c = Config::load(Some(&file), Overrides::default()).unwrap();
        assert_eq!(c.bind, "127.0.0.1:9999");
        assert_eq!(c.login_window_secs, 60);

        let c = Config::load(
            Some(&file),
            Overrides {
                bind: Some("127.0.0.1:7777".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.bind, "127.0.0.1:7777", "flags win over the file");

        std::fs::write(&file, "bnd = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("bnd"), "{err}");

        std::fs::write(&file, "login_window_secs = \"soon\"\n").unwrap();
        let err = Config::load(Some(&file), Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("login_window_secs"), "{err}");
    }

    #[test]
    fn redacts_database_password() {
        let c = Config {
            database_url: Some("postgres://vf:s3cret@db:5432/vf".into()),
            ..Config::default()
        };
        assert_eq!(c.database_url_redacted(), "postgres://vf:***@db:5432/vf");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
