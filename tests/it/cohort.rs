//! Cohort aggregates: a company's own enrollees and consented individuals,
//! grouped by age band and sex, with small groups suppressed and no totals
//! that reveal them; shared subjects only under consents covering the
//! metric, each consent audited once.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vitalfarm_tests::{Member, TestApp, self_subject};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A new enrollee of `company` born on `birth` with `sex`, wearing a device
/// that sends heart rate `values` (one a minute, an hour ago).
async fn enrollee(app: &TestApp, company: &Member, serial: &str, birth: &str, sex: &str, values: &[f64]) -> String {
    let device = app.monitored_device(company, serial).await;
    let res = app
        .patch(
            &format!("/v1/subjects/{}", device.subject),
            &company.token,
            json!({"birth_date": birth, "sex": sex}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let start = Utc::now() - Duration::hours(1);
    let readings: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"metric": "heart_rate", "ts": ts(start + Duration::minutes(i as i64)), "value": v}))
        .collect();
    app.ingest(&device, Value::Array(readings)).await;
    device.subject
}

fn period() -> (String, String) {
    let now = Utc::now();
    (ts(now - Duration::days(7)), ts(now + Duration::minutes(1)))
}

async fn cohort(app: &TestApp, who: &Member, mut body: Value) -> vitalfarm_tests::Resp {
    let (from, to) = period();
    let obj = body.as_object_mut().unwrap();
    obj.entry("from").or_insert(json!(from));
    obj.entry("to").or_insert(json!(to));
    app.post("/v1/analytics/cohort", Some(&who.token), body).await
}

/// Seven women of 65-79 (heart rates 60..=66, two readings each), two men
/// of 18-39, two subjects with no sex recorded, one without readings.
async fn clinic(app: &TestApp) -> Member {
    let care = app.company("care@acme.example").await;
    for i in 0..7 {
        let v = 60.0 + f64::from(i);
        enrollee(
            app,
            &care,
            &format!("F-{i}"),
            "1955-03-01",
            "female",
            &[v - 1.0, v + 1.0],
        )
        .await;
    }
    enrollee(app, &care, "M-0", "1995-06-01", "male", &[90.0]).await;
    enrollee(app, &care, "M-1", "1996-06-01", "male", &[95.0]).await;
    enrollee(app, &care, "U-0", "1990-01-01", "unknown", &[70.0]).await;
    enrollee(app, &care, "U-1", "1991-01-01", "unknown", &[71.0]).await;
    enrollee(app, &care, "N-0", "1950-01-01", "female", &[]).await;
    care
}

#[tokio::test]
async fn small_groups_are_suppressed_without_numbers_or_totals_that_reveal_them() {
    let app = TestApp::spawn().await;
    let care = clinic(&app).await;

    let res = cohort(&app, &care, json!({"metric": "heart_rate"})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let b = &res.body;
    assert_eq!(b["k"], 5);
    assert_eq!(b["metric"], "heart_rate");
    assert_eq!(b["component"], Value::Null);
    assert_eq!(b["groups"].as_array().unwrap().len(), 1, "{b}");
    let g = &b["groups"][0];
    assert_eq!(g["age_band"], "65-79");
    assert_eq!(g["sex"], "female");
    // The subject without readings is not counted.
    assert_eq!(g["subjects"], 7);
    assert_eq!(g["readings"], 14);
    assert!((g["mean"].as_f64().unwrap() - 63.0).abs() < 1e-9, "{g}");
    assert_eq!(g["min"], 59.0);
    assert_eq!(g["max"], 67.0);
    assert!(g["stddev"].as_f64().unwrap() > 0.0);
    // Suppressed groups are named and carry nothing else.
    assert_eq!(
        b["suppressed"],
        json!([{"age_band": "18-39", "sex": "male"}, {"age_band": "18-39", "sex": "unknown"}])
    );
    assert_eq!(
        b["totals"],
        json!({"subjects": 7, "readings": 14, "groups_published": 1, "groups_suppressed": 2})
    );
    assert_eq!(b["consents"], json!([]));
    assert_eq!(res.header("vitalfarm-consent"), None);

    // k = 2 is refused by name; k = 3 still hides the pairs.
    cohort(&app, &care, json!({"metric": "heart_rate", "k": 2}))
        .await
        .problem(400, "invalid-parameter");
    let res = cohort(&app, &care, json!({"metric": "heart_rate", "k": 2})).await;
    assert_eq!(res.fields(), ["k"]);
    let res = cohort(&app, &care, json!({"metric": "heart_rate", "k": 3})).await;
    assert_eq!(res.body["totals"]["groups_published"], 1, "{}", res.text);

    // Grouped by sex only; grouped by nothing, everyone with readings is
    // one group.
    let res = cohort(
        &app,
        &care,
        json!({"metric": "heart_rate", "group_by": ["sex"], "k": 3}),
    )
    .await;
    assert_eq!(res.body["groups"][0]["sex"], "female", "{}", res.text);
    assert_eq!(res.body["groups"][0].get("age_band"), None);
    assert_eq!(res.body["suppressed"], json!([{"sex": "male"}, {"sex": "unknown"}]));
    let res = cohort(&app, &care, json!({"metric": "heart_rate", "group_by": []})).await;
    assert_eq!(res.body["groups"][0]["subjects"], 11, "{}", res.text);
    assert_eq!(res.body["groups"][0].get("age_band"), None);
    assert_eq!(res.body["groups"][0].get("sex"), None);
    // Other band edges: the women are 71 on `to`.
    let res = cohort(&app, &care, json!({"metric": "heart_rate", "age_bands": [0, 70]})).await;
    assert_eq!(res.body["groups"][0]["age_band"], "70+", "{}", res.text);
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let app = TestApp::spawn().await;
    let care = app.company("care@acme.example").await;
    let now = Utc::now();
    let cases = [
        (json!({"metric": "pulse"}), "metric"),
        (json!({"metric": "ecg"}), "metric"),
        (json!({"metric": "blood_pressure"}), "component"),
        (json!({"metric": "blood_pressure", "component": "mean"}), "component"),
        (json!({"metric": "heart_rate", "component": "systolic"}), "component"),
        (json!({"metric": "heart_rate", "k": 0}), "k"),
        (json!({"metric": "heart_rate", "group_by": ["zip"]}), "group_by"),
        (json!({"metric": "heart_rate", "group_by": ["sex", "sex"]}), "group_by"),
        (json!({"metric": "heart_rate", "age_bands": [40, 18]}), "age_bands"),
        (json!({"metric": "heart_rate", "age_bands": []}), "age_bands"),
        (
            json!({"metric": "heart_rate", "from": ts(now - Duration::days(400)), "to": ts(now)}),
            "to",
        ),
        (
            json!({"metric": "heart_rate", "from": ts(now), "to": ts(now - Duration::hours(1))}),
            "from",
        ),
    ];
    for (body, field) in cases {
        let res = cohort(&app, &care, body.clone()).await;
        res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), [field], "{body}: {}", res.text);
    }
    // A body of the wrong shape is refused naming the field, never a 500.
    let res = app
        .post("/v1/analytics/cohort", Some(&care.token), json!({"metric": 5}))
        .await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["metric"]);
    // Blood pressure by component works on an empty cohort.
    let res = cohort(
        &app,
        &care,
        json!({"metric": "blood_pressure", "component": "systolic"}),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["component"], "systolic");
    assert_eq!(res.body["groups"], json!([]));
}

/// An individual of 71 sharing `metrics` of herself with `care`.
async fn consenting(
    app: &TestApp,
    care: &Member,
    email: &str,
    serial: &str,
    metrics: &[&str],
) -> (Member, String, String) {
    let ann = app.individual(email).await;
    let me = self_subject(app, &ann).await;
    let res = app
        .patch(
            &format!("/v1/subjects/{me}"),
            &ann.token,
            json!({"birth_date": "1955-03-01", "sex": "female"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let watch = app.claimed_device(&ann, &me, serial).await;
    let start = Utc::now() - Duration::hours(1);
    app.ingest(
        &watch,
        json!([
            {"metric": "heart_rate", "ts": ts(start), "value": 100.0},
            {"metric": "heart_rate", "ts": ts(start + Duration::minutes(1)), "value": 100.0},
            {"metric": "spo2", "ts": ts(start), "value": 97.0},
        ]),
    )
    .await;
    let consent = app.grant_consent(&ann, care, &[&me], metrics, "research").await;
    (ann, me, consent)
}

#[tokio::test]
async fn consented_subjects_count_under_a_covering_consent_and_are_audited() {
    let app = TestApp::spawn().await;
    let care = clinic(&app).await;
    let (ann, _, hr) = consenting(&app, &care, "ann@example.org", "W-1", &["heart_rate"]).await;
    // Bea shares only her oxygen saturation: not counted for heart rate.
    let (bea, _, spo2) = consenting(&app, &care, "bea@example.org", "W-2", &["spo2"]).await;

    let res = cohort(&app, &care, json!({"metric": "heart_rate"})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let g = &res.body["groups"][0];
    assert_eq!(g["subjects"], 8, "{}", res.text);
    assert_eq!(g["readings"], 16);
    assert_eq!(g["max"], 100.0);
    assert_eq!(res.body["consents"], json!([hr]));
    assert_eq!(res.header("vitalfarm-consent"), Some(hr.as_str()));
    // Ann's log records the read once, under her consent, for the company.
    let reads: Vec<Value> = app
        .audit(ann.membership_id, &ann.token, "action=data.read&")
        .await
        .into_iter()
        .filter(|e| e["resource"] == "cohort/readings/heart_rate")
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0]["consent_id"], hr);
    assert_eq!(reads[0]["outcome"], "allowed");
    // Bea's heart rate was not read, so her log has no such read.
    let bea_log = app.audit(bea.membership_id, &bea.token, "action=data.read&").await;
    assert!(
        !bea_log.iter().any(|e| e["resource"] == "cohort/readings/heart_rate"),
        "{bea_log:?}"
    );
    // Her oxygen saturation is counted (alone: suppressed).
    let res = cohort(&app, &care, json!({"metric": "spo2", "k": 3})).await;
    assert_eq!(res.body["consents"], json!([spo2]), "{}", res.text);
    assert_eq!(res.body["suppressed"], json!([{"age_band": "65-79", "sex": "female"}]));
    assert_eq!(res.body["groups"], json!([]));

    // Without shared subjects: the company's own only, no consent used.
    let res = cohort(&app, &care, json!({"metric": "heart_rate", "include_shared": false})).await;
    assert_eq!(res.body["groups"][0]["subjects"], 7, "{}", res.text);
    assert_eq!(res.body["consents"], json!([]));

    // After revocation Ann is no longer counted.
    let res = app
        .call(Method::DELETE, &format!("/v1/consents/{hr}"), Some(&ann.token), None)
        .await;
    assert!(res.status.is_success(), "{}", res.text);
    let res = cohort(&app, &care, json!({"metric": "heart_rate"})).await;
    assert_eq!(res.body["groups"][0]["subjects"], 7, "{}", res.text);
    assert_eq!(res.body["consents"], json!([]));
}

#[tokio::test]
async fn only_members_of_the_acting_membership_may_aggregate_it() {
    let app = TestApp::spawn().await;
    let care = clinic(&app).await;
    let eve = app.individual("eve@example.org").await;
    // A stranger naming the company's membership: as if it did not exist.
    let res = cohort(
        &app,
        &eve,
        json!({"metric": "heart_rate", "membership_id": care.membership_id}),
    )
    .await;
    res.problem(404, "not-found");
    // Acting for herself, she sees none of the company's subjects.
    let res = cohort(&app, &eve, json!({"metric": "heart_rate", "group_by": []})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["groups"], json!([]));
    assert_eq!(res.body["suppressed"], json!([]));
    // Naming the company's subjects does not let her count them.
    let theirs = app
        .get(&format!("/v1/memberships/{}/subjects", care.membership_id), &care.token)
        .await;
    let ids: Vec<Value> = theirs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    let res = cohort(
        &app,
        &eve,
        json!({"metric": "heart_rate", "group_by": [], "k": 3, "subject_ids": ids}),
    )
    .await;
    assert_eq!(res.body["groups"], json!([]), "{}", res.text);
    // The company restricting itself to some of its subjects.
    let res = cohort(
        &app,
        &care,
        json!({"metric": "heart_rate", "group_by": [], "k": 3, "subject_ids": ids[..3].to_vec()}),
    )
    .await;
    assert_eq!(res.body["groups"][0]["subjects"], 3, "{}", res.text);
}
