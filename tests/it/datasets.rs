//! Public reference datasets: listed with their sources, served whole to
//! any authenticated caller, read-only, and the numbers are the published
//! ones the analytics use.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vitalfarm_tests::TestApp;

use crate::oauth::company_app_token;

const NAMES: [&str; 7] = [
    "blood-pressure-categories",
    "vital-sign-ranges",
    "temperature-thresholds",
    "news2-chart-1",
    "nice-ng143-traffic-light",
    "ada-glycaemic-thresholds",
    "paediatric-vital-centiles",
];

#[tokio::test]
async fn the_list_names_every_dataset_with_its_sources() {
    let app = TestApp::spawn().await;
    let person = app.individual("ann@example.org").await;
    let res = app.get("/v1/public-datasets", &person.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let items = res.body["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, NAMES);
    for item in items {
        let name = &item["name"];
        for field in ["title", "description", "version"] {
            assert!(item[field].as_str().is_some_and(|s| !s.is_empty()), "{name}: {field}");
        }
        assert!(item["record_count"].as_u64().unwrap() > 0, "{name}");
        let sources = item["sources"].as_array().unwrap();
        assert!(!sources.is_empty(), "{name}: no source");
        for s in sources {
            for field in ["id", "title", "publisher", "citation", "licence"] {
                assert!(
                    s[field].as_str().is_some_and(|v| !v.is_empty()),
                    "{name}: source {field}"
                );
            }
        }
        assert!(item.get("records").is_none(), "the list does not carry records");
    }
    let bp = &items[0];
    assert_eq!(bp["record_count"], 5);
    assert_eq!(bp["sources"][0]["year"], 2017);
    assert!(
        bp["sources"][0]["citation"]
            .as_str()
            .unwrap()
            .contains("10.1161/HYP.0000000000000065")
    );
}

#[tokio::test]
async fn each_dataset_is_served_with_its_records() {
    let app = TestApp::spawn().await;
    let person = app.individual("ann@example.org").await;
    let list = app.get("/v1/public-datasets", &person.token).await;
    for (i, name) in NAMES.iter().enumerate() {
        let res = app.get(&format!("/v1/public-datasets/{name}"), &person.token).await;
        assert_eq!(res.status, StatusCode::OK, "{name}: {}", res.text);
        let records = res.body["records"].as_array().unwrap();
        assert_eq!(Some(records.len() as u64), res.body["record_count"].as_u64(), "{name}");
        assert_eq!(
            res.body["record_count"], list.body["items"][i]["record_count"],
            "{name}"
        );
        assert_eq!(res.body["sources"], list.body["items"][i]["sources"], "{name}");
        assert!(res.body["notes"].as_str().is_some_and(|n| !n.is_empty()), "{name}");
    }

    let bp = app
        .get("/v1/public-datasets/blood-pressure-categories", &person.token)
        .await;
    let categories: Vec<&str> = bp.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["category"].as_str().unwrap())
        .collect();
    assert_eq!(
        categories,
        ["normal", "elevated", "stage_1", "stage_2", "hypertensive_crisis"]
    );
    assert_eq!(
        bp.body["records"][1],
        json!({"category": "elevated", "label": "Elevated", "rank": 1,
            "systolic": {"gte": 120.0, "lt": 130.0}, "diastolic": {"lt": 80.0}, "combine": "and",
            "published": "SBP 120-129 mm Hg and DBP < 80 mm Hg"})
    );
    assert_eq!(bp.body["records"][4]["systolic"], json!({"gt": 180.0}));
    assert_eq!(bp.body["records"][4]["diastolic"], json!({"gt": 120.0}));

    let vitals = app.get("/v1/public-datasets/vital-sign-ranges", &person.token).await;
    let neonate_hr = vitals.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "heart_rate" && r["age_group"] == "neonate")
        .unwrap();
    assert_eq!(
        (neonate_hr["min"].as_f64(), neonate_hr["max"].as_f64()),
        (Some(100.0), Some(205.0))
    );
    assert_eq!(neonate_hr["source"], "pals-2020");
    let source_ids: Vec<&Value> = vitals.body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    for r in vitals.body["records"].as_array().unwrap() {
        assert!(
            source_ids.contains(&&r["source"]),
            "record cites an unlisted source: {r}"
        );
    }

    let temp = app
        .get("/v1/public-datasets/temperature-thresholds", &person.token)
        .await;
    let infant_fever = temp.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["class"] == "fever_under_3_months")
        .unwrap();
    assert_eq!(infant_fever["celsius"], json!({"gte": 38.0}));
    assert_eq!(infant_fever["age_to_days"], 91);

    // The norms' sources (issue 16): every band names its table and row,
    // and every dataset says its values await a clinician's review.
    let row = |name: &'static str, metric: &'static str, row: &'static str| {
        let app = &app;
        let token = person.token.clone();
        async move {
            let res = app.get(&format!("/v1/public-datasets/{name}"), &token).await;
            assert!(
                res.body["notes"].as_str().unwrap().contains("REVIEW REQUIRED"),
                "{name}"
            );
            res.body["records"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["metric"] == metric && r["row"] == row)
                .cloned()
                .unwrap_or_else(|| panic!("{name}: {row}"))
        }
    };
    let pulse = row("news2-chart-1", "heart_rate", "Pulse (per minute) >=131: score 3").await;
    assert_eq!(
        (pulse["value"].clone(), pulse["score"].clone()),
        (json!({"gte": 131.0}), json!(3))
    );
    assert_eq!(pulse["table"], "Chart 1: The NEWS scoring system");
    let red = row(
        "nice-ng143-traffic-light",
        "body_temperature",
        "Red (high risk): age younger than 3 months with temperature of 38C or higher",
    )
    .await;
    assert_eq!(
        (red["category"].clone(), red["age_to_days"].clone()),
        (json!("fever_under_3_months"), json!(91))
    );
    let hypo = row(
        "ada-glycaemic-thresholds",
        "blood_glucose",
        "Level 2: glucose < 54 mg/dL",
    )
    .await;
    assert_eq!(hypo["value"], json!({"lt": 54.0}));
    let res = app
        .get("/v1/public-datasets/paediatric-vital-centiles", &person.token)
        .await;
    assert_eq!(res.body["records"][0]["p99"], 181.0);
    for name in NAMES {
        let res = app.get(&format!("/v1/public-datasets/{name}"), &person.token).await;
        assert!(
            res.body["notes"].as_str().unwrap().contains("REVIEW REQUIRED"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn an_unknown_dataset_is_a_404_problem() {
    let app = TestApp::spawn().await;
    let person = app.individual("ann@example.org").await;
    for name in [
        "no-such-dataset",
        "BLOOD-PRESSURE-CATEGORIES",
        "blood-pressure-categories.json",
        "blood%20pressure",
    ] {
        let res = app.get(&format!("/v1/public-datasets/{name}"), &person.token).await;
        res.problem(404, "not-found");
        assert_eq!(res.body["detail"], "no such dataset", "{name}");
    }
}

#[tokio::test]
async fn the_datasets_need_a_credential_and_are_read_only() {
    let app = TestApp::spawn().await;
    for path in ["/v1/public-datasets", "/v1/public-datasets/vital-sign-ranges"] {
        let res = app.call(Method::GET, path, None, None).await;
        res.problem(401, "unauthorized");
        assert!(res.header("www-authenticate").is_some(), "{path}");
        let res = app.call(Method::GET, path, Some("not-a-token"), None).await;
        res.problem(401, "unauthorized");
    }
    let company = app.company("owner@acme.example").await;
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for path in ["/v1/public-datasets", "/v1/public-datasets/vital-sign-ranges"] {
            let res = app
                .call(method.clone(), path, Some(&company.token), Some(json!({"records": []})))
                .await;
            res.problem(405, "method-not-allowed");
            assert_eq!(res.header("allow"), Some("GET"), "{method} {path}");
        }
    }
    let after = app.get("/v1/public-datasets/vital-sign-ranges", &company.token).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body["record_count"], 15);
}

#[tokio::test]
async fn every_kind_of_principal_may_read_them_and_apps_need_analytics_read() {
    let app = TestApp::spawn().await;
    let company = app.company("owner@acme.example").await;
    let rival = app.company("owner@rival.example").await;
    let key = app.api_key(&rival, "viewer").await;
    let reader = company_app_token(&app, &company, &["analytics.read"]).await;
    let profile_only = company_app_token(&app, &company, &["profile"]).await;
    let path = "/v1/public-datasets/blood-pressure-categories";
    let own = app.get(path, &company.token).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    // Public data: another tenant reads the very same document.
    for (who, token) in [("foreign company", &rival.token), ("API key", &key), ("app", &reader)] {
        let res = app.get(path, token).await;
        assert_eq!(res.status, StatusCode::OK, "{who}: {}", res.text);
        assert_eq!(res.body, own.body, "{who}");
        let res = app.get("/v1/public-datasets", token).await;
        assert_eq!(res.status, StatusCode::OK, "{who}: {}", res.text);
    }
    for p in ["/v1/public-datasets", path] {
        let res = app.get(p, &profile_only).await;
        res.problem(403, "insufficient-scope");
    }
}
