//! The live stream (`GET /v1/memberships/{mid}/stream`), read with a real
//! Server-Sent Events client: own readings and alerts arrive; another
//! membership's readings arrive only as far as an active consent covers
//! them, and stop when it is revoked; the grantor's audit log shows the
//! stream's reads.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_app::events::{self, EventKind};
use vitalfarm_domain::{MembershipId, SubjectId};
use vitalfarm_tests::{TestApp, self_subject};

/// Long enough for any machine; the tests never measure latency.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Event {
    id: String,
    name: String,
    data: Value,
}

/// A minimal SSE reader over a streamed reqwest body.
struct Sse {
    res: reqwest::Response,
    buf: String,
}

impl Sse {
    async fn open(app: &TestApp, mid: uuid::Uuid, bearer: &str, last_id: Option<&str>) -> Sse {
        let mut req = app
            .client
            .get(app.url(&format!("/v1/memberships/{mid}/stream?max_seconds=120")))
            .bearer_auth(bearer);
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"].to_str().unwrap(), "text/event-stream");
        let mut sse = Sse {
            res,
            buf: String::new(),
        };
        // The server's first line says it is subscribed: whatever is stored
        // from now on reaches this stream.
        let first = sse.frame().await.expect("the stream opens");
        assert_eq!(first, ": stream open");
        sse
    }

    /// The next raw frame (up to a blank line); `None` when the stream ends.
    async fn frame(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.buf.find("\n\n") {
                let frame = self.buf[..at].to_owned();
                self.buf.drain(..at + 2);
                return Some(frame);
            }
            let chunk = tokio::time::timeout(PATIENCE, self.res.chunk())
                .await
                .expect("the stream sends something in time")
                .unwrap()?;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event (comments skipped).
    async fn event(&mut self) -> Option<Event> {
        loop {
            let frame = self.frame().await?;
            let mut e = Event {
                id: String::new(),
                name: String::new(),
                data: Value::Null,
            };
            let mut any = false;
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    e.id = v.to_owned();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    e.name = v.to_owned();
                    any = true;
                } else if let Some(v) = line.strip_prefix("data: ") {
                    e.data = serde_json::from_str(v).unwrap();
                }
            }
            if any {
                return Some(e);
            }
        }
    }

    /// Every event up to and including the first that `done` accepts.
    async fn until(&mut self, done: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut seen = Vec::new();
        loop {
            let e = self.event().await.expect("the stream is still open");
            let last = done(&e);
            seen.push(e);
            if last {
                return seen;
            }
        }
    }
}

fn is_reading(e: &Event, subject: &str, ts: &str) -> bool {
    e.name == "reading" && e.data["subject_id"] == subject && e.data["ts"] == ts
}

#[tokio::test]
async fn own_readings_and_alerts_arrive_on_the_stream() {
    let app = TestApp::spawn().await;
    let acme = app.company("live@acme.example").await;
    let device = app.monitored_device(&acme, "LIVE-1").await;
    let mut sse = Sse::open(&app, acme.membership_id, &acme.token, None).await;

    app.ingest(
        &device,
        json!([
            {"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 72},
            {"metric": "blood_pressure", "ts": "2026-11-21T08:00:00Z", "components": {"systolic": 128, "diastolic": 84}},
        ]),
    )
    .await;
    let seen = sse
        .until(|e| is_reading(e, &device.subject, "2026-11-21T08:00:00Z") && e.data["metric"] == "blood_pressure")
        .await;
    let bp = seen.last().unwrap();
    assert_eq!(
        bp.data,
        json!({
            "subject_id": device.subject, "device_id": device.id, "metric": "blood_pressure",
            "ts": "2026-11-21T08:00:00Z", "value": null,
            "components": {"systolic": 128.0, "diastolic": 84.0},
            "unit": "mm[Hg]", "source": "device"
        })
    );
    assert!(!bp.id.is_empty());
    // The heart rate came too (in either order), without a consent.
    let hr = seen
        .iter()
        .chain(std::iter::once(
            &sse.until(|e| e.data["metric"] == "heart_rate").await[0],
        ))
        .find(|e| e.data["metric"] == "heart_rate")
        .cloned()
        .unwrap();
    assert_eq!(hr.data["value"], json!(72.0));
    assert_eq!(hr.data.get("consent_id"), None);

    // An alert event written to the log (as the alerts engine does).
    let subject = SubjectId::from_uuid(device.subject.parse().unwrap());
    let written = events::emit(
        app.db().conn(),
        MembershipId::from_uuid(acme.membership_id),
        EventKind::AlertOpened,
        Some(subject),
        json!({"alert_id": "01935c6e-0000-7000-8000-0000000000f1", "metric": "heart_rate"}),
    )
    .await
    .unwrap();
    let alert = sse.until(|e| e.name == "alert").await.pop().unwrap();
    assert_eq!(alert.data["id"], json!(written.id));
    assert_eq!(alert.data["type"], "alert.opened");
    assert_eq!(alert.data["subject_id"], json!(device.subject));
    assert_eq!(alert.data["data"]["metric"], "heart_rate");
}

#[tokio::test]
async fn a_consent_streams_what_it_covers_until_it_is_revoked() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann.live@example.org").await;
    let me = self_subject(&app, &ann).await;
    let ann_device = app.claimed_device(&ann, &me, "ANN-LIVE").await;
    let care = app.company("live@care.example").await;
    // The company's own device: its readings mark how far the stream got.
    let marker = app.monitored_device(&care, "CARE-LIVE").await;

    // Before any consent the company sees nothing of Ann's.
    let mut sse = Sse::open(&app, care.membership_id, &care.token, None).await;
    app.ingest(
        &ann_device,
        json!([{"metric": "heart_rate", "ts": "2026-11-21T07:00:00Z", "value": 60}]),
    )
    .await;
    app.ingest(
        &marker,
        json!([{"metric": "heart_rate", "ts": "2026-11-21T07:00:00Z", "value": 61}]),
    )
    .await;
    let seen = sse
        .until(|e| is_reading(e, &marker.subject, "2026-11-21T07:00:00Z"))
        .await;
    assert!(seen.iter().all(|e| e.data["subject_id"] != json!(me)), "{seen:?}");

    // A consent for heart rate starts streaming without reconnecting.
    let consent = app.grant_consent(&ann, &care, &[&me], &["heart_rate"], "care").await;
    let granted = sse.until(|e| e.name == "consent.granted").await.pop().unwrap();
    assert_eq!(
        granted.data,
        json!({"consent_id": consent, "grantor_membership_id": ann.membership_id})
    );

    app.ingest(
        &ann_device,
        json!([
            {"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 70},
            {"metric": "blood_pressure", "ts": "2026-11-21T08:00:00Z", "components": {"systolic": 120, "diastolic": 80}},
        ]),
    )
    .await;
    app.ingest(
        &marker,
        json!([{"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 71}]),
    )
    .await;
    let seen = sse
        .until(|e| is_reading(e, &marker.subject, "2026-11-21T08:00:00Z"))
        .await;
    let ann_seen: Vec<&Event> = seen.iter().filter(|e| e.data["subject_id"] == json!(me)).collect();
    assert_eq!(ann_seen.len(), 1, "heart rate only, not blood pressure: {seen:?}");
    assert_eq!(ann_seen[0].data["metric"], "heart_rate");
    assert_eq!(ann_seen[0].data["value"], json!(70.0));
    assert_eq!(ann_seen[0].data["consent_id"], json!(consent));

    // The grantor's log shows the stream's read under the consent.
    let audit = app.audit(ann.membership_id, &ann.token, "").await;
    assert!(
        audit.iter().any(|e| e["action"] == "data.read"
            && e["resource"] == json!(format!("stream/{}", care.membership_id))
            && e["consent_id"] == json!(consent)),
        "{audit:?}"
    );

    // Revoked mid-stream: announced, and nothing of Ann's after it.
    let res = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/consents/{consent}"),
            Some(&ann.token),
            None,
        )
        .await;
    assert!(res.status.is_success(), "{}", res.text);
    app.ingest(
        &ann_device,
        json!([{"metric": "heart_rate", "ts": "2026-11-21T09:00:00Z", "value": 90}]),
    )
    .await;
    app.ingest(
        &marker,
        json!([{"metric": "heart_rate", "ts": "2026-11-21T09:00:00Z", "value": 91}]),
    )
    .await;
    let seen = sse
        .until(|e| is_reading(e, &marker.subject, "2026-11-21T09:00:00Z"))
        .await;
    assert!(seen.iter().all(|e| e.data["subject_id"] != json!(me)), "{seen:?}");
    let seen = if seen.iter().any(|e| e.name == "consent.revoked") {
        seen
    } else {
        sse.until(|e| e.name == "consent.revoked").await
    };
    let revoked = seen.iter().find(|e| e.name == "consent.revoked").unwrap();
    assert_eq!(revoked.data["consent_id"], json!(consent));
}

#[tokio::test]
async fn a_stream_resumes_after_its_last_event_id() {
    let app = TestApp::spawn().await;
    let acme = app.company("resume@acme.example").await;
    let device = app.monitored_device(&acme, "RESUME-1").await;
    let mut sse = Sse::open(&app, acme.membership_id, &acme.token, None).await;
    app.ingest(
        &device,
        json!([{"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 72}]),
    )
    .await;
    let last = sse
        .until(|e| is_reading(e, &device.subject, "2026-11-21T08:00:00Z"))
        .await
        .pop()
        .unwrap();
    drop(sse);
    // Stored while the client was away.
    app.ingest(
        &device,
        json!([{"metric": "heart_rate", "ts": "2026-11-21T08:01:00Z", "value": 73}]),
    )
    .await;
    let mut sse = Sse::open(&app, acme.membership_id, &acme.token, Some(&last.id)).await;
    let seen = sse
        .until(|e| is_reading(e, &device.subject, "2026-11-21T08:01:00Z"))
        .await;
    assert_eq!(seen.last().unwrap().data["value"], json!(73.0));
}

#[tokio::test]
async fn a_stream_ends_when_the_access_token_expires() {
    let app = TestApp::spawn_with(|c| c.access_token_ttl_secs = 1).await;
    let acme = app.company("expiry@acme.example").await;
    let res = app
        .client
        .get(app.url(&format!("/v1/memberships/{}/stream", acme.membership_id)))
        .bearer_auth(&acme.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // No `max_seconds`: only the token's expiry ends it.
    let body = tokio::time::timeout(PATIENCE, res.text()).await.unwrap().unwrap();
    assert!(body.starts_with(": stream open"), "{body}");
}

#[tokio::test]
async fn strangers_bad_input_and_too_many_streams_are_refused() {
    let app = TestApp::spawn_with(|c| c.stream_max_per_membership = 1).await;
    let acme = app.company("limits@acme.example").await;
    let stranger = app.company("stranger@rival.example").await;
    let path = format!("/v1/memberships/{}/stream", acme.membership_id);

    app.get(&path, &stranger.token).await.problem(404, "not-found");
    let key = app.api_key(&stranger, "viewer").await;
    app.get(&path, &key).await.problem(404, "not-found");

    let res = app.get(&format!("{path}?max_seconds=0"), &acme.token).await;
    res.problem(400, "invalid-parameter");
    assert!(res.text.contains("max_seconds"), "{}", res.text);
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&acme.token)
        .header("last-event-id", "not-a-cursor")
        .send()
        .await
        .unwrap();
    let res = vitalfarm_tests::Resp::from(res).await;
    res.problem(400, "invalid-parameter");
    assert!(res.text.contains("Last-Event-ID"), "{}", res.text);

    // One stream at a time here: the second is refused, and once the first
    // ends (max_seconds) another is admitted.
    let first = app
        .client
        .get(app.url(&format!("{path}?max_seconds=1")))
        .bearer_auth(&acme.token)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let res = app.get(&path, &acme.token).await;
    res.problem(429, "rate-limited");
    // The first stream ends by itself: its whole body can be read.
    let body = tokio::time::timeout(PATIENCE, first.text()).await.unwrap().unwrap();
    assert!(body.starts_with(": stream open"), "{body}");
    // The ended stream's place is free again.
    let res = app
        .client
        .get(app.url(&format!("{path}?max_seconds=1")))
        .bearer_auth(&acme.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn readings_sent_over_mqtt_arrive_on_the_stream() {
    use rumqttc::{AsyncClient, Event as MqttEvent, Packet, QoS};
    let app = TestApp::spawn_mqtt().await;
    let acme = app.company("mqtt-live@acme.example").await;
    let device = app.monitored_device(&acme, "MQ-LIVE").await;
    let mut sse = Sse::open(&app, acme.membership_id, &acme.token, None).await;

    let (client, mut eventloop) = AsyncClient::new(app.device_mqtt_options(&device.id, &device.secret), 16);
    let topic = app.topic(&format!("devices/{}/readings", device.id));
    let body = json!({"readings": [{"metric": "heart_rate", "ts": "2026-11-21T10:00:00Z", "value": 66}]});
    client
        .publish(topic, QoS::AtLeastOnce, false, body.to_string())
        .await
        .unwrap();
    // Drive the connection until the broker acknowledges the message (the
    // first polls may meet a broker that is not listening yet).
    let mut refused = 0;
    loop {
        match tokio::time::timeout(PATIENCE, eventloop.poll()).await.unwrap() {
            Ok(MqttEvent::Incoming(Packet::PubAck(_))) => break,
            Ok(_) => {}
            Err(e) => {
                refused += 1;
                assert!(refused < 50, "MQTT error: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let _ = client.disconnect().await;
    let seen = sse
        .until(|e| is_reading(e, &device.subject, "2026-11-21T10:00:00Z"))
        .await;
    assert_eq!(seen.last().unwrap().data["value"], json!(66.0));
}

#[tokio::test]
async fn a_stream_ends_when_its_membership_is_erased() {
    let app = TestApp::spawn().await;
    let care = app.company("erased-live@care.example").await;
    let mut sse = Sse::open(&app, care.membership_id, &care.token, None).await;
    let res = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/memberships/{}", care.membership_id),
            Some(&care.token),
            Some(json!({"password": vitalfarm_tests::PASSWORD, "confirm": "erased-live@care.example's company"})),
        )
        .await;
    assert!(res.status.is_success(), "{}", res.text);
    // The stream ends by itself (`max_seconds` is far away).
    assert!(sse.event().await.is_none());
}

#[tokio::test]
async fn a_stream_of_an_api_key_ends_when_the_key_is_revoked() {
    let app = TestApp::spawn().await;
    let acme = app.company("key-live@acme.example").await;
    let key = app.api_key(&acme, "viewer").await;
    let mut sse = Sse::open(&app, acme.membership_id, &key, None).await;
    let keys = app
        .get(&format!("/v1/memberships/{}/api-keys", acme.membership_id), &acme.token)
        .await;
    let kid = keys.str("/items/0/id");
    let res = app
        .delete(
            &format!("/v1/memberships/{}/api-keys/{kid}", acme.membership_id),
            &acme.token,
        )
        .await;
    assert!(res.status.is_success(), "{}", res.text);
    assert!(sse.event().await.is_none());
}
