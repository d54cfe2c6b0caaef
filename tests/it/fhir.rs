//! The FHIR R4 view of a subject's readings: LOINC codes, UCUM units, the
//! blood-pressure panel, one time order across metrics, pagination by the
//! `next` link, windows, and that nobody else can read it.
//!
//! With `VITALFARM_FHIR_SAMPLE_OUT` set, the full bundle is written there so
//! that an independent FHIR validator can check it.

use std::collections::{BTreeMap, HashSet};

use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_domain::metrics;
use vitalfarm_storage::repo::readings;
use vitalfarm_tests::{Resp, TestApp};

async fn send(app: &TestApp, credential: &str, body: Value) -> Resp {
    let res = app
        .client
        .post(app.url("/v1/ingest/readings"))
        .header("authorization", credential)
        .json(&body)
        .send()
        .await
        .unwrap();
    Resp::from(res).await
}

/// GETs an absolute URL (a bundle's `next` link).
async fn follow(app: &TestApp, url: &str, bearer: &str) -> Resp {
    let res = app.client.get(url).bearer_auth(bearer).send().await.unwrap();
    Resp::from(res).await
}

fn observations(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Observation")
        .collect()
}

fn ids(bundle: &Value) -> Vec<String> {
    observations(bundle)
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| l["url"].as_str().unwrap().to_owned())
}

/// Follows `next` links from `first` to the end: every observation id in
/// order, and how many pages it took.
async fn walk(app: &TestApp, first: &str, bearer: &str, count: usize) -> (Vec<String>, usize) {
    let mut page = app.get(first, bearer).await;
    let (mut all, mut pages) = (Vec::new(), 0);
    loop {
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        pages += 1;
        assert!(pages < 100, "pagination does not end");
        let got = ids(&page.body);
        assert!(got.len() <= count, "page of {} with _count={count}", got.len());
        assert_eq!(page.body["entry"][0]["resource"]["resourceType"], "Patient");
        all.extend(got);
        match next_link(&page.body) {
            Some(url) => {
                assert!(url.contains("cursor="), "{url}");
                page = follow(app, &url, bearer).await;
            }
            None => break,
        }
    }
    (all, pages)
}

#[tokio::test]
async fn readings_become_observations_with_loinc_ucum_and_pagination() {
    let app = TestApp::spawn().await;
    let care = app.company("fhir@acme.example").await;
    let d = app.monitored_device(&care, "FHIR-1").await;
    let (cred, subject, device) = (d.credential(), d.subject, d.id);
    let res = app
        .patch(
            &format!("/v1/subjects/{subject}"),
            &care.token,
            json!({"birth_date": "1950-02-03", "sex": "female"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let batch = json!({"readings": [
        {"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 72},
        {"metric": "blood_pressure", "ts": "2026-11-21T08:00:00Z", "components": {"systolic": 128, "diastolic": 84}},
        {"metric": "body_temperature", "ts": "2026-11-21T08:00:00Z", "value": 98.6, "unit": "[degF]"},
        {"metric": "spo2", "ts": "2026-11-21T08:00:00Z", "value": 97},
        {"metric": "heart_rate", "ts": "2026-11-21T08:01:00Z", "value": 75},
        {"metric": "body_temperature", "ts": "2026-11-21T08:02:00Z", "value": 37.2},
        {"metric": "spo2", "ts": "2026-11-21T08:03:00Z", "value": 98},
        {"metric": "blood_glucose", "ts": "2026-11-21T08:04:00Z", "value": 5.5, "unit": "mmol/L"},
        {"metric": "heart_rate", "ts": "2026-11-21T08:05:00Z", "value": 80},
        {"metric": "blood_pressure", "ts": "2026-11-21T08:05:00Z", "components": {"systolic": 130, "diastolic": 85}},
        {"metric": "blood_glucose", "ts": "2026-11-21T08:06:00.250Z", "value": 110}
    ]});
    let res = send(&app, &cred, batch).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["accepted"], 11, "{}", res.text);

    let path = format!("/v1/subjects/{subject}/fhir");
    let full = app.get(&path, &care.token).await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.text);
    assert_eq!(full.header("content-type"), Some("application/fhir+json"));
    if let Ok(out) = std::env::var("VITALFARM_FHIR_SAMPLE_OUT") {
        std::fs::write(&out, serde_json::to_vec_pretty(&full.body).unwrap()).unwrap();
    }
    let b = &full.body;
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    assert_eq!(b["total"], 11);
    assert!(next_link(b).is_none());
    assert_eq!(b["link"][0]["relation"], "self");

    let patient = &b["entry"][0];
    assert_eq!(patient["fullUrl"], format!("urn:uuid:{subject}"));
    assert_eq!(patient["resource"]["id"], subject);
    assert_eq!(patient["resource"]["gender"], "female");
    assert_eq!(patient["resource"]["birthDate"], "1950-02-03");
    assert_eq!(patient["resource"]["name"][0]["text"], "Wearer of FHIR-1");

    let obs = observations(b);
    assert_eq!(obs.len(), 11);
    let times: Vec<&str> = obs.iter().map(|o| o["effectiveDateTime"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order: {times:?}");
    assert_eq!(times[10], "2026-11-21T08:06:00.250Z");
    let mut by_code: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for (o, entry) in obs.iter().zip(b["entry"].as_array().unwrap().iter().skip(1)) {
        assert_eq!(entry["fullUrl"], format!("urn:uuid:{}", o["id"].as_str().unwrap()));
        assert_eq!(entry["search"]["mode"], "match");
        assert_eq!(o["status"], "final");
        assert_eq!(o["subject"]["reference"], format!("Patient/{subject}"));
        assert_eq!(o["device"]["identifier"]["value"], format!("urn:uuid:{device}"));
        assert_eq!(o["code"]["coding"][0]["system"], "http://loinc.org");
        assert_eq!(
            o["category"][0]["coding"][0]["system"],
            "http://terminology.hl7.org/CodeSystem/observation-category"
        );
        by_code
            .entry(o["code"]["coding"][0]["code"].as_str().unwrap().to_owned())
            .or_default()
            .push(o);
    }
    let counts: BTreeMap<&str, usize> = by_code.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("8867-4", 3),
            ("85354-9", 2),
            ("8310-5", 2),
            ("59408-5", 2),
            ("2339-0", 2)
        ])
    );
    let unit_of = |code: &str| by_code[code][0]["valueQuantity"]["code"].clone();
    assert_eq!(unit_of("8867-4"), "/min");
    assert_eq!(unit_of("8310-5"), "Cel");
    assert_eq!(unit_of("59408-5"), "%");
    assert_eq!(unit_of("2339-0"), "mg/dL");
    for code in ["8867-4", "8310-5", "59408-5", "2339-0"] {
        assert_eq!(by_code[code][0]["valueQuantity"]["system"], "http://unitsofmeasure.org");
    }
    let celsius = by_code["8310-5"][0]["valueQuantity"]["value"].as_f64().unwrap();
    assert!((celsius - 37.0).abs() < 1e-9, "{celsius}");
    let glucose = by_code["2339-0"][0]["valueQuantity"]["value"].as_f64().unwrap();
    assert!((glucose - 5.5 * 18.0156).abs() < 1e-9, "{glucose}");
    assert_eq!(by_code["2339-0"][0]["category"][0]["coding"][0]["code"], "laboratory");
    assert_eq!(by_code["8867-4"][0]["category"][0]["coding"][0]["code"], "vital-signs");

    let bp = by_code["85354-9"][0];
    assert!(bp.get("valueQuantity").is_none(), "{bp}");
    assert_eq!(bp["effectiveDateTime"], "2026-11-21T08:00:00Z");
    let comps = bp["component"].as_array().unwrap();
    assert_eq!(comps.len(), 2);
    assert_eq!(comps[0]["code"]["coding"][0]["code"], "8480-6");
    assert_eq!(comps[0]["valueQuantity"]["value"], 128.0);
    assert_eq!(comps[0]["valueQuantity"]["code"], "mm[Hg]");
    assert_eq!(comps[1]["code"]["coding"][0]["code"], "8462-4");
    assert_eq!(comps[1]["valueQuantity"]["value"], 84.0);

    // The same reading has the same id in every bundle.
    let again = app.get(&path, &care.token).await;
    assert_eq!(ids(&again.body), ids(b));

    // Pagination walks every observation exactly once, in the same order,
    // including across the four readings sharing 08:00.
    let all = ids(b);
    for count in [1usize, 2, 3, 5, 11, 1000] {
        let (walked, pages) = walk(&app, &format!("{path}?_count={count}"), &care.token, count).await;
        assert_eq!(walked, all, "_count={count}");
        assert_eq!(pages, all.len().div_ceil(count).max(1), "_count={count}");
    }
    let page = app.get(&format!("{path}?_count=4"), &care.token).await;
    assert_eq!(page.body["total"], 11, "total counts all pages");

    // A window, and a choice of metrics (repeated or comma-separated).
    let windowed = app
        .get(
            &format!("{path}?from=2026-11-21T08:01:00Z&to=2026-11-21T08:05:00Z"),
            &care.token,
        )
        .await;
    assert_eq!(windowed.status, StatusCode::OK, "{}", windowed.text);
    assert_eq!(ids(&windowed.body), all[4..8]);
    assert_eq!(windowed.body["total"], 4);
    let chosen = app
        .get(&format!("{path}?metric=heart_rate&metric=blood_pressure"), &care.token)
        .await;
    assert_eq!(chosen.body["total"], 5);
    let codes: HashSet<&str> = observations(&chosen.body)
        .iter()
        .map(|o| o["code"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, HashSet::from(["8867-4", "85354-9"]));
    let (walked, _) = walk(
        &app,
        &format!("{path}?metric=heart_rate,blood_pressure&from=2026-11-21T08:00:00Z&_count=2"),
        &care.token,
        2,
    )
    .await;
    assert_eq!(walked, ids(&chosen.body));

    // Bad parameters name themselves.
    for (query, field) in [
        ("metric=mood", "metric"),
        ("metric=heart_rate,ecg", "metric"),
        ("_count=0", "_count"),
        ("_count=1001", "_count"),
        ("from=yesterday", "from"),
        ("cursor=bm9wZQ", "cursor"),
    ] {
        let res = app.get(&format!("{path}?{query}"), &care.token).await;
        res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), [field], "{query}");
    }
}

#[tokio::test]
async fn another_membership_cannot_read_the_bundle() {
    let app = TestApp::spawn().await;
    let care = app.company("fhir-owner@acme.example").await;
    let d = app.monitored_device(&care, "FHIR-2").await;
    let res = send(
        &app,
        &d.credential(),
        json!({"readings": [{"metric": "heart_rate", "ts": "2026-11-21T08:00:00Z", "value": 70}]}),
    )
    .await;
    assert_eq!(res.body["accepted"], 1, "{}", res.text);
    let path = format!("/v1/subjects/{}/fhir", d.subject);

    let own_key = app.api_key(&care, "viewer").await;
    let mine = app.get(&path, &own_key).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(mine.body["total"], 1);

    let rival = app.company("fhir-rival@other.example").await;
    app.get(&path, &rival.token).await.problem(404, "not-found");
    let rival_key = app.api_key(&rival, "admin").await;
    app.get(&path, &rival_key).await.problem(404, "not-found");
    let person = app.individual("someone@home.example").await;
    app.get(&path, &person.token).await.problem(404, "not-found");
    // The same answer as for a subject that does not exist.
    app.get(&format!("/v1/subjects/{}/fhir", uuid::Uuid::now_v7()), &rival.token)
        .await
        .problem(404, "not-found");
}

#[tokio::test]
async fn pages_split_inside_one_millisecond_without_loss() {
    let app = TestApp::spawn().await;
    let care = app.company("fhir-tie@acme.example").await;
    let d = app.monitored_device(&care, "FHIR-3").await;
    // A second device on the same subject.
    let reg = app
        .post(
            &format!("/v1/memberships/{}/devices", care.membership_id),
            Some(&care.token),
            json!({"serial": "FHIR-4"}),
        )
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);
    let second = vitalfarm_tests::MonitoredDevice {
        id: reg.str("/devices/0/device_id"),
        secret: reg.str("/devices/0/secret"),
        subject: d.subject.clone(),
    };
    let res = app
        .post(
            &format!("/v1/devices/{}/assign", second.id),
            Some(&care.token),
            json!({"subject_id": d.subject}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let same_ms = json!({"readings": [
        {"metric": "heart_rate", "ts": "2026-11-21T08:00:00.500Z", "value": 70},
        {"metric": "blood_pressure", "ts": "2026-11-21T08:00:00.500Z", "components": {"systolic": 120, "diastolic": 80}},
        {"metric": "spo2", "ts": "2026-11-21T08:00:00.500Z", "value": 97}
    ]});
    for device in [&d, &second] {
        let res = send(&app, &device.credential(), same_ms.clone()).await;
        assert_eq!(res.body["accepted"], 3, "{}", res.text);
    }
    // Readings without a device (as records imported from elsewhere will
    // be), in the same millisecond, straight into the store.
    let subject: uuid::Uuid = d.subject.parse().unwrap();
    let row = |metric: &'static str, component: &'static str, value: f64| readings::NewRow {
        membership_id: vitalfarm_domain::MembershipId::from_uuid(care.membership_id),
        subject_id: vitalfarm_domain::SubjectId::from_uuid(subject),
        device_id: None,
        metric,
        component,
        ts_ms: 1_795_248_000_500,
        value,
        unit: metrics::find(metric).unwrap().unit,
        source: "manual",
        seq: None,
    };
    readings::insert_new(
        &app.running.state.db,
        vec![
            row("heart_rate", "", 71.0),
            row("blood_pressure", "systolic", 121.0),
            row("blood_pressure", "diastolic", 81.0),
        ],
    )
    .await
    .unwrap();

    let path = format!("/v1/subjects/{}/fhir", d.subject);
    let full = app.get(&path, &care.token).await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.text);
    assert_eq!(full.body["total"], 8);
    let all = ids(&full.body);
    assert_eq!(all.len(), 8);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 8, "ids are distinct");
    let manual: Vec<&Value> = observations(&full.body)
        .into_iter()
        .filter(|o| o.get("device").is_none())
        .collect();
    assert_eq!(manual.len(), 2, "{}", full.text);
    assert_eq!(manual[0]["meta"]["tag"][0]["code"], "manual");
    for count in [1usize, 2, 3] {
        let (walked, _) = walk(&app, &format!("{path}?_count={count}"), &care.token, count).await;
        assert_eq!(walked, all, "_count={count}");
    }
}
