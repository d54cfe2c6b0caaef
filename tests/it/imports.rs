//! Hospital imports: a FHIR R4 Bundle becomes readings (source `hospital`)
//! and farm documents, bad entries are reported one by one, a re-import
//! stores nothing twice, and nobody imports into a membership or subject
//! that is not theirs.

use chrono::{DateTime, Duration, DurationRound, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_tests::{Resp, TestApp, self_subject};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn coding(code: &str) -> Value {
    json!({"coding": [{"system": LOINC, "code": code}]})
}

fn quantity(value: f64, code: &str) -> Value {
    json!({"value": value, "unit": code, "system": UCUM, "code": code})
}

fn observation(id: &str, code: &str, t: DateTime<Utc>, value: f64, unit: &str) -> Value {
    json!({"fullUrl": format!("urn:uuid:{id}"), "resource": {"resourceType": "Observation", "id": id, "status": "final",
        "code": coding(code), "effectiveDateTime": ts(t), "valueQuantity": quantity(value, unit)}})
}

/// A discharge summary: the patient, three heart rates, a blood pressure
/// panel, a temperature in Fahrenheit, a condition, a medication, a lab
/// value of a code we do not know, and an observation without a time.
fn bundle(base: DateTime<Utc>) -> Value {
    json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "pat-1", "gender": "female", "birthDate": "1950-04-02"}},
        observation("hr-1", "8867-4", base, 72.0, "/min"),
        observation("hr-2", "8867-4", base + Duration::minutes(10), 80.0, "/min"),
        observation("hr-3", "8867-4", base + Duration::minutes(20), 76.0, "/min"),
        {"resource": {"resourceType": "Observation", "id": "bp-1", "status": "final", "code": coding("85354-9"),
            "effectiveDateTime": ts(base),
            "component": [
                {"code": coding("8480-6"), "valueQuantity": quantity(128.0, "mm[Hg]")},
                {"code": coding("8462-4"), "valueQuantity": quantity(84.0, "mm[Hg]")}]}},
        observation("temp-1", "8310-5", base, 98.6, "[degF]"),
        {"resource": {"resourceType": "Condition", "id": "cond-1",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]}}},
        {"resource": {"resourceType": "MedicationStatement", "id": "med-1", "status": "active",
            "medicationCodeableConcept": {"text": "Lisinopril 10 mg"}}},
        observation("lab-1", "2093-3", base, 190.0, "mg/dL"),
        {"resource": {"resourceType": "Observation", "id": "bad-1", "status": "final", "code": coding("8867-4"),
            "valueQuantity": quantity(70.0, "/min")}},
        observation("bad-2", "8867-4", base, 900.0, "/min"),
    ]})
}

async fn import(app: &TestApp, who: &str, mid: impl std::fmt::Display, query: &str, body: &Value) -> Resp {
    let res = app
        .client
        .post(app.url(&format!("/v1/memberships/{mid}/imports/fhir{query}")))
        .bearer_auth(who)
        .header("content-type", "application/fhir+json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .expect("request is sent");
    Resp::from(res).await
}

fn base() -> DateTime<Utc> {
    (Utc::now() - Duration::days(2))
        .duration_trunc(Duration::minutes(1))
        .unwrap()
}

#[tokio::test]
async fn a_bundle_becomes_readings_and_documents_and_re_importing_changes_nothing() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let me = self_subject(&app, &ann).await;
    let b = base();
    let body = bundle(b);
    let q = format!("?subject_id={me}");

    let res = import(&app, &ann.token, ann.membership_id, &q, &body).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["subject_id"], me);
    assert_eq!(
        res.body["readings"],
        json!({"imported": 5, "duplicates": 0}),
        "{}",
        res.text
    );
    let day = Utc::now().format("%Y-%m-%d");
    let docs: Vec<(String, String)> = res.body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_owned(),
                d["resource_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        docs,
        [
            (format!("/hospital/{day}/Patient-pat-1.json"), "Patient".to_owned()),
            (format!("/hospital/{day}/Condition-cond-1.json"), "Condition".to_owned()),
            (
                format!("/hospital/{day}/MedicationStatement-med-1.json"),
                "MedicationStatement".to_owned()
            ),
            (
                format!("/hospital/{day}/Observation-lab-1.json"),
                "Observation".to_owned()
            ),
        ]
    );
    let rejected = res.body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{}", res.text);
    assert_eq!(rejected[0]["entry"], 9);
    assert_eq!(rejected[0]["id"], "bad-1");
    assert_eq!(rejected[0]["resource_type"], "Observation");
    assert_eq!(rejected[0]["field"], "effectiveDateTime");
    assert_eq!(rejected[1]["entry"], 10);
    assert_eq!(rejected[1]["field"], "valueQuantity.value");

    // The readings, with source hospital and no device.
    let from = ts(b - Duration::minutes(1)).replace(':', "%3A");
    let hr = app
        .get(
            &format!("/v1/subjects/{me}/readings?metric=heart_rate&from={from}"),
            &ann.token,
        )
        .await;
    assert_eq!(hr.status, StatusCode::OK, "{}", hr.text);
    let items = hr.body["items"].as_array().unwrap();
    let values: Vec<f64> = items.iter().map(|r| r["value"].as_f64().unwrap()).collect();
    assert_eq!(values, [72.0, 80.0, 76.0], "{}", hr.text);
    assert!(
        items
            .iter()
            .all(|r| r["source"] == "hospital" && r["device_id"].is_null())
    );
    let bp = app
        .get(
            &format!("/v1/subjects/{me}/readings?metric=blood_pressure&from={from}"),
            &ann.token,
        )
        .await;
    assert_eq!(
        bp.body["items"][0]["components"],
        json!({"systolic": 128.0, "diastolic": 84.0})
    );
    let temp = app
        .get(
            &format!("/v1/subjects/{me}/readings?metric=body_temperature&from={from}"),
            &ann.token,
        )
        .await;
    let celsius = temp.body["items"][0]["value"].as_f64().unwrap();
    assert!((celsius - 37.0).abs() < 1e-9, "{celsius}");
    assert_eq!(temp.body["items"][0]["unit"], "Cel");

    // The documents are files of the farm, whole.
    let (status, _, bytes) = app
        .download(
            &ann.token,
            ann.farm_id,
            &format!("hospital/{day}/Condition-cond-1.json"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let condition: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(condition["code"]["coding"][0]["code"], "38341003");
    let (status, _, _) = app
        .download(
            &ann.token,
            ann.farm_id,
            &format!("hospital/{day}/Observation-lab-1.json"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // The same bundle again: every reading a duplicate, no new versions.
    let res = import(&app, &ann.token, ann.membership_id, &q, &body).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["readings"], json!({"imported": 0, "duplicates": 5}));
    assert_eq!(res.body["documents"].as_array().unwrap().len(), 4);
    let hr = app
        .get(
            &format!("/v1/subjects/{me}/readings?metric=heart_rate&from={from}"),
            &ann.token,
        )
        .await;
    assert_eq!(hr.body["items"].as_array().unwrap().len(), 3, "{}", hr.text);

    // The import is in the membership's audit log, with counts.
    let log = app.audit(ann.membership_id, &ann.token, "action=fhir.imported&").await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["resource"], format!("subject/{me}"));
}

#[tokio::test]
async fn strangers_foreign_subjects_and_non_bundles_are_refused() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let me = self_subject(&app, &ann).await;
    let eve = app.individual("eve@example.org").await;
    let eve_self = self_subject(&app, &eve).await;
    let body = bundle(base());

    // Eve into Ann's membership: as if it did not exist.
    import(&app, &eve.token, ann.membership_id, &format!("?subject_id={me}"), &body)
        .await
        .problem(404, "not-found");
    // Ann naming Eve's subject in her own membership.
    import(
        &app,
        &ann.token,
        ann.membership_id,
        &format!("?subject_id={eve_self}"),
        &body,
    )
    .await
    .problem(404, "not-found");
    // Nothing was stored for either.
    let hr = app
        .get(&format!("/v1/subjects/{me}/readings?metric=heart_rate"), &ann.token)
        .await;
    assert_eq!(hr.body["items"], json!([]));

    let q = format!("?subject_id={me}");
    for (bad, field) in [
        (json!({"resourceType": "Patient", "id": "p"}), "resourceType"),
        (json!({"resourceType": "Bundle", "entry": "none"}), "entry"),
        (json!([1, 2]), "body"),
    ] {
        let res = import(&app, &ann.token, ann.membership_id, &q, &bad).await;
        res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), [field], "{}", res.text);
    }
    let res = import(&app, &ann.token, ann.membership_id, "", &body).await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), ["subject_id"]);
    // Plain JSON is accepted too; an empty bundle imports nothing.
    let res = app
        .client
        .post(app.url(&format!("/v1/memberships/{}/imports/fhir{q}", ann.membership_id)))
        .bearer_auth(&ann.token)
        .header("content-type", "application/json")
        .body(r#"{"resourceType": "Bundle", "type": "collection"}"#)
        .send()
        .await
        .unwrap();
    let res = Resp::from(res).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["readings"], json!({"imported": 0, "duplicates": 0}));
    // Malformed JSON.
    let res = app
        .client
        .post(app.url(&format!("/v1/memberships/{}/imports/fhir{q}", ann.membership_id)))
        .bearer_auth(&ann.token)
        .header("content-type", "application/json")
        .body("{\"resourceType\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Not JSON at all.
    let res = app
        .client
        .post(app.url(&format!("/v1/memberships/{}/imports/fhir{q}", ann.membership_id)))
        .bearer_auth(&ann.token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// Issue 14: readings without a device have a unique key of their own, so
/// the same bundle imported several times at once stores each reading
/// exactly once, and the answers together count each once as imported.
#[tokio::test]
async fn concurrent_imports_of_one_bundle_store_each_reading_once() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let me = self_subject(&app, &ann).await;
    let t = base();
    // Readings only: documents would race for the same farm paths, which
    // is another matter.
    let body = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        observation("hr-1", "8867-4", t, 72.0, "/min"),
        observation("hr-2", "8867-4", t + Duration::minutes(10), 80.0, "/min"),
        observation("hr-3", "8867-4", t + Duration::minutes(20), 76.0, "/min"),
        observation("temp-1", "8310-5", t, 98.6, "[degF]"),
    ]});
    let query = format!("?subject_id={me}");
    let answers =
        futures_util::future::join_all((0..6).map(|_| import(&app, &ann.token, ann.membership_id, &query, &body)))
            .await;
    let mut imported = 0;
    for res in &answers {
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        let r = &res.body["readings"];
        assert_eq!(
            r["imported"].as_u64().unwrap() + r["duplicates"].as_u64().unwrap(),
            4,
            "{}",
            res.text
        );
        imported += r["imported"].as_u64().unwrap();
    }
    assert_eq!(imported, 4);
    let from = ts(t - Duration::minutes(1));
    for (metric, count) in [("heart_rate", 3), ("body_temperature", 1)] {
        let list = app
            .get(
                &format!("/v1/subjects/{me}/readings?metric={metric}&from={from}"),
                &ann.token,
            )
            .await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        assert_eq!(list.body["items"].as_array().unwrap().len(), count, "{}", list.text);
    }
}
