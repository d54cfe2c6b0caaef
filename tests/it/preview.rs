//! The consent preview: the individual a request is addressed to sees, before
//! approving, what the company would see under it (readings per subject and
//! metric in the data period, files and bytes per folder), narrowed on
//! demand; nobody else sees it, and each preview is in the individual's
//! audit log.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_tests::{Member, TestApp, self_subject};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("a time: {v}"))
}

async fn dependent(app: &TestApp, parent: &Member, name: &str) -> String {
    let res = app
        .post(
            &format!("/v1/memberships/{}/subjects", parent.membership_id),
            Some(&parent.token),
            json!({"kind": "dependent", "display_name": name}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.str("/id")
}

/// The preview's item for `subject`.
fn subject<'a>(preview: &'a Value, subject: &str) -> &'a Value {
    preview["subjects"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["subject_id"] == subject))
        .unwrap_or_else(|| panic!("subject {subject} in {preview}"))
}

/// The item of `metric` in a preview subject.
fn metric<'a>(subject: &'a Value, metric: &str) -> &'a Value {
    subject["metrics"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["metric"] == metric))
        .unwrap_or_else(|| panic!("metric {metric} in {subject}"))
}

fn codes(subject: &Value) -> Vec<String> {
    subject["metrics"]
        .as_array()
        .map(|a| a.iter().map(|m| m["metric"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Mom with her infant (a monitor) and herself (a watch), readings before
/// and inside the requested period and of a metric not asked for, files in
/// and out of the requested folder; and Acme's request for heart rate and
/// blood pressure from two days ago, with the `/ecg/` folder.
struct Scene {
    app: TestApp,
    care: Member,
    mom: Member,
    infant: String,
    me: String,
    request: String,
    data_from: DateTime<Utc>,
    in_period: [DateTime<Utc>; 3],
}

async fn scene() -> Scene {
    let app = TestApp::spawn().await;
    let care = app.company("care@acme.example").await;
    let mom = app.individual("mom@example.org").await;
    let infant = dependent(&app, &mom, "Baby Ada").await;
    let me = self_subject(&app, &mom).await;
    let monitor = app.claimed_device(&mom, &infant, "PRE-1").await;
    let watch = app.claimed_device(&mom, &me, "PRE-2").await;
    let now = Utc::now();
    let data_from = now - Duration::days(2);
    let in_period = [
        now - Duration::days(1),
        now - Duration::hours(12),
        now - Duration::hours(1),
    ];
    app.ingest(
        &monitor,
        json!([
            {"metric": "heart_rate", "ts": ts(now - Duration::days(5)), "value": 150},
            {"metric": "heart_rate", "ts": ts(now - Duration::days(3)), "value": 149},
            {"metric": "heart_rate", "ts": ts(in_period[0]), "value": 131},
            {"metric": "heart_rate", "ts": ts(in_period[1]), "value": 132},
            {"metric": "heart_rate", "ts": ts(in_period[2]), "value": 133},
            {"metric": "blood_pressure", "ts": ts(in_period[1]), "components": {"systolic": 80, "diastolic": 50}},
            {"metric": "spo2", "ts": ts(in_period[1]), "value": 97},
        ]),
    )
    .await;
    app.ingest(
        &watch,
        json!([{"metric": "heart_rate", "ts": ts(in_period[2]), "value": 70}]),
    )
    .await;
    for (path, bytes) in [
        ("ecg/a.csv", 100usize),
        ("ecg/2026/b.csv", 250),
        ("notes/diary.txt", 40),
        ("ecg2/c.csv", 7),
    ] {
        let up = app.upload(&mom.token, mom.farm_id, path, vec![b'x'; bytes], &[]).await;
        assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    }
    let request = app
        .post(
            "/v1/consent-requests",
            Some(&care.token),
            json!({
                "individual_email": "mom@example.org",
                "metrics": ["heart_rate", "blood_pressure"],
                "farm_paths": ["/ecg/"],
                "purpose": "care",
                "access": "read",
                "duration": "P30D",
                "data_from": ts(data_from),
            }),
        )
        .await;
    assert_eq!(request.status, StatusCode::CREATED, "{}", request.text);
    Scene {
        request: request.str("/id"),
        app,
        care,
        mom,
        infant,
        me,
        data_from,
        in_period,
    }
}

#[tokio::test]
async fn the_individual_sees_exactly_what_the_request_would_share() {
    let s = scene().await;
    let res = s
        .app
        .get(&format!("/v1/consent-requests/{}/preview", s.request), &s.mom.token)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let p = &res.body;
    assert_eq!(p["request_id"], s.request.as_str());
    assert_eq!(p["membership_id"], s.mom.membership_id.to_string());
    assert_eq!(time(&p["data_from"]).timestamp(), s.data_from.timestamp());
    assert!(p["data_until"].is_null());
    // Every subject she could choose, each with exactly the requested metrics.
    assert_eq!(p["subjects"].as_array().map(Vec::len), Some(2), "{p}");
    let infant = subject(p, &s.infant);
    assert_eq!(infant["display_name"], "Baby Ada");
    assert_eq!(
        codes(infant),
        ["blood_pressure", "heart_rate"],
        "no spo2: not requested"
    );

    // Heart rate: only the three readings in the data period.
    let hr = metric(infant, "heart_rate");
    assert_eq!(hr["count"], 3, "{hr}");
    assert_eq!(hr["unit"], "/min");
    assert_eq!(time(&hr["first"]).timestamp(), s.in_period[0].timestamp());
    assert_eq!(time(&hr["last"]).timestamp(), s.in_period[2].timestamp());
    let sample: Vec<f64> = hr["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_f64().unwrap())
        .collect();
    assert_eq!(
        sample,
        [131.0, 132.0, 133.0],
        "the 150 and 149 before data_from are not shown"
    );

    // A panel is one reading, shown with its components.
    let bp = metric(infant, "blood_pressure");
    assert_eq!(bp["count"], 1, "{bp}");
    assert_eq!(
        bp["sample"][0]["components"],
        json!({"systolic": 80.0, "diastolic": 50.0})
    );
    assert!(bp["sample"][0]["value"].is_null());

    // Her own subject: one heart rate, no blood pressure at all.
    let me = subject(p, &s.me);
    assert_eq!(metric(me, "heart_rate")["count"], 1);
    let none = metric(me, "blood_pressure");
    assert_eq!(none["count"], 0);
    assert!(none["first"].is_null() && none["last"].is_null());
    assert_eq!(none["sample"], json!([]));

    // The folder: both files under /ecg/ at any depth, not /ecg2/ or /notes/.
    assert_eq!(p["farm_paths"], json!([{"path": "/ecg/", "files": 2, "bytes": 350}]));

    // The preview is in her audit log.
    let actions = s.app.audit_actions(s.mom.membership_id, &s.mom.token).await;
    assert!(actions.iter().any(|a| a == "consent.previewed"), "{actions:?}");
    let events = s.app.audit(s.mom.membership_id, &s.mom.token, "").await;
    let previewed = events.iter().find(|e| e["action"] == "consent.previewed").unwrap();
    assert_eq!(previewed["resource"], format!("consent_request/{}", s.request));
    assert!(!previewed.to_string().contains("131"), "no health value in the log");
}

#[tokio::test]
async fn narrowing_the_scope_narrows_the_preview() {
    let s = scene().await;
    let base = format!("/v1/consent-requests/{}/preview", s.request);
    let res = s
        .app
        .get(&format!("{base}?subject_ids={}", s.infant), &s.mom.token)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["subjects"].as_array().map(Vec::len), Some(1));
    assert_eq!(res.body["subjects"][0]["subject_id"], s.infant.as_str());
    assert_eq!(codes(&res.body["subjects"][0]), ["blood_pressure", "heart_rate"]);

    let res = s
        .app
        .get(
            &format!("{base}?subject_ids={},{}&metrics=heart_rate", s.me, s.infant),
            &s.mom.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["subjects"].as_array().map(Vec::len), Some(2));
    for sub in res.body["subjects"].as_array().unwrap() {
        assert_eq!(codes(sub), ["heart_rate"]);
    }
    assert_eq!(res.body["farm_paths"][0]["files"], 2, "folders not narrowed stay");

    // No folder at all: the files are out of the preview.
    let res = s.app.get(&format!("{base}?farm_paths="), &s.mom.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["farm_paths"], json!([]));
    // The folder in another spelling is the same folder.
    let res = s.app.get(&format!("{base}?farm_paths=/ecg"), &s.mom.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["farm_paths"][0]["path"], "/ecg/");
}

#[tokio::test]
async fn a_scope_beyond_the_request_is_a_400_naming_the_field() {
    let s = scene().await;
    let base = format!("/v1/consent-requests/{}/preview", s.request);
    let stranger = s.app.individual("stranger@example.org").await;
    let theirs = self_subject(&s.app, &stranger).await;
    for (query, field) in [
        ("metrics=spo2".to_owned(), "metrics[0]"),
        ("metrics=heart_rate,nonsense".to_owned(), "metrics[1]"),
        ("farm_paths=/notes/".to_owned(), "farm_paths[0]"),
        ("farm_paths=/".to_owned(), "farm_paths[0]"),
        (format!("subject_ids={theirs}"), "subject_ids[0]"),
        (format!("subject_ids={},not-an-id", s.infant), "subject_ids[1]"),
    ] {
        let res = s.app.get(&format!("{base}?{query}"), &s.mom.token).await;
        res.problem(400, "invalid-parameter");
        assert!(res.fields().iter().any(|f| f == field), "{query}: {}", res.text);
    }
}

#[tokio::test]
async fn only_the_addressed_individual_sees_a_pending_request_s_preview() {
    let s = scene().await;
    let path = format!("/v1/consent-requests/{}/preview", s.request);
    let stranger = s.app.individual("stranger@example.org").await;
    let unknown = s
        .app
        .get(
            &format!("/v1/consent-requests/{}/preview", uuid::Uuid::now_v7()),
            &s.mom.token,
        )
        .await;
    unknown.problem(404, "not-found");
    for (who, token) in [("company", &s.care.token), ("stranger", &stranger.token)] {
        let res = s.app.get(&path, token).await;
        res.problem(404, "not-found");
        assert_eq!(res.body["detail"], unknown.body["detail"], "{who}");
        assert!(!res.text.contains("Baby Ada"), "{who}");
    }
    // Once decided, there is nothing left to preview.
    let approved = s
        .app
        .post(
            &format!("/v1/consent-requests/{}/approve", s.request),
            Some(&s.mom.token),
            json!({"subject_ids": [s.infant]}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.text);
    s.app.get(&path, &s.mom.token).await.problem(409, "conflict");
}
