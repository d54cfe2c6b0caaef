//! Webhooks against a real receiver: an HTTP server inside the test that
//! records every request and answers 500 when told to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vitalfarm_storage::entity::{device, event, webhook};
use vitalfarm_tests::{Member, TestApp, self_subject};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    headers: HashMap<String, String>,
    body: String,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1: one request per connection.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    fail_next: Arc<AtomicUsize>,
    fail_all: Arc<AtomicBool>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let fail_next = Arc::new(AtomicUsize::new(0));
        let fail_all = Arc::new(AtomicBool::new(false));
        let (h, n, a) = (hits.clone(), fail_next.clone(), fail_all.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (h, n, a) = (h.clone(), n.clone(), a.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let Ok(read) = sock.read(&mut chunk).await else { return };
                        if read == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..read]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let headers: HashMap<String, String> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    while buf.len() < head_end + len {
                        let Ok(read) = sock.read(&mut chunk).await else { return };
                        if read == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..read]);
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                    h.lock().unwrap().push(Hit { headers, body });
                    let fail = a.load(Ordering::SeqCst)
                        || n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |x| x.checked_sub(1))
                            .is_ok();
                    let status = if fail { "500 Internal Server Error" } else { "200 OK" };
                    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                    let _ = sock.write_all(reply.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self {
            url,
            hits,
            fail_next,
            fail_all,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn of_type(&self, kind: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.json()["type"] == kind).collect()
    }

    /// Waits (generously) until `n` requests of `kind` arrived.
    async fn wait_for(&self, kind: &str, n: usize) -> Vec<Hit> {
        for _ in 0..600 {
            let hits = self.of_type(kind);
            if hits.len() >= n {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {n} {kind} deliveries; got {:?}", self.hits());
    }
}

fn quick(c: &mut vitalfarm_app::config::Config) {
    c.webhook_poll_interval_ms = 50;
    c.webhook_backoff_base_ms = 50;
    c.webhook_max_attempts = 3;
    c.webhook_timeout_ms = 5000;
}

/// Checks a delivery's Standard Webhooks signature with `secret`,
/// computing the HMAC here, independently of the server.
fn verify(hit: &Hit, secret: &str) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let signed = format!(
        "{}.{}.{}",
        hit.header("webhook-id"),
        hit.header("webhook-timestamp"),
        hit.body
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    hit.header("webhook-signature").split(' ').any(|s| s == expected)
}

fn hooks_path(m: &Member) -> String {
    format!("/v1/memberships/{}/webhooks", m.membership_id)
}

/// Registers `url` for `events`; returns (id, secret).
async fn register(app: &TestApp, m: &Member, url: &str, events: Value) -> (String, String) {
    let res = app
        .post(&hooks_path(m), Some(&m.token), json!({"url": url, "events": events}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let secret = res.str("/secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    (res.str("/webhook/id"), secret)
}

async fn history(app: &TestApp, m: &Member, wid: &str, query: &str) -> Vec<Value> {
    let res = app
        .get(&format!("{}/{wid}/deliveries{query}", hooks_path(m)), &m.token)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.body["items"].as_array().unwrap().clone()
}

/// Waits until the newest delivery of `wid` is no longer pending.
async fn settled(app: &TestApp, m: &Member, wid: &str) -> Value {
    for _ in 0..600 {
        let items = history(app, m, wid, "").await;
        if let Some(d) = items.first()
            && d["status"] != "pending"
        {
            return d.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("delivery of {wid} never settled");
}

/// Waits until every event has been fanned out into deliveries.
async fn all_dispatched(app: &TestApp) {
    for _ in 0..600 {
        let left = event::Entity::find()
            .filter(event::Column::DispatchedAt.is_null())
            .count(app.db().conn())
            .await
            .unwrap();
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("events were never dispatched");
}

#[tokio::test]
async fn consent_events_reach_both_parties_signed_and_only_when_subscribed() {
    let app = TestApp::spawn_with(quick).await;
    let ann = app.individual("ann.hooks@example.org").await;
    let care = app.company("hooks@care.example").await;
    let ann_rx = Receiver::start().await;
    let care_rx = Receiver::start().await;
    let (_, ann_secret) = register(&app, &ann, &ann_rx.url, json!(["consent.granted", "consent.revoked"])).await;
    let (care_hook, care_secret) = register(&app, &care, &care_rx.url, json!(["consent.granted"])).await;

    let me = self_subject(&app, &ann).await;
    let consent = app.grant_consent(&ann, &care, &[&me], &["heart_rate"], "care").await;

    for (rx, secret) in [(&ann_rx, &ann_secret), (&care_rx, &care_secret)] {
        let hit = &rx.wait_for("consent.granted", 1).await[0];
        assert!(verify(hit, secret), "signature does not verify: {hit:?}");
        assert!(!verify(hit, &ann_secret) || secret == &ann_secret);
        let body = hit.json();
        assert_eq!(body["data"]["consent_id"], consent);
        assert_eq!(body["data"]["grantee_membership_id"], json!(care.membership_id));
        assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
        let ts: i64 = hit.header("webhook-timestamp").parse().unwrap();
        assert!((Utc::now().timestamp() - ts).abs() < 3600);
        assert_eq!(hit.header("content-type"), "application/json");
    }
    // Each endpoint signs with its own secret.
    assert!(!verify(&care_rx.of_type("consent.granted")[0], &ann_secret));

    // Revoked: Ann's endpoint hears it; the company's did not subscribe.
    let res = app.delete(&format!("/v1/consents/{consent}"), &ann.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let hit = &ann_rx.wait_for("consent.revoked", 1).await[0];
    assert_eq!(hit.json()["data"]["consent_id"], consent);
    all_dispatched(&app).await;
    let care_history = history(&app, &care, &care_hook, "").await;
    assert_eq!(care_history.len(), 1, "{care_history:?}");
    assert_eq!(care_history[0]["type"], "consent.granted");
    assert!(care_rx.of_type("consent.revoked").is_empty());
}

#[tokio::test]
async fn export_ready_is_delivered() {
    let app = TestApp::spawn_with(|c| {
        quick(c);
        c.job_poll_interval_ms = 50;
    })
    .await;
    let acme = app.company("hooks@acme-export.example").await;
    let rx = Receiver::start().await;
    register(&app, &acme, &rx.url, json!(["export.ready"])).await;
    let res = app
        .post(
            &format!("/v1/memberships/{}/exports", acme.membership_id),
            Some(&acme.token),
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let export = res.str("/id");
    let hit = &rx.wait_for("export.ready", 1).await[0];
    assert_eq!(hit.json()["data"]["export_id"], export);
    assert_eq!(hit.header("webhook-id").len(), 36);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_answers() {
    let app = TestApp::spawn_with(quick).await;
    let acme = app.company("hooks@acme-retry.example").await;
    let rx = Receiver::start().await;
    rx.fail_next.store(2, Ordering::SeqCst);
    let (wid, secret) = register(&app, &acme, &rx.url, json!(["alert.opened"])).await;
    let res = app
        .post(
            &format!("{}/{wid}/test", hooks_path(&acme)),
            Some(&acme.token),
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let event_id = res.str("/event_id");

    let d = settled(&app, &acme, &wid).await;
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(d["event_id"], event_id);
    assert_eq!(d["type"], "webhook.test");
    let codes: Vec<Value> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, vec![json!(500), json!(500), json!(200)], "{d}");
    assert_eq!(d["attempts"][0]["error"], "http_status");
    assert_eq!(d["attempts"][2]["error"], Value::Null);
    assert_eq!(d["next_attempt_at"], Value::Null);
    let hits = rx.of_type("webhook.test");
    assert_eq!(hits.len(), 3);
    assert!(
        hits.iter()
            .all(|h| h.header("webhook-id") == event_id && verify(h, &secret))
    );
    assert!(hits.iter().all(|h| h.body == hits[0].body));
}

#[tokio::test]
async fn a_receiver_that_always_fails_ends_failed_after_the_last_attempt() {
    let app = TestApp::spawn_with(quick).await;
    let acme = app.company("hooks@acme-fail.example").await;
    let rx = Receiver::start().await;
    rx.fail_all.store(true, Ordering::SeqCst);
    let (wid, _) = register(&app, &acme, &rx.url, json!(["alert.opened"])).await;
    let res = app
        .post(
            &format!("{}/{wid}/test", hooks_path(&acme)),
            Some(&acme.token),
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let d = settled(&app, &acme, &wid).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 3, "{d}");
    assert_eq!(d["next_attempt_at"], Value::Null);
    assert_eq!(history(&app, &acme, &wid, "?status=failed").await.len(), 1);
    assert!(history(&app, &acme, &wid, "?status=delivered").await.is_empty());
    assert_eq!(rx.hits().len(), 3);
    // An unreachable endpoint fails the same way, with the error class.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/gone", closed.local_addr().unwrap());
    drop(closed);
    let (wid, _) = register(&app, &acme, &dead, json!(["alert.opened"])).await;
    app.post(
        &format!("{}/{wid}/test", hooks_path(&acme)),
        Some(&acme.token),
        json!({}),
    )
    .await;
    let d = settled(&app, &acme, &wid).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["attempts"][0]["error"], "connect", "{d}");
    assert_eq!(d["attempts"][0]["status_code"], Value::Null);
}

#[tokio::test]
async fn silent_devices_go_offline_once_and_a_reading_brings_them_back() {
    let app = TestApp::spawn_with(|c| {
        quick(c);
        c.device_offline_after_secs = 1;
    })
    .await;
    let acme = app.company("hooks@acme-fleet.example").await;
    let rx = Receiver::start().await;
    register(&app, &acme, &rx.url, json!(["device.offline"])).await;
    let dev = app.monitored_device(&acme, "HOOK-1").await;
    let at = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    app.ingest(
        &dev,
        json!([{"metric": "heart_rate", "ts": at(Utc::now()), "value": 70}]),
    )
    .await;
    let hit = &rx.wait_for("device.offline", 1).await[0];
    assert_eq!(hit.json()["data"]["device_id"], dev.id);
    assert_eq!(hit.json()["data"]["serial"], "HOOK-1");
    let id: uuid::Uuid = dev.id.parse().unwrap();
    let row = device::Entity::find_by_id(id)
        .one(app.db().conn())
        .await
        .unwrap()
        .unwrap();
    assert!(row.offline_at_ms.is_some() && row.offline_due_ms.is_none(), "{row:?}");

    // A reading clears the flag; silence again makes a second event.
    app.ingest(
        &dev,
        json!([{"metric": "heart_rate", "ts": at(Utc::now()), "value": 71}]),
    )
    .await;
    let row = device::Entity::find_by_id(id)
        .one(app.db().conn())
        .await
        .unwrap()
        .unwrap();
    assert!(row.offline_at_ms.is_none() && row.offline_due_ms.is_some(), "{row:?}");
    rx.wait_for("device.offline", 2).await;

    // A claimed device: the maker's fleet and the buyer both hear of it.
    let ann = app.individual("ann.fleet@example.org").await;
    let ann_rx = Receiver::start().await;
    register(&app, &ann, &ann_rx.url, json!(["device.offline"])).await;
    let me = self_subject(&app, &ann).await;
    let watch = app.claimed_device(&ann, &me, "HOOKW-1").await;
    app.ingest(
        &watch,
        json!([{"metric": "heart_rate", "ts": at(Utc::now()), "value": 72}]),
    )
    .await;
    let hit = &ann_rx.wait_for("device.offline", 1).await[0];
    assert_eq!(hit.json()["data"]["device_id"], watch.id);
    assert_eq!(hit.json()["data"]["subject_id"], me);
}

#[tokio::test]
async fn webhook_management_validation_secrecy_rotation_and_isolation() {
    let app = TestApp::spawn_with(quick).await;
    let acme = app.company("hooks@acme-admin.example").await;
    let path = hooks_path(&acme);

    // Bad URLs and event kinds: 400 naming the field, nothing stored.
    for url in [
        "http://hooks.example.com/x",
        "https://user:pw@hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "not a url",
        "/relative",
        "http://10.0.0.1/x",
    ] {
        let res = app
            .post(
                &path,
                Some(&acme.token),
                json!({"url": url, "events": ["alert.opened"]}),
            )
            .await;
        res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), vec!["url".to_owned()], "{url}: {}", res.text);
    }
    let res = app
        .post(
            &path,
            Some(&acme.token),
            json!({"url": "https://h.example/x", "events": ["alert.opened", "nope"]}),
        )
        .await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), vec!["events[1]".to_owned()]);
    let res = app
        .post(
            &path,
            Some(&acme.token),
            json!({"url": "https://h.example/x", "events": []}),
        )
        .await;
    assert_eq!(res.fields(), vec!["events".to_owned()]);
    assert_eq!(webhook::Entity::find().count(app.db().conn()).await.unwrap(), 0);

    // The secret is shown once, stored sealed, never listed.
    let rx = Receiver::start().await;
    let (wid, secret) = register(&app, &acme, &rx.url, json!(["alert.opened", "alert.opened"])).await;
    let one = app.get(&format!("{path}/{wid}"), &acme.token).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["events"], json!(["alert.opened"]));
    let list = app.get(&path, &acme.token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let key_b64 = secret.trim_start_matches("whsec_");
    for res in [&one, &list] {
        assert!(
            !res.text.contains(key_b64) && !res.text.contains("secret"),
            "{}",
            res.text
        );
    }
    let stored = webhook::Entity::find().one(app.db().conn()).await.unwrap().unwrap();
    assert!(!stored.secret_sealed.contains(key_b64));

    // Rotation: later deliveries verify with the new secret only.
    let res = app
        .post(&format!("{path}/{wid}/rotate-secret"), Some(&acme.token), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let rotated = res.str("/secret");
    assert_ne!(rotated, secret);
    app.post(&format!("{path}/{wid}/test"), Some(&acme.token), json!({}))
        .await;
    let hit = &rx.wait_for("webhook.test", 1).await[0];
    assert!(verify(hit, &rotated) && !verify(hit, &secret));

    // Another company: 404 on every route; a developer of Acme: 403.
    let rival = app.company("hooks@rival.example").await;
    let developer = app.staff(&acme, "dev@acme-admin.example", "developer").await;
    let routes = [
        (
            Method::POST,
            path.clone(),
            Some(json!({"url": "https://h.example/x", "events": ["alert.opened"]})),
        ),
        (Method::GET, path.clone(), None),
        (Method::GET, format!("{path}/{wid}"), None),
        (Method::POST, format!("{path}/{wid}/rotate-secret"), Some(json!({}))),
        (Method::GET, format!("{path}/{wid}/deliveries"), None),
        (Method::POST, format!("{path}/{wid}/test"), Some(json!({}))),
        (Method::DELETE, format!("{path}/{wid}"), None),
    ];
    for (method, p, body) in &routes {
        let res = app.call(method.clone(), p, Some(&rival.token), body.clone()).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "rival {method} {p}: {}", res.text);
        let res = app.call(method.clone(), p, Some(&developer), body.clone()).await;
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "developer {method} {p}: {}",
            res.text
        );
    }
    // Rival's own id in Acme's path is not found either.
    let rival_rx = Receiver::start().await;
    let (rival_hook, _) = register(&app, &rival, &rival_rx.url, json!(["alert.opened"])).await;
    let res = app.get(&format!("{path}/{rival_hook}"), &acme.token).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = app.delete(&format!("{path}/{rival_hook}"), &acme.token).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    // Deletion, audited with the rest.
    let res = app.delete(&format!("{path}/{wid}"), &acme.token).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let res = app.get(&format!("{path}/{wid}"), &acme.token).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let actions = app.audit_actions(acme.membership_id, &acme.token).await;
    for a in ["webhook.created", "webhook.secret_rotated", "webhook.deleted"] {
        assert!(actions.iter().any(|x| x == a), "{a} missing from {actions:?}");
    }
}

#[tokio::test]
async fn erasure_removes_the_endpoints_and_tells_the_other_party() {
    let app = TestApp::spawn_with(quick).await;
    let zed = app.individual("zed.hooks@example.org").await;
    let care = app.company("hooks@care-erasure.example").await;
    let zed_rx = Receiver::start().await;
    let care_rx = Receiver::start().await;
    register(&app, &zed, &zed_rx.url, json!(["consent.granted", "consent.revoked"])).await;
    register(&app, &care, &care_rx.url, json!(["consent.revoked"])).await;
    let me = self_subject(&app, &zed).await;
    let consent = app.grant_consent(&zed, &care, &[&me], &["heart_rate"], "care").await;
    zed_rx.wait_for("consent.granted", 1).await;

    let res = app
        .call(
            Method::DELETE,
            &format!("/v1/memberships/{}", zed.membership_id),
            Some(&zed.token),
            Some(json!({"password": vitalfarm_tests::PASSWORD, "confirm": "zed.hooks@example.org's individual"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    let hit = &care_rx.wait_for("consent.revoked", 1).await[0];
    assert_eq!(hit.json()["data"]["consent_id"], consent);
    all_dispatched(&app).await;
    let left = webhook::Entity::find()
        .filter(webhook::Column::MembershipId.eq(zed.membership_id))
        .count(app.db().conn())
        .await
        .unwrap();
    assert_eq!(left, 0);
    let deliveries = vitalfarm_storage::entity::webhook_delivery::Entity::find()
        .filter(vitalfarm_storage::entity::webhook_delivery::Column::MembershipId.eq(zed.membership_id))
        .count(app.db().conn())
        .await
        .unwrap();
    assert_eq!(deliveries, 0);
    // The erased side hears nothing of its own erasure.
    assert!(zed_rx.of_type("consent.revoked").is_empty());
}

#[tokio::test]
async fn an_approved_request_announces_the_consent_to_both_sides() {
    let app = TestApp::spawn_with(quick).await;
    let ivy = app.individual("ivy.hooks@example.org").await;
    let care = app.company("hooks@care-request.example").await;
    let ivy_rx = Receiver::start().await;
    let care_rx = Receiver::start().await;
    register(&app, &ivy, &ivy_rx.url, json!(["consent.granted"])).await;
    register(&app, &care, &care_rx.url, json!(["consent.granted"])).await;
    let request = app
        .post(
            "/v1/consent-requests",
            Some(&care.token),
            json!({"individual_email": "ivy.hooks@example.org", "metrics": ["heart_rate"], "farm_paths": [],
                "purpose": "care", "access": "read", "duration": "P30D"}),
        )
        .await;
    assert_eq!(request.status, StatusCode::CREATED, "{}", request.text);
    let me = self_subject(&app, &ivy).await;
    let res = app
        .post(
            &format!("/v1/consent-requests/{}/approve", request.str("/id")),
            Some(&ivy.token),
            json!({"subject_ids": [me]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let consent = res.str("/id");
    for rx in [&ivy_rx, &care_rx] {
        let hit = &rx.wait_for("consent.granted", 1).await[0];
        assert_eq!(hit.json()["data"]["consent_id"], consent);
        assert_eq!(hit.json()["data"]["grantor_membership_id"], json!(ivy.membership_id));
    }
}

/// With the production default, an endpoint on loopback or a private
/// network is refused at registration (names are checked again when a
/// delivery resolves them).
#[tokio::test]
async fn private_network_endpoints_are_refused_by_default() {
    let app = TestApp::spawn_with(|c| {
        quick(c);
        c.webhook_allow_private_networks = false;
    })
    .await;
    let acme = app.company("hooks@acme-private.example").await;
    for url in [
        "http://127.0.0.1:9/x",
        "https://localhost/x",
        "https://10.0.0.8/x",
        "https://192.168.0.1/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/x",
        "https://[fd12::1]/x",
    ] {
        let res = app
            .post(
                &hooks_path(&acme),
                Some(&acme.token),
                json!({"url": url, "events": ["consent.granted"]}),
            )
            .await;
        res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), vec!["url".to_owned()], "{url}: {}", res.text);
    }
    let listed = app.get(&hooks_path(&acme), &acme.token).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
}

fn high_systolic() -> Value {
    json!({"name": "High systolic", "metric": "blood_pressure", "component": "systolic",
        "condition": {"kind": "threshold", "op": "gt", "value": 180}, "severity": "critical"})
}

fn bp(t: chrono::DateTime<Utc>, systolic: f64) -> Value {
    json!({"metric": "blood_pressure", "ts": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "components": {"systolic": systolic, "diastolic": 80.0}})
}

/// A resolved-then-breached pair of readings `minute` minutes into the
/// scenario: opens a fresh alert on the high-systolic rule.
async fn open_fresh_alert(app: &TestApp, watch: &vitalfarm_tests::MonitoredDevice, minute: i64) {
    let t0 = Utc::now() - chrono::Duration::minutes(60);
    let res = app
        .ingest(
            watch,
            json!([
                bp(t0 + chrono::Duration::minutes(minute), 120.0),
                bp(t0 + chrono::Duration::minutes(minute + 1), 190.0)
            ]),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
}

/// An app with webhook and alert scopes for Ann, its webhook to `rx`
/// (registered with the app's token), and Ann's own high-systolic rule.
struct AppHook {
    app: TestApp,
    ann: Member,
    developer: Member,
    watch: vitalfarm_tests::MonitoredDevice,
    client_id: String,
    token: String,
    wid: String,
}

async fn app_hook(rx: &Receiver) -> AppHook {
    let app = TestApp::spawn_with(|c| {
        quick(c);
        // A failed attempt waits a minute: long enough to see it pending.
        c.webhook_backoff_base_ms = 60_000;
        c.webhook_max_attempts = 5;
    })
    .await;
    let ann = app.individual("ann.apphook@example.org").await;
    let developer = app.company("dev@apphook.example").await;
    let me = self_subject(&app, &ann).await;
    let watch = app.claimed_device(&ann, &me, "W-APP").await;
    let (client_id, token) = crate::oauth::user_app(
        &app,
        &developer,
        &ann,
        &["webhooks.manage", "alerts.read", "alerts.write", "files.write"],
    )
    .await;
    let res = app
        .post(
            &hooks_path(&ann),
            Some(&token),
            json!({"url": rx.url, "events": ["alert.opened"]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let wid = res.str("/webhook/id");
    let res = app
        .post(
            &format!("/v1/memberships/{}/alert-rules", ann.membership_id),
            Some(&ann.token),
            high_systolic(),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    AppHook {
        app,
        ann,
        developer,
        watch,
        client_id,
        token,
        wid,
    }
}

/// Issue 13 item 3: a webhook an app created stops when the person revokes
/// the app's authorization: nothing more is delivered, a delivery waiting
/// for its retry included.
#[tokio::test]
async fn an_apps_webhook_stops_delivering_when_the_user_revokes_the_app() {
    let rx = Receiver::start().await;
    let AppHook {
        app,
        ann,
        watch,
        client_id,
        token,
        wid,
        ..
    } = app_hook(&rx).await;

    // Before: the app's endpoint gets Ann's alerts, values included.
    open_fresh_alert(&app, &watch, 0).await;
    let hit = &rx.wait_for("alert.opened", 1).await[0];
    assert_eq!(hit.json()["data"]["last_value"], 190.0, "{}", hit.body);
    // A second alert whose first attempt fails: its retry is a minute away.
    rx.fail_next.store(1, Ordering::SeqCst);
    open_fresh_alert(&app, &watch, 5).await;
    rx.wait_for("alert.opened", 2).await;
    let pending = {
        let mut found = None;
        for _ in 0..200 {
            let items = history(&app, &ann, &wid, "").await;
            if items
                .first()
                .is_some_and(|d| d["status"] == "pending" && d["attempts"].as_array().is_some_and(|a| !a.is_empty()))
            {
                found = Some(items[0]["id"].clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        found.expect("a delivery waiting for its retry")
    };

    let res = app
        .delete(&format!("/v1/me/authorizations/{client_id}"), &ann.token)
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    assert_eq!(
        app.get(&hooks_path(&ann), &token).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The endpoint is disabled, the waiting delivery failed for good.
    let hook = app.get(&format!("{}/{wid}", hooks_path(&ann)), &ann.token).await;
    assert_eq!(hook.body["enabled"], false, "{}", hook.text);
    let items = history(&app, &ann, &wid, "").await;
    let waiting = items.iter().find(|d| d["id"] == pending).unwrap();
    assert_eq!(waiting["status"], "failed", "{waiting}");
    assert_eq!(waiting["next_attempt_at"], Value::Null);

    // After: an alert fires and nothing arrives.
    let before = rx.of_type("alert.opened").len();
    open_fresh_alert(&app, &watch, 10).await;
    all_dispatched(&app).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.of_type("alert.opened").len(), before, "{:?}", rx.hits());
    assert_eq!(
        history(&app, &ann, &wid, "").await.len(),
        2,
        "no new delivery was queued"
    );
    let actions = app.audit_actions(ann.membership_id, &ann.token).await;
    assert!(actions.iter().any(|a| a == "app.resources_disabled"), "{actions:?}");
}

/// Issue 13 item 3, the developer's side: deleting the app disables what it
/// created for the people who authorized it (webhooks, alert rules, share
/// links); an app revoking its own token through `/oauth/revoke` does too.
#[tokio::test]
async fn an_apps_webhooks_rules_and_links_end_when_the_app_is_deleted() {
    let rx = Receiver::start().await;
    let AppHook {
        app,
        ann,
        developer,
        watch,
        client_id,
        token,
        wid,
    } = app_hook(&rx).await;
    // The app also sets up a rule of its own.
    let res = app
        .post(
            &format!("/v1/memberships/{}/alert-rules", ann.membership_id),
            Some(&token),
            json!({"name": "App: low systolic", "metric": "blood_pressure", "component": "systolic",
                "condition": {"kind": "threshold", "op": "lt", "value": 90}, "severity": "warning"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let app_rule = res.str("/id");
    assert_eq!(res.body["enabled"], true);
    // And a share link to one of Ann's files.
    let up = app
        .upload(&ann.token, ann.farm_id, "notes/today.txt", b"private".to_vec(), &[])
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let link = app
        .post(
            &format!("/v1/farms/{}/share-links", ann.farm_id),
            Some(&token),
            json!({"path": "notes/today.txt", "expires_in": 3600}),
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.text);
    let shared = link.str("/url")[app.base.len()..].to_owned();
    assert_eq!(app.call(Method::GET, &shared, None, None).await.status, StatusCode::OK);
    open_fresh_alert(&app, &watch, 0).await;
    rx.wait_for("alert.opened", 1).await;

    let res = app
        .delete(
            &format!("/v1/memberships/{}/apps/{client_id}", developer.membership_id),
            &developer.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    let hook = app.get(&format!("{}/{wid}", hooks_path(&ann)), &ann.token).await;
    assert_eq!(hook.body["enabled"], false, "{}", hook.text);
    let res = app.call(Method::GET, &shared, None, None).await;
    assert!(
        [StatusCode::GONE, StatusCode::NOT_FOUND].contains(&res.status),
        "the app's share link still works: {}",
        res.text
    );

    // Ann's own rule still opens alerts; the app's endpoint hears none, and
    // the app's rule no longer opens any.
    open_fresh_alert(&app, &watch, 10).await;
    let res = app
        .ingest(&watch, json!([bp(Utc::now() - chrono::Duration::minutes(20), 85.0)]))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    all_dispatched(&app).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.of_type("alert.opened").len(), 1, "{:?}", rx.hits());
    let alerts = app
        .get(&format!("/v1/memberships/{}/alerts", ann.membership_id), &ann.token)
        .await;
    let names: Vec<&str> = alerts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["rule_name"].as_str())
        .collect();
    assert!(names.iter().all(|n| *n == "High systolic"), "{}", alerts.text);
    assert!(!names.is_empty(), "{}", alerts.text);
    let rule = app
        .get(
            &format!("/v1/memberships/{}/alert-rules/{app_rule}", ann.membership_id),
            &ann.token,
        )
        .await;
    assert_eq!(rule.body["enabled"], false, "{}", rule.text);
    let res = app
        .post(&format!("{}/{wid}/test", hooks_path(&ann)), Some(&ann.token), json!({}))
        .await;
    res.problem(409, "conflict");
}

/// Issue 13 item 3: an app revoking its own token through `/oauth/revoke`
/// ends what it created under that authorization too.
#[tokio::test]
async fn an_apps_webhook_ends_when_the_app_revokes_its_token() {
    let rx = Receiver::start().await;
    let AppHook {
        app,
        ann,
        client_id,
        token,
        wid,
        ..
    } = app_hook(&rx).await;
    let res = crate::oauth::revoke(&app, &client_id, None, &token, "access_token").await;
    assert_eq!(res.status(), StatusCode::OK);
    let hook = app.get(&format!("{}/{wid}", hooks_path(&ann)), &ann.token).await;
    assert_eq!(hook.body["enabled"], false, "{}", hook.text);
}
