//! Bad input that used to slip through (issue 13): reversed periods,
//! oversized consent lists, names that display as nothing or lie about
//! themselves, an encoded `/` inside a file name, readings from a device
//! whose clock was never set; and the SQLite file readable by others.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_tests::{TestApp, self_subject};

#[tokio::test]
async fn from_after_to_is_refused_naming_from_on_every_period_endpoint() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann.period@example.org").await;
    let me = self_subject(&app, &ann).await;
    let period = "from=2026-11-21T10:00:00Z&to=2026-11-20T10:00:00Z";
    for path in [
        format!("/v1/subjects/{me}/readings?metric=heart_rate&{period}"),
        format!("/v1/subjects/{me}/readings/aggregate?metric=heart_rate&{period}"),
        format!("/v1/subjects/{me}/summary?{period}"),
        format!("/v1/subjects/{me}/fhir?{period}"),
        format!("/v1/subjects/{me}/charts/heart_rate.svg?{period}"),
        format!("/v1/memberships/{}/audit?{period}", ann.membership_id),
        format!("/v1/analytics/correlation?subject_id={me}&x=heart_rate&y=spo2&{period}"),
    ] {
        let res = app.get(&path, &ann.token).await;
        res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), ["from"], "{path}: {}", res.text);
    }
    // The same instant twice is an empty period: refused too.
    let res = app
        .get(
            &format!("/v1/subjects/{me}/summary?from=2026-11-21T10:00:00Z&to=2026-11-21T10:00:00Z"),
            &ann.token,
        )
        .await;
    assert_eq!(res.fields(), ["from"], "{}", res.text);
    let res = app
        .get(
            &format!("/v1/subjects/{me}/readings?metric=heart_rate&from=2026-11-20T10:00:00Z&to=2026-11-21T10:00:00Z"),
            &ann.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
}

#[tokio::test]
async fn readings_from_an_unset_clock_or_far_ahead_are_refused_by_field() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann.clock@example.org").await;
    let me = self_subject(&app, &ann).await;
    let watch = app.claimed_device(&ann, &me, "W-CLOCK").await;
    let ts = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let res = app
        .client
        .post(app.url("/v1/ingest/readings"))
        .header("authorization", watch.credential())
        .json(&json!({"readings": [
            {"metric": "heart_rate", "ts": "1970-01-01T00:00:00Z", "value": 70},
            {"metric": "heart_rate", "ts": "1999-12-31T23:59:59Z", "value": 70},
            {"metric": "heart_rate", "ts": ts(Utc::now() + Duration::days(1)), "value": 70},
            {"metric": "heart_rate", "ts": ts(Utc::now() - Duration::minutes(1)), "value": 70},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["accepted"], 1, "{body}");
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 3, "{body}");
    for (r, index) in rejected.iter().zip([0, 1, 2]) {
        assert_eq!(r["index"], index, "{body}");
        assert_eq!(r["errors"][0]["field"], "ts", "{body}");
    }
    assert!(
        rejected[0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2000-01-01")
    );
    let stored = app
        .get(&format!("/v1/subjects/{me}/readings?metric=heart_rate"), &ann.token)
        .await;
    assert_eq!(stored.body["items"].as_array().unwrap().len(), 1, "{}", stored.text);
}

#[tokio::test]
async fn consents_keep_to_the_documented_list_sizes() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann.lists@example.org").await;
    let care = app.company("lists@care.example").await;
    let me = self_subject(&app, &ann).await;
    let many = vec!["heart_rate"; 10_000];
    let base = json!({"grantee_membership_id": care.membership_id, "subject_ids": [me],
        "metrics": ["heart_rate"], "farm_paths": [], "purpose": "care", "access": "read",
        "expires_at": (Utc::now() + Duration::days(30)).to_rfc3339()});
    let mut body = base.clone();
    body["metrics"] = json!(many);
    let res = app.post("/v1/consents", Some(&ann.token), body).await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["metrics"], "{}", res.text);
    let mut body = base.clone();
    body["farm_paths"] = json!((0..21).map(|i| format!("/d{i}/")).collect::<Vec<_>>());
    let res = app.post("/v1/consents", Some(&ann.token), body).await;
    assert_eq!(res.fields(), ["farm_paths"], "{}", res.text);
    let mut body = base.clone();
    body["subject_ids"] = json!(vec![me.clone(); 101]);
    let res = app.post("/v1/consents", Some(&ann.token), body).await;
    assert_eq!(res.fields(), ["subject_ids"], "{}", res.text);
    // Within the limits the same consent is granted.
    let res = app.post("/v1/consents", Some(&ann.token), base).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);

    let res = app
        .post(
            "/v1/consent-requests",
            Some(&care.token),
            json!({"individual_email": "ann.lists@example.org", "metrics": vec!["heart_rate"; 21],
                "farm_paths": [], "purpose": "care", "access": "read", "duration": "P30D"}),
        )
        .await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["metrics"], "{}", res.text);
}

#[tokio::test]
async fn names_that_show_nothing_or_reverse_the_text_are_refused() {
    let app = TestApp::spawn().await;
    for (name, display_name) in [("rlo", "\u{202E}"), ("zwsp", "\u{200B}\u{200B}"), ("mix", "a\u{202E}b")] {
        let res = app
            .post(
                "/v1/auth/signup",
                None,
                json!({"email": format!("{name}@names.example"), "password": vitalfarm_tests::PASSWORD,
                    "display_name": display_name, "membership": {"kind": "individual", "name": "\u{2066}\u{2069}"}}),
            )
            .await;
        res.problem(422, "validation-failed");
        assert_eq!(
            res.fields(),
            ["display_name", "membership.name"],
            "{name}: {}",
            res.text
        );
    }
    let acme = app.company("owner@names.example").await;
    let mid = acme.membership_id;
    for (path, body, field) in [
        (
            format!("/v1/memberships/{mid}/subjects"),
            json!({"kind": "enrollee", "display_name": "\u{200B}"}),
            "display_name",
        ),
        (
            format!("/v1/memberships/{mid}/api-keys"),
            json!({"name": "key\u{202E}gnp.exe"}),
            "name",
        ),
        (
            format!("/v1/memberships/{mid}/apps"),
            json!({"name": "\u{FEFF}", "client_type": "public", "redirect_uris": ["http://127.0.0.1:9/cb"], "scopes": ["profile"]}),
            "name",
        ),
        (
            format!("/v1/memberships/{mid}/alert-rules"),
            json!({"name": "\u{200B}", "metric": "heart_rate", "condition": {"kind": "threshold", "op": "gt", "value": 150}, "severity": "info"}),
            "name",
        ),
        (
            format!("/v1/memberships/{mid}/device-models"),
            json!({"name": "\u{2067}Cuff", "manufacturer": "Acme", "metrics": ["heart_rate"]}),
            "name",
        ),
    ] {
        let res = app.post(&path, Some(&acme.token), body).await;
        res.problem(422, "validation-failed");
        assert_eq!(res.fields(), [field], "{path}: {}", res.text);
    }
    // A file name that displays as `aexe.txt` but is an `.exe`.
    let res = app
        .upload(&acme.token, acme.farm_id, "a%E2%80%AEtxt.exe", b"MZ".to_vec(), &[])
        .await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), ["path"], "{}", res.text);
    let res = app
        .upload(&acme.token, acme.farm_id, "docs/%E2%80%8B/x.txt", b"x".to_vec(), &[])
        .await;
    assert_eq!(res.fields(), ["path"], "{}", res.text);
    // Ordinary names in any script still pass.
    let res = app
        .post(
            &format!("/v1/memberships/{mid}/subjects"),
            Some(&acme.token),
            json!({"kind": "enrollee", "display_name": "김민지 O\u{2019}Brien"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
}

#[tokio::test]
async fn an_encoded_slash_in_a_file_name_is_refused() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann.slash@example.org").await;
    for name in ["a%2fb.txt", "a%2Fb.txt", "dir/a%2Fb.txt"] {
        let res = app.upload(&ann.token, ann.farm_id, name, b"x".to_vec(), &[]).await;
        res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), ["path"], "{name}: {}", res.text);
    }
    let list = app
        .get(&format!("/v1/farms/{}/list?prefix=/", ann.farm_id), &ann.token)
        .await;
    assert_eq!(list.body["items"], json!([]), "no folder was made: {}", list.text);
    let res = app.upload(&ann.token, ann.farm_id, "a/b.txt", b"x".to_vec(), &[]).await;
    assert_eq!(
        res.status,
        StatusCode::CREATED,
        "a plain '/' still separates: {}",
        res.text
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    if vitalfarm_tests::postgres_url().is_some() {
        return;
    }
    let app = TestApp::spawn().await;
    // A write, so the WAL exists too.
    app.individual("ann.mode@example.org").await;
    let db = app.data_dir.path().join("vitalfarm.db");
    for file in [db.clone(), db.with_extension("db-wal"), db.with_extension("db-shm")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: {mode:o}", file.display());
    }
}
