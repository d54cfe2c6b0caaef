//! ECG analysis: R peaks and heart rate of a recording in the farm, read as
//! one's own or under a consent that shares both the subject's heart rate
//! and the recording's folder.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_domain::ecg::synthetic;
use vitalfarm_tests::{TestApp, self_subject};

const FS: f64 = 250.0;

/// 30 s speeding up from 60 to 120 bpm, with wander and noise; the beat
/// times and the CSV (starting `start`).
fn recording(start: chrono::DateTime<Utc>) -> (Vec<f64>, String) {
    let beats = synthetic::beats(30.0, 0.7, 60.0, 120.0);
    let samples = synthetic::ecg(FS, 30.0, &beats, 0.03, 11);
    let csv = format!(
        "# start={}\n{}",
        start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        synthetic::csv(FS, &samples)
    );
    (beats, csv)
}

fn analyze_path(sid: &str) -> String {
    format!("/v1/subjects/{sid}/ecg/analyze")
}

/// Every known beat within ±2 samples (8 ms at 250 Hz), and no other.
fn assert_beats(body: &Value, beats: &[f64]) {
    let peaks = body["r_peaks"].as_array().expect("r_peaks");
    assert_eq!(peaks.len(), beats.len(), "{body}");
    for (p, t) in peaks.iter().zip(beats) {
        let index = p["index"].as_u64().unwrap() as f64;
        assert!((index - t * FS).abs() <= 2.0, "peak {index} for beat at {t} s");
        let t_ms = p["t_ms"].as_f64().unwrap();
        assert!((t_ms - index * 4.0).abs() < 1e-6);
    }
    let expected = 60.0 * (beats.len() - 1) as f64 / (beats[beats.len() - 1] - beats[0]);
    let hr = body["heart_rate_bpm"].as_f64().unwrap();
    assert!((hr - expected).abs() < 1.0, "{hr} vs {expected}");
    assert!(body["hr_min"].as_f64().unwrap() < 65.0, "{body}");
    assert!(body["hr_max"].as_f64().unwrap() > 105.0, "{body}");
    assert_eq!(body["rr_ms"].as_array().unwrap().len(), beats.len() - 1);
    assert_eq!(body["sampling_rate_hz"], json!(FS));
    assert_eq!(body["duration_s"], json!(30.0));
}

#[tokio::test]
async fn an_own_recording_yields_its_beats_and_stores_the_heart_rate_once() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let me = self_subject(&app, &ann).await;
    let start = Utc::now() - Duration::hours(1);
    let (beats, csv) = recording(start);
    let up = app
        .upload(&ann.token, ann.farm_id, "ecg/rest.csv", csv.into_bytes(), &[])
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);

    let res = app
        .post(
            &analyze_path(&me),
            Some(&ann.token),
            json!({"farm_path": "ecg/rest.csv"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_beats(&res.body, &beats);
    assert_eq!(res.body["consents"], json!([]));
    assert_eq!(res.body["stored_heart_rate"], json!(false));
    assert_eq!(res.header("vitalfarm-consent"), None);

    let readings = format!("/v1/subjects/{me}/readings?metric=heart_rate");
    let none = app.get(&readings, &ann.token).await;
    assert_eq!(none.body["items"], json!([]), "{}", none.text);

    let body = json!({"farm_path": "/ecg/rest.csv", "store_heart_rate": true});
    let stored = app.post(&analyze_path(&me), Some(&ann.token), body.clone()).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    assert_eq!(stored.body["stored_heart_rate"], json!(true));
    let again = app.post(&analyze_path(&me), Some(&ann.token), body).await;
    assert_eq!(again.body["stored_heart_rate"], json!(false), "{}", again.text);

    let list = app.get(&readings, &ann.token).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["source"], "ecg");
    assert_eq!(items[0]["device_id"], Value::Null);
    assert_eq!(
        items[0]["ts"],
        json!(start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    let value = items[0]["value"].as_f64().unwrap();
    assert!((value - stored.body["heart_rate_bpm"].as_f64().unwrap()).abs() < 1e-9);
}

#[tokio::test]
async fn bad_files_and_paths_are_refused_naming_what_is_wrong() {
    let app = TestApp::spawn().await;
    let ann = app.individual("bad@example.org").await;
    let me = self_subject(&app, &ann).await;
    let up = app
        .upload(
            &ann.token,
            ann.farm_id,
            "ecg/broken.csv",
            b"# sampling_rate_hz=250\nmv\n0.1\n0.2,0.3\n".to_vec(),
            &[],
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let res = app
        .post(
            &analyze_path(&me),
            Some(&ann.token),
            json!({"farm_path": "ecg/broken.csv"}),
        )
        .await;
    let p = res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["farm_path"]);
    let message = p["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("line 4:"), "{message}");

    app.post(
        &analyze_path(&me),
        Some(&ann.token),
        json!({"farm_path": "ecg/none.csv"}),
    )
    .await
    .problem(404, "not-found");
    let res = app
        .post(
            &analyze_path(&me),
            Some(&ann.token),
            json!({"farm_path": "ecg/../x.csv"}),
        )
        .await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["farm_path"]);
    let res = app
        .post(
            &analyze_path(&me),
            Some(&ann.token),
            json!({"farm_path": "ecg/broken.csv", "extra": 1}),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text);

    // A flat line has no beats, so no heart rate to store.
    let flat = synthetic::csv(FS, &vec![0.2; 1000]);
    app.upload(&ann.token, ann.farm_id, "ecg/flat.csv", flat.into_bytes(), &[])
        .await;
    let res = app
        .post(
            &analyze_path(&me),
            Some(&ann.token),
            json!({"farm_path": "ecg/flat.csv"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["r_peaks"], json!([]));
    assert_eq!(res.body["heart_rate_bpm"], Value::Null);
    let res = app
        .post(
            &analyze_path(&me),
            Some(&ann.token),
            json!({"farm_path": "ecg/flat.csv", "store_heart_rate": true}),
        )
        .await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["store_heart_rate"]);
}

#[tokio::test]
async fn others_read_a_recording_only_under_a_consent_for_the_heart_rate_and_the_folder() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann.ecg@example.org").await;
    let me = self_subject(&app, &ann).await;
    let (beats, csv) = recording(Utc::now() - Duration::hours(2));
    app.upload(&ann.token, ann.farm_id, "ecg/2026/rest.csv", csv.into_bytes(), &[])
        .await;
    let body = json!({"farm_path": "ecg/2026/rest.csv"});

    // A stranger, and a company before any consent: no such subject.
    let bob = app.individual("bob.ecg@example.org").await;
    app.post(&analyze_path(&me), Some(&bob.token), body.clone())
        .await
        .problem(404, "not-found");
    let care = app.company("ecg@care.example").await;
    app.post(&analyze_path(&me), Some(&care.token), body.clone())
        .await
        .problem(404, "not-found");

    let expires = (Utc::now() + Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let grant = |grantee: uuid::Uuid, farm_paths: Value| {
        json!({
            "grantee_membership_id": grantee, "subject_ids": [me], "metrics": ["heart_rate"],
            "farm_paths": farm_paths, "purpose": "care", "access": "read", "expires_at": expires
        })
    };
    let res = app
        .post(
            "/v1/consents",
            Some(&ann.token),
            grant(care.membership_id, json!(["ecg"])),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let consent = res.str("/id");

    let res = app.post(&analyze_path(&me), Some(&care.token), body.clone()).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_beats(&res.body, &beats);
    assert_eq!(res.body["consents"], json!([consent]));
    assert_eq!(res.header("vitalfarm-consent"), Some(consent.as_str()));
    // Reading never becomes writing.
    app.post(
        &analyze_path(&me),
        Some(&care.token),
        json!({"farm_path": "ecg/2026/rest.csv", "store_heart_rate": true}),
    )
    .await
    .problem(403, "forbidden");
    let audit = app.audit(ann.membership_id, &ann.token, "").await;
    assert!(
        audit.iter().any(|e| e["resource"]
            .as_str()
            .is_some_and(|r| r.ends_with("/readings/heart_rate"))
            && e["consent_id"] == json!(consent)),
        "{audit:?}"
    );

    // Heart rate without the folder: the subject is shared, the file is not.
    let other = app.company("ecg@other.example").await;
    let res = app
        .post("/v1/consents", Some(&ann.token), grant(other.membership_id, json!([])))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    app.post(&analyze_path(&me), Some(&other.token), body.clone())
        .await
        .problem(403, "forbidden");

    // A consent for heart rate from after the recording does not cover it.
    let later = app.company("ecg@later.example").await;
    let mut body_later = grant(later.membership_id, json!(["ecg"]));
    body_later["data_from"] =
        json!((Utc::now() - Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let res = app.post("/v1/consents", Some(&ann.token), body_later).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let res = app.post(&analyze_path(&me), Some(&later.token), body.clone()).await;
    let detail = res.problem(403, "forbidden")["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("heart rate"), "{detail}");

    // Revoked: gone again.
    let res = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/consents/{consent}"),
            Some(&ann.token),
            None,
        )
        .await;
    assert!(res.status.is_success(), "{}", res.text);
    app.post(&analyze_path(&me), Some(&care.token), body)
        .await
        .problem(404, "not-found");
}

#[tokio::test]
async fn a_company_viewer_analyses_an_enrollee_recording_but_may_not_store() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@ecg-fleet.example").await;
    let res = app
        .post(
            &format!("/v1/memberships/{}/subjects", acme.membership_id),
            Some(&acme.token),
            json!({"kind": "enrollee", "display_name": "Enrollee 7", "external_ref": "E-7"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let enrollee = res.str("/id");
    let (beats, csv) = recording(Utc::now() - Duration::minutes(30));
    app.upload(&acme.token, acme.farm_id, "fleet/e7.csv", csv.into_bytes(), &[])
        .await;
    let viewer = app.staff(&acme, "viewer@ecg-fleet.example", "viewer").await;
    let body = json!({"farm_path": "fleet/e7.csv", "store_heart_rate": true});

    let res = app
        .post(
            &analyze_path(&enrollee),
            Some(&viewer),
            json!({"farm_path": "fleet/e7.csv"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_beats(&res.body, &beats);
    app.post(&analyze_path(&enrollee), Some(&viewer), body.clone())
        .await
        .problem(403, "forbidden");
    let res = app.post(&analyze_path(&enrollee), Some(&acme.token), body).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["stored_heart_rate"], json!(true));
    let list = app
        .get(&format!("/v1/subjects/{enrollee}/readings?metric=heart_rate"), &viewer)
        .await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1), "{}", list.text);
}

/// Issue 13 item 6: an app reads a recording only with `files.read`, and a
/// malformed recording's error names the line, never what it holds.
#[tokio::test]
async fn an_app_needs_files_read_and_errors_never_echo_the_recording() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann.ecg-scope@example.org").await;
    let dev = app.company("dev@ecg-scope.example").await;
    let me = self_subject(&app, &ann).await;
    let (_, csv) = recording(Utc::now() - Duration::hours(1));
    let up = app
        .upload(&ann.token, ann.farm_id, "ecg/rest.csv", csv.into_bytes(), &[])
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let secret = "# sampling_rate_hz=250\nmv\n0.1\nDiagnosis: Ann has condition X\n";
    let up = app
        .upload(&ann.token, ann.farm_id, "ecg/bad.csv", secret.as_bytes().to_vec(), &[])
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);

    let readings_only = crate::oauth::user_app_token(&app, &dev, &ann, &["readings.read"]).await;
    let res = app
        .post(
            &analyze_path(&me),
            Some(&readings_only),
            json!({"farm_path": "ecg/rest.csv"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text);
    assert!(res.text.contains("files.read"), "{}", res.text);
    assert!(res.body.get("r_peaks").is_none());

    let both = crate::oauth::user_app_token(&app, &dev, &ann, &["readings.read", "files.read"]).await;
    let res = app
        .post(&analyze_path(&me), Some(&both), json!({"farm_path": "ecg/rest.csv"}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);

    let res = app
        .post(
            &analyze_path(&me),
            Some(&ann.token),
            json!({"farm_path": "ecg/bad.csv"}),
        )
        .await;
    assert_eq!(res.fields(), ["farm_path"], "{}", res.text);
    assert!(res.text.contains("line 4"), "{}", res.text);
    for leak in ["Diagnosis", "Ann has", "condition"] {
        assert!(!res.text.contains(leak), "the error echoes the file: {}", res.text);
    }
}

/// Issue 14: the heart rate an ECG analysis stores goes through the one
/// write path, so the alert rules judge it like a device's reading. The
/// recording speeds up to 120 bpm; a rule on a heart rate over 80 opens.
#[tokio::test]
async fn a_stored_ecg_heart_rate_is_judged_by_the_alert_rules() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let me = self_subject(&app, &ann).await;
    let rule = app
        .post(
            &format!("/v1/memberships/{}/alert-rules", ann.membership_id),
            Some(&ann.token),
            json!({"name": "Fast heart", "metric": "heart_rate",
                "condition": {"kind": "threshold", "op": "gt", "value": 80}, "severity": "warning"}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.text);
    let (_, csv) = recording(Utc::now() - Duration::hours(1));
    let up = app
        .upload(&ann.token, ann.farm_id, "ecg/run.csv", csv.into_bytes(), &[])
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let stored = app
        .post(
            &analyze_path(&me),
            Some(&ann.token),
            json!({"farm_path": "ecg/run.csv", "store_heart_rate": true}),
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    assert_eq!(stored.body["stored_heart_rate"], json!(true));
    assert!(
        stored.body["heart_rate_bpm"].as_f64().unwrap() > 80.0,
        "{}",
        stored.text
    );
    let alerts = app
        .get(&format!("/v1/memberships/{}/alerts", ann.membership_id), &ann.token)
        .await;
    let items = alerts.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", alerts.text);
    assert_eq!(items[0]["rule_id"], rule.body["id"]);
    assert_eq!(items[0]["subject_id"], me.as_str());
}
