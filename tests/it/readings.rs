//! HTTP ingest (exactly once per reading) and readings queries.

use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_tests::TestApp;

async fn send(app: &TestApp, credential: &str, body: Value) -> vitalfarm_tests::Resp {
    let res = app
        .client
        .post(app.url("/v1/ingest/readings"))
        .header("authorization", credential)
        .json(&body)
        .send()
        .await
        .unwrap();
    vitalfarm_tests::Resp::from(res).await
}

#[tokio::test]
async fn readings_are_stored_once_converted_and_queryable() {
    let app = TestApp::spawn().await;
    let care = app.company("care@acme.example").await;
    let d = app.monitored_device(&care, "HR-1").await;
    let (cred, subject, device) = (d.credential(), d.subject, d.id);
    let batch = json!({"readings": [
        {"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 72},
        {"metric": "heart_rate", "ts": "2026-11-21T08:01:00Z", "value": 75, "seq": 2},
        {"metric": "blood_pressure", "ts": "2026-11-21T08:00:00Z", "components": {"systolic": 128, "diastolic": 84}},
        {"metric": "body_temperature", "ts": "2026-11-21T08:00:00Z", "value": 98.6, "unit": "[degF]"},
        {"metric": "heart_rate", "ts": "2026-11-21T08:02:00Z", "value": 900},
        {"metric": "heart_rate", "ts": "yesterday", "value": 70},
        {"metric": "blood_pressure", "ts": "2026-11-21T08:05:00Z", "components": {"systolic": 80, "diastolic": 90}},
        {"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 72},
        {"metric": "mood", "ts": "2026-11-21T08:00:00Z", "value": 3}
    ]});
    let res = send(&app, &cred, batch.clone()).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["accepted"], 4);
    assert_eq!(res.body["duplicates"], 1, "the repeat inside the batch");
    let rejected: Vec<u64> = res.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [4, 5, 6, 8]);
    assert_eq!(res.body["rejected"][0]["errors"][0]["field"], "value");
    assert_eq!(res.body["rejected"][1]["errors"][0]["field"], "ts");

    // The device retries the whole batch: nothing is stored twice.
    let again = send(&app, &cred, batch).await;
    assert_eq!(again.body["accepted"], 0);
    assert_eq!(again.body["duplicates"], 5);

    let hr = app
        .get(
            &format!("/v1/subjects/{subject}/readings?metric=heart_rate"),
            &care.token,
        )
        .await;
    assert_eq!(hr.status, StatusCode::OK, "{}", hr.text);
    let values: Vec<f64> = hr.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [72.0, 75.0]);
    assert_eq!(hr.body["items"][0]["device_id"], device);
    assert_eq!(hr.body["items"][0]["unit"], "/min");
    let bp = app
        .get(
            &format!("/v1/subjects/{subject}/readings?metric=blood_pressure"),
            &care.token,
        )
        .await;
    assert_eq!(bp.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        bp.body["items"][0]["components"],
        json!({"systolic": 128.0, "diastolic": 84.0})
    );
    let t = app
        .get(
            &format!("/v1/subjects/{subject}/readings?metric=body_temperature"),
            &care.token,
        )
        .await;
    let celsius = t.body["items"][0]["value"].as_f64().unwrap();
    assert!((celsius - 37.0).abs() < 1e-9, "{celsius}");
    assert_eq!(t.body["items"][0]["unit"], "Cel");

    // Time window and pagination.
    let windowed = app
        .get(
            &format!(
                "/v1/subjects/{subject}/readings?metric=heart_rate&from=2026-11-21T08:00:30Z&to=2026-11-21T09:00:00Z"
            ),
            &care.token,
        )
        .await;
    assert_eq!(windowed.body["items"].as_array().unwrap().len(), 1);
    let first = app
        .get(
            &format!("/v1/subjects/{subject}/readings?metric=heart_rate&limit=1"),
            &care.token,
        )
        .await;
    assert_eq!(first.body["items"][0]["value"], 72.0);
    let cursor = first.str("/next_cursor");
    let second = app
        .get(
            &format!("/v1/subjects/{subject}/readings?metric=heart_rate&limit=1&cursor={cursor}"),
            &care.token,
        )
        .await;
    assert_eq!(second.body["items"][0]["value"], 75.0);
    assert!(second.body["next_cursor"].is_null());

    let device_view = app.get(&format!("/v1/devices/{device}"), &care.token).await;
    assert!(device_view.body["last_seen_at"].is_string(), "contact is recorded");
    app.get(&format!("/v1/subjects/{subject}/readings?metric=mood"), &care.token)
        .await
        .problem(400, "invalid-parameter");
    app.get(&format!("/v1/subjects/{subject}/readings"), &care.token)
        .await
        .problem(400, "invalid-parameter");
}

#[tokio::test]
async fn only_a_live_bound_device_with_its_secret_may_send() {
    let app = TestApp::spawn().await;
    let care = app.company("gate@acme.example").await;
    let d = app.monitored_device(&care, "HR-1").await;
    let (cred, device) = (d.credential(), d.id);
    let one = json!({"readings": [{"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 60}]});
    let wrong = format!("{}x", cred);
    send(&app, &wrong, one.clone()).await.problem(401, "unauthorized");
    send(&app, &format!("Bearer {}", care.token), one.clone())
        .await
        .problem(401, "unauthorized");
    send(&app, "Device not-an-id:secret", one.clone())
        .await
        .problem(401, "unauthorized");

    app.patch(
        &format!("/v1/devices/{device}"),
        &care.token,
        json!({"status": "suspended"}),
    )
    .await;
    send(&app, &cred, one.clone()).await.problem(403, "forbidden");
    app.patch(
        &format!("/v1/devices/{device}"),
        &care.token,
        json!({"status": "active"}),
    )
    .await;
    assert_eq!(send(&app, &cred, one.clone()).await.status, StatusCode::OK);

    // A rotated secret replaces the old one at once.
    let fresh = app
        .post(
            &format!("/v1/devices/{device}/rotate-secret"),
            Some(&care.token),
            json!({}),
        )
        .await
        .str("/secret");
    send(&app, &cred, one.clone()).await.problem(401, "unauthorized");
    assert_eq!(
        send(&app, &format!("Device {device}:{fresh}"), one).await.status,
        StatusCode::OK
    );

    // Registered but not bound to anyone: nowhere to put readings.
    let reg = app
        .post(
            &format!("/v1/memberships/{}/devices", care.membership_id),
            Some(&care.token),
            json!({"serial": "LOOSE-1"}),
        )
        .await;
    let loose = format!(
        "Device {}:{}",
        reg.str("/devices/0/device_id"),
        reg.str("/devices/0/secret")
    );
    let res = send(&app, &loose, json!({"readings": []})).await;
    res.problem(409, "conflict");

    let too_many: Vec<Value> = (0..5001)
        .map(|i| json!({"metric": "heart_rate", "ts": format!("2026-11-21T08:00:{:02}Z", i % 60), "value": 60}))
        .collect();
    send(&app, &format!("Device {device}:{fresh}"), json!({"readings": too_many}))
        .await
        .problem(422, "validation-failed");
}

#[tokio::test]
async fn a_claimed_devices_readings_belong_to_the_buyer_alone() {
    let app = TestApp::spawn().await;
    let maker = app.company("maker@acme.example").await;
    let reg = app
        .post(
            &format!("/v1/memberships/{}/devices", maker.membership_id),
            Some(&maker.token),
            json!({"serial": "T-100"}),
        )
        .await;
    let (id, secret, code) = (
        reg.str("/devices/0/device_id"),
        reg.str("/devices/0/secret"),
        reg.str("/devices/0/claim_code"),
    );
    let buyer = app.individual("buyer@example.org").await;
    let subject = app
        .get(
            &format!("/v1/memberships/{}/subjects", buyer.membership_id),
            &buyer.token,
        )
        .await
        .str("/items/0/id");
    app.post(
        "/v1/devices/claim",
        Some(&buyer.token),
        json!({"claim_code": code, "subject_id": subject}),
    )
    .await;
    let res = send(
        &app,
        &format!("Device {id}:{secret}"),
        json!({"readings": [{"metric": "body_temperature", "ts": "2026-11-21T07:00:00Z", "value": 36.8}]}),
    )
    .await;
    assert_eq!(res.body["accepted"], 1, "{}", res.text);
    let mine = app
        .get(
            &format!("/v1/subjects/{subject}/readings?metric=body_temperature"),
            &buyer.token,
        )
        .await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    app.get(
        &format!("/v1/subjects/{subject}/readings?metric=body_temperature"),
        &maker.token,
    )
    .await
    .problem(404, "not-found");
}

#[tokio::test]
async fn aggregates_and_summary_match_the_readings() {
    let app = TestApp::spawn().await;
    let care = app.company("stats@acme.example").await;
    let d = app.monitored_device(&care, "HR-1").await;
    let (cred, subject) = (d.credential(), d.subject);
    // Heart rate once a minute from 08:00 to 09:59: 60..=119 in the first
    // hour, then 120 in the second; blood pressure twice.
    let mut readings: Vec<Value> = (0..120)
        .map(|m| {
            let value = if m < 60 { 60 + m } else { 120 };
            json!({"metric": "heart_rate", "ts": format!("2026-11-21T{:02}:{:02}:00Z", 8 + m / 60, m % 60), "value": value})
        })
        .collect();
    readings.push(json!({"metric": "blood_pressure", "ts": "2026-11-21T08:30:00Z", "components": {"systolic": 120, "diastolic": 80}}));
    readings.push(json!({"metric": "blood_pressure", "ts": "2026-11-21T09:30:00Z", "components": {"systolic": 140, "diastolic": 90}}));
    let res = send(&app, &cred, json!({"readings": readings})).await;
    assert_eq!(res.body["accepted"], 122, "{}", res.text);

    let window = "from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z";
    let agg = app
        .get(
            &format!("/v1/subjects/{subject}/readings/aggregate?metric=heart_rate&bucket=1h&{window}"),
            &care.token,
        )
        .await;
    assert_eq!(agg.status, StatusCode::OK, "{}", agg.text);
    let b = agg.body["buckets"].as_array().unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0]["start"], "2026-11-21T08:00:00Z");
    assert_eq!(
        (b[0]["count"].as_u64(), b[0]["min"].as_f64(), b[0]["max"].as_f64()),
        (Some(60), Some(60.0), Some(119.0))
    );
    assert!((b[0]["mean"].as_f64().unwrap() - 89.5).abs() < 1e-9);
    assert_eq!((b[1]["count"].as_u64(), b[1]["mean"].as_f64()), (Some(60), Some(120.0)));
    let five = app
        .get(
            &format!("/v1/subjects/{subject}/readings/aggregate?metric=heart_rate&bucket=5m&{window}"),
            &care.token,
        )
        .await;
    assert_eq!(five.body["buckets"].as_array().unwrap().len(), 24);
    let bp = app
        .get(
            &format!("/v1/subjects/{subject}/readings/aggregate?metric=blood_pressure&bucket=1d&{window}"),
            &care.token,
        )
        .await;
    let bp = bp.body["buckets"].as_array().unwrap();
    assert_eq!(bp.len(), 2, "one bucket per component");
    assert_eq!(bp[0]["component"], "diastolic");
    assert_eq!(bp[0]["mean"], 85.0);
    assert_eq!(bp[1]["component"], "systolic");
    assert_eq!(bp[1]["max"], 140.0);

    let res = app
        .get(&format!("/v1/subjects/{subject}/readings/aggregate?metric=heart_rate&bucket=5m&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"), &care.token)
        .await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), ["bucket"]);
    let res = app
        .get(
            &format!("/v1/subjects/{subject}/readings/aggregate?metric=heart_rate&bucket=2h"),
            &care.token,
        )
        .await;
    assert_eq!(res.fields(), ["bucket"]);

    let sum = app.get(&format!("/v1/subjects/{subject}/summary"), &care.token).await;
    assert_eq!(sum.status, StatusCode::OK, "{}", sum.text);
    let metrics = sum.body["metrics"].as_array().unwrap();
    let hr = metrics.iter().find(|m| m["metric"] == "heart_rate").unwrap();
    assert_eq!(hr["count"], 120);
    assert_eq!((hr["min"].as_f64(), hr["max"].as_f64()), (Some(60.0), Some(120.0)));
    // Sorted values: 60..=119 then sixty 120s; ranks 60 and 114 (nearest rank).
    assert_eq!(hr["p50"], 119.0);
    assert_eq!(hr["p95"], 120.0);
    assert_eq!(hr["latest"]["ts"], "2026-11-21T09:59:00Z");
    let systolic = metrics.iter().find(|m| m["component"] == "systolic").unwrap();
    assert_eq!(systolic["latest"]["value"], 140.0);
    let first_hour = app
        .get(
            &format!("/v1/subjects/{subject}/summary?from=2026-11-21T08:00:00Z&to=2026-11-21T09:00:00Z"),
            &care.token,
        )
        .await;
    let hr = first_hour.body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "heart_rate")
        .unwrap()
        .clone();
    assert_eq!(hr["count"], 60);
    assert_eq!(hr["p50"], 89.0);
}
