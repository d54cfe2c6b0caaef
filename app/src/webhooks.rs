//! Webhooks: the background loop that turns events into signed HTTP
//! deliveries, and the pieces the routes and event producers share.
//!
//! One loop per node, every `webhook_poll_interval_ms`:
//! 1. flags devices silent for `device_offline_after_secs` offline and
//!    emits `device.offline` (one conditional UPDATE per device decides
//!    which node does it);
//! 2. fans undispatched events out into deliveries
//!    (`repo::webhooks::dispatch`, one transaction);
//! 3. sends due deliveries, each under a lease, with Standard Webhooks
//!    headers, and records the attempt; a failure is retried with
//!    exponential backoff and jitter until `webhook_max_attempts`, then the
//!    delivery is `failed`. Delivery is at least once: receivers dedupe on
//!    `webhook-id`, the event id.
//!
//! Secrets are sealed with AES-256-GCM under a key derived (HKDF) from the
//! master key, with the endpoint id as associated data; neither they nor
//! response bodies nor payloads are ever logged.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use serde_json::json;
use uuid::Uuid;
use vitalfarm_domain::webhook as signing;
use vitalfarm_domain::{MembershipId, SubjectId};
use vitalfarm_storage::StorageError;
use vitalfarm_storage::entity::{consent as consent_row, event, webhook, webhook_delivery};
use vitalfarm_storage::farm_crypto::MasterKey;
use vitalfarm_storage::repo::webhooks as repo;

use crate::auth::secrets;
use crate::events::{self, EventKind};
use crate::state::AppState;

/// The kind of the ping `POST .../webhooks/{wid}/test` sends; not an event
/// anyone subscribes to.
pub const TEST_KIND: &str = "webhook.test";

const SECRET_KEY_INFO: &[u8] = b"vitalfarm/webhook-secret/v1";
const TAG_LEN: usize = 16;
/// Events fanned out, deliveries claimed, devices flagged per round.
const BATCH: u64 = 50;
/// Later waits, as multiples of the base wait: 5 s, 30 s, 2 min, 10 min,
/// 1 h, 2 h, 4 h, 8 h with the default base.
const BACKOFF: [u64; 8] = [1, 6, 24, 120, 720, 1440, 2880, 5760];

fn sealing_key(master: &MasterKey) -> anyhow::Result<LessSafeKey> {
    let ikm = STANDARD
        .decode(master.to_base64())
        .map_err(|_| anyhow::anyhow!("master key encoding"))?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(&ikm);
    let info = [SECRET_KEY_INFO];
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .map_err(|_| anyhow::anyhow!("webhook key derivation"))?;
    let mut bytes = [0u8; 32];
    okm.fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("webhook key derivation"))?;
    let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| anyhow::anyhow!("webhook key"));
    bytes.fill(0);
    Ok(LessSafeKey::new(key?))
}

/// Seals a signing key for storage: base64 of `nonce || ciphertext || tag`,
/// bound to the endpoint id.
pub fn seal(master: &MasterKey, webhook_id: Uuid, key: &[u8]) -> anyhow::Result<String> {
    let nonce: [u8; NONCE_LEN] = secrets::random_bytes()?;
    let mut buf = key.to_vec();
    let tag = sealing_key(master)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(webhook_id.as_bytes()),
            &mut buf,
        )
        .map_err(|_| anyhow::anyhow!("sealing a webhook secret failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    out.extend_from_slice(tag.as_ref());
    Ok(STANDARD.encode(out))
}

/// Reverses [`seal`].
pub fn open(master: &MasterKey, webhook_id: Uuid, sealed: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = STANDARD
        .decode(sealed)
        .map_err(|_| anyhow::anyhow!("sealed webhook secret is not base64"))?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        anyhow::bail!("sealed webhook secret is too short");
    }
    let (nonce, rest) = bytes.split_at_mut(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("webhook secret nonce"))?;
    let plain = sealing_key(master)?
        .open_in_place(nonce, Aad::from(webhook_id.as_bytes()), rest)
        .map_err(|_| anyhow::anyhow!("webhook secret does not open with this master key"))?;
    Ok(plain.to_vec())
}

/// A new signing key and its `whsec_` form (shown once), sealed for
/// endpoint `webhook_id`.
pub fn new_secret(master: &MasterKey, webhook_id: Uuid) -> anyhow::Result<(String, String)> {
    let key: [u8; signing::SECRET_LEN] = secrets::random_bytes()?;
    Ok((signing::format_secret(&key), seal(master, webhook_id, &key)?))
}

/// Checks an endpoint URL: `https`, or `http` to a loopback address (for
/// receivers on the same machine); no credentials, no fragment. The message
/// says what is wrong.
pub fn check_url(text: &str, allow_private: bool) -> Result<reqwest::Url, &'static str> {
    if text.len() > 2048 {
        return Err("must be at most 2048 characters");
    }
    let url = reqwest::Url::parse(text).map_err(|_| "must be an absolute URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment");
    }
    // A name is checked again when it is resolved (`PublicOnly`); an
    // address is judged here and before every delivery.
    let (loopback, public) = match url.host() {
        Some(url::Host::Domain(d)) => {
            let local = d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost");
            (local, !local)
        }
        Some(url::Host::Ipv4(ip)) => (ip.is_loopback(), is_public(IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => (ip.is_loopback(), is_public(IpAddr::V6(ip))),
        None => return Err("must have a host"),
    };
    if !public && !allow_private {
        return Err("must point at a public address (private, loopback and link-local ones are refused)");
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err("must use https (http only to a loopback address)"),
        _ => Err("must be an https URL"),
    }
}

/// Whether a webhook may reach `ip` without `webhook_allow_private_networks`:
/// a delivery must not become a way into the service's own network
/// (loopback, private and shared ranges, link-local including cloud
/// metadata at 169.254.169.254, unique-local IPv6, and so on).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // Shared address space (RFC 6598) and IETF protocol assignments.
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                // Benchmarking (RFC 2544) and reserved (240/4).
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // Documentation (2001:db8::/32).
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// A resolver that keeps only public addresses, so a name cannot lead a
/// delivery into the private network however its DNS answers (checked at
/// connection time, which also defeats rebinding after registration).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err("the host has no public address".into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The body every delivery of `e` carries.
pub fn body_of(kind: &str, at: chrono::DateTime<Utc>, data: serde_json::Value) -> String {
    json!({
        "type": kind,
        "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string()
}

fn event_body(e: &event::Model) -> String {
    let data = serde_json::from_str(&e.payload).unwrap_or_else(|_| json!({}));
    body_of(&e.kind, e.created_at, data)
}

/// `consent.granted` or `consent.revoked` to both parties of `row`.
pub async fn emit_consent(
    conn: &impl ConnectionTrait,
    row: &consent_row::Model,
    kind: EventKind,
) -> Result<(), StorageError> {
    for membership in [row.grantor_membership_id, row.grantee_membership_id] {
        emit_consent_to(conn, row, kind, membership).await?;
    }
    Ok(())
}

async fn emit_consent_to(
    conn: &impl ConnectionTrait,
    row: &consent_row::Model,
    kind: EventKind,
    membership: Uuid,
) -> Result<(), StorageError> {
    let data = json!({
        "consent_id": row.id,
        "grantor_membership_id": row.grantor_membership_id,
        "grantee_membership_id": row.grantee_membership_id,
        "access": row.access,
    });
    events::emit(conn, MembershipId::from_uuid(membership), kind, None, data).await?;
    Ok(())
}

/// Inside an erasure's transaction, before its consents end: tells the
/// other party of each open consent that it is revoked, and removes the
/// erased membership's endpoints and deliveries.
pub async fn erase_in(txn: &DatabaseTransaction, membership: MembershipId) -> Result<(), StorageError> {
    for row in repo::open_consents_in(txn, membership).await? {
        let other = if row.grantor_membership_id == membership.as_uuid() {
            row.grantee_membership_id
        } else {
            row.grantor_membership_id
        };
        if other != membership.as_uuid() {
            emit_consent_to(txn, &row, EventKind::ConsentRevoked, other).await?;
        }
    }
    repo::delete_all_in(txn, membership).await
}

/// `export.ready` for a finished export job.
pub async fn emit_export_ready(state: &AppState, job: &vitalfarm_storage::entity::job::Model) {
    let data = json!({
        "export_id": job.id,
        "membership_id": job.membership_id,
        "download_url": format!("/v1/memberships/{}/exports/{}/download", job.membership_id, job.id),
    });
    let emitted = events::emit(
        state.db.conn(),
        MembershipId::from_uuid(job.membership_id),
        EventKind::ExportReady,
        None,
        data,
    )
    .await;
    if let Err(e) = emitted {
        tracing::warn!(job_id = %job.id, error = %e, "emitting export.ready failed");
    }
}

/// Runs the webhook loop until shutdown (`stop`), after the round in progress.
pub async fn run(state: Arc<AppState>, stop: tokio_util::sync::CancellationToken) {
    let mut builder = reqwest::Client::builder();
    if !state.config.webhook_allow_private_networks {
        builder = builder.dns_resolver(PublicOnly);
    }
    let client = match builder
        .timeout(Duration::from_millis(state.config.webhook_timeout_ms))
        .connect_timeout(Duration::from_millis(state.config.webhook_timeout_ms))
        // A redirect could lead anywhere, past the URL rules: a 3xx is a
        // failed attempt instead.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("vitalfarm-webhooks/1")
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook HTTP client could not be built; webhooks are off on this node");
            return;
        }
    };
    let idle = Duration::from_millis(state.config.webhook_poll_interval_ms);
    while !stop.is_cancelled() {
        let busy = round(&state, &client).await;
        if !busy && !crate::workers::idle(&stop, idle).await {
            return;
        }
    }
}

/// One pass of the three steps; `true` when a full batch suggests more work.
pub async fn round(state: &AppState, client: &reqwest::Client) -> bool {
    let mut busy = false;
    match sweep_offline(state).await {
        Ok(n) => busy |= n as u64 >= BATCH,
        Err(e) => tracing::warn!(error = %e, "device offline sweep failed"),
    }
    match repo::dispatch(&state.db, BATCH, event_body).await {
        Ok(n) => busy |= n as u64 >= BATCH,
        Err(e) => tracing::warn!(error = %e, "webhook dispatch failed"),
    }
    match deliver_due(state, client).await {
        Ok(n) => busy |= n as u64 >= BATCH,
        Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
    }
    busy
}

/// Flags devices whose silence is due offline and emits `device.offline`
/// to the fleet owner and, when another, the bound membership.
pub async fn sweep_offline(state: &AppState) -> Result<usize, StorageError> {
    let now_ms = Utc::now().timestamp_millis();
    let mut flagged = 0;
    for dev in repo::due_offline(&state.db, now_ms, BATCH).await? {
        let txn = state.db.conn().begin().await?;
        if !repo::flag_offline(&txn, &dev, now_ms).await? {
            txn.rollback().await?;
            continue;
        }
        let base = json!({
            "device_id": dev.id,
            "serial": dev.serial,
            "last_seen_at": dev.last_seen_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        });
        events::emit(
            &txn,
            MembershipId::from_uuid(dev.owner_membership_id),
            EventKind::DeviceOffline,
            None,
            base.clone(),
        )
        .await?;
        if let Some(bound) = dev.bound_membership_id.filter(|b| *b != dev.owner_membership_id) {
            let mut data = base;
            data["subject_id"] = json!(dev.subject_id);
            events::emit(
                &txn,
                MembershipId::from_uuid(bound),
                EventKind::DeviceOffline,
                dev.subject_id.map(SubjectId::from_uuid),
                data,
            )
            .await?;
        }
        txn.commit().await?;
        flagged += 1;
        tracing::info!(device_id = %dev.id, "device flagged offline");
    }
    Ok(flagged)
}

/// The wait before attempt `done + 1`, after `done` failed ones: the base
/// times the table, give or take a fifth at random so that endpoints coming
/// back are not hit by every retry at once.
pub fn backoff_ms(base_ms: u64, done: u32) -> u64 {
    let idx = usize::try_from(done.saturating_sub(1))
        .unwrap_or(usize::MAX)
        .min(BACKOFF.len() - 1);
    let wait = base_ms.saturating_mul(BACKOFF[idx]);
    let r = secrets::random_bytes::<2>().map_or(0x8000, u16::from_le_bytes);
    // 80% to 120% of the wait.
    let permille = 800 + u64::from(r) * 400 / u64::from(u16::MAX);
    wait.saturating_mul(permille) / 1000
}

async fn deliver_due(state: &AppState, client: &reqwest::Client) -> Result<usize, StorageError> {
    let now_ms = Utc::now().timestamp_millis();
    // Long enough for the attempt and its record; past it another node may
    // take the delivery over.
    let lease_ms = i64::try_from(state.config.webhook_timeout_ms.saturating_mul(2) + 10_000).unwrap_or(60_000);
    let claimed = repo::claim_due(&state.db, now_ms, now_ms + lease_ms, BATCH).await?;
    let n = claimed.len();
    futures_util::future::join_all(claimed.into_iter().map(|d| attempt(state, client, d))).await;
    Ok(n)
}

/// What one attempt gave.
struct Outcome {
    status_code: Option<u16>,
    error: Option<&'static str>,
}

async fn send(state: &AppState, client: &reqwest::Client, d: &webhook_delivery::Model) -> Outcome {
    let fail = |error| Outcome {
        status_code: None,
        error: Some(error),
    };
    let hook = match repo::find(&state.db, d.webhook_id).await {
        Ok(Some(h)) => h,
        Ok(None) => return fail("endpoint_deleted"),
        Err(_) => return fail("internal"),
    };
    // Disabled after this delivery was claimed (the authorization of the
    // app that made the endpoint ended): nothing more goes out.
    if !hook.enabled {
        return fail("endpoint_disabled");
    }
    let Ok(key) = open(&state.master_key, hook.id, &hook.secret_sealed) else {
        return fail("secret_unavailable");
    };
    // The rules may have tightened since the endpoint was registered.
    if check_url(&hook.url, state.config.webhook_allow_private_networks).is_err() {
        return fail("address_refused");
    }
    send_to(client, &hook, &key, d).await
}

async fn send_to(client: &reqwest::Client, hook: &webhook::Model, key: &[u8], d: &webhook_delivery::Model) -> Outcome {
    let id = d.event_id.to_string();
    let ts = Utc::now().timestamp();
    let signature = signing::sign(key, &id, ts, &d.body);
    let res = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(d.body.clone())
        .send()
        .await;
    match res {
        Ok(r) => {
            let code = r.status().as_u16();
            Outcome {
                status_code: Some(code),
                error: (!r.status().is_success()).then_some("http_status"),
            }
        }
        Err(e) if e.is_timeout() => Outcome {
            status_code: None,
            error: Some("timeout"),
        },
        Err(e) if e.is_connect() => Outcome {
            status_code: None,
            error: Some("connect"),
        },
        Err(_) => Outcome {
            status_code: None,
            error: Some("request"),
        },
    }
}

async fn attempt(state: &AppState, client: &reqwest::Client, d: webhook_delivery::Model) {
    let started_at = Utc::now();
    let clock = Instant::now();
    let outcome = send(state, client, &d).await;
    let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let attempts = d.attempts + 1;
    let mut log: Vec<serde_json::Value> = serde_json::from_str(&d.attempt_log).unwrap_or_default();
    log.push(json!({
        "at": started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "status_code": outcome.status_code,
        "duration_ms": duration_ms,
        "error": outcome.error,
    }));
    let done = u32::try_from(attempts).unwrap_or(u32::MAX);
    let (status, next) = if outcome.error.is_none() {
        (repo::DELIVERED, None)
    } else if done >= state.config.webhook_max_attempts
        || matches!(outcome.error, Some("endpoint_deleted" | "endpoint_disabled"))
    {
        (repo::FAILED, None)
    } else {
        let wait = i64::try_from(backoff_ms(state.config.webhook_backoff_base_ms, done)).unwrap_or(i64::MAX / 2);
        (repo::PENDING, Some(Utc::now().timestamp_millis().saturating_add(wait)))
    };
    let recorded = repo::record(
        &state.db,
        &d,
        repo::Attempted {
            status,
            attempts,
            next_attempt_at_ms: next,
            attempt_log: serde_json::Value::Array(log).to_string(),
        },
    )
    .await;
    match recorded {
        Ok(true) => tracing::info!(
            delivery_id = %d.id,
            webhook_id = %d.webhook_id,
            attempt = attempts,
            status_code = outcome.status_code,
            error = outcome.error,
            status,
            "webhook attempt"
        ),
        Ok(false) => tracing::warn!(delivery_id = %d.id, "webhook delivery lost to another node; attempt not recorded"),
        Err(e) => tracing::warn!(delivery_id = %d.id, error = %e, "recording a webhook attempt failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_with_jitter_and_stop_growing() {
        for (done, mult) in [(1, 1), (2, 6), (3, 24), (4, 120), (5, 720), (8, 5760), (20, 5760)] {
            for _ in 0..20 {
                let wait = backoff_ms(5000, done);
                let nominal = 5000 * mult;
                assert!(wait >= nominal * 8 / 10 && wait <= nominal * 12 / 10, "{done}: {wait}");
            }
        }
    }

    #[test]
    fn secrets_open_only_for_their_endpoint_and_master_key() {
        let master = MasterKey::generate().unwrap();
        let id = Uuid::now_v7();
        let sealed = seal(&master, id, b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(open(&master, id, &sealed).unwrap(), b"0123456789abcdef0123456789abcdef");
        assert!(open(&master, Uuid::now_v7(), &sealed).is_err());
        assert!(open(&MasterKey::generate().unwrap(), id, &sealed).is_err());
        assert!(open(&master, id, "AAAA").is_err());
    }

    #[test]
    fn urls_must_be_https_or_loopback_http_without_credentials() {
        for ok in [
            "https://hooks.example.com/in",
            "https://hooks.example.com:8443/in?x=1",
            "http://127.0.0.1:9000/in",
            "http://localhost/in",
            "http://[::1]:80/in",
        ] {
            assert!(check_url(ok, true).is_ok(), "{ok}");
        }
        for bad in [
            "http://hooks.example.com/in",
            "http://10.0.0.1/in",
            "https://u:p@hooks.example.com/",
            "https://u@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "ftp://hooks.example.com/",
            "hooks.example.com",
            "",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn without_the_private_network_switch_only_public_addresses_pass() {
        for ok in [
            "https://hooks.example.com/in",
            "https://93.184.215.14/in",
            "https://[2606:4700::1111]/",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:9000/in",
            "https://127.0.0.1/in",
            "https://localhost/in",
            "https://api.localhost/in",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
    }
}
