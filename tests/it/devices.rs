//! Device models, fleet registration (one, bulk JSON, CSV), life cycle,
//! secrets, claiming and assignment.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_tests::{Member, TestApp};

async fn register(app: &TestApp, company: &Member, body: Value) -> vitalfarm_tests::Resp {
    app.post(
        &format!("/v1/memberships/{}/devices", company.membership_id),
        Some(&company.token),
        body,
    )
    .await
}

#[tokio::test]
async fn models_and_single_registration() {
    let app = TestApp::spawn().await;
    let acme = app.company("fleet@acme.example").await;
    let models = format!("/v1/memberships/{}/device-models", acme.membership_id);
    let res = app
        .post(
            &models,
            Some(&acme.token),
            json!({"name": "CardioCuff 2", "manufacturer": "Acme", "metrics": ["blood_pressure", "heart_rate"]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let model = res.str("/id");
    let res = app
        .post(
            &models,
            Some(&acme.token),
            json!({"name": "X", "manufacturer": "Acme", "metrics": ["mood"]}),
        )
        .await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["metrics[0]"]);
    assert_eq!(
        app.get(&models, &acme.token).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let res = register(&app, &acme, json!({"serial": "CC2-000001", "model_id": model})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let d = &res.body["devices"][0];
    assert_eq!(d["status"], "provisioned");
    assert!(d["secret"].as_str().unwrap().starts_with("vf_dev_"));
    assert_eq!(d["claim_code"].as_str().unwrap().len(), 14);
    let id = d["device_id"].as_str().unwrap().to_owned();
    let got = app.get(&format!("/v1/devices/{id}"), &acme.token).await;
    assert_eq!(got.body["serial"], "CC2-000001");
    assert_eq!(got.body["model_id"], model);
    assert!(!got.text.contains("vf_dev_"), "secrets are never shown again");

    let res = register(&app, &acme, json!({"serial": "CC2-000001"})).await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["serial"]);
    let res = register(&app, &acme, json!({"serial": "bad serial!"})).await;
    assert_eq!(res.fields(), ["serial"]);
    let res = register(
        &app,
        &acme,
        json!({"serial": "CC2-9", "model_id": uuid::Uuid::now_v7()}),
    )
    .await;
    assert_eq!(res.fields(), ["model_id"]);
}

#[tokio::test]
async fn ten_thousand_devices_in_one_request_all_or_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.company("bulk@acme.example").await;
    let devices: Vec<Value> = (0..10_000).map(|i| json!({"serial": format!("SN-{i:06}")})).collect();
    let res = register(&app, &acme, json!({"devices": devices})).await;
    assert_eq!(
        res.status,
        StatusCode::CREATED,
        "{}",
        &res.text[..res.text.len().min(500)]
    );
    let out = res.body["devices"].as_array().unwrap();
    assert_eq!(out.len(), 10_000);
    let ids: HashSet<&str> = out.iter().map(|d| d["device_id"].as_str().unwrap()).collect();
    let secrets: HashSet<&str> = out.iter().map(|d| d["secret"].as_str().unwrap()).collect();
    let codes: HashSet<&str> = out.iter().map(|d| d["claim_code"].as_str().unwrap()).collect();
    assert_eq!((ids.len(), secrets.len(), codes.len()), (10_000, 10_000, 10_000));

    // One bad row and one clash with the fleet: nothing of the batch lands,
    // and every bad row is named.
    let batch = json!({"devices": [{"serial": "NEW-1"}, {"serial": "SN-000042"}, {"serial": "no spaces"}, {"serial": "NEW-1"}]});
    let res = register(&app, &acme, batch).await;
    res.problem(422, "validation-failed");
    let mut fields = res.fields();
    fields.sort();
    assert_eq!(fields, ["devices[2].serial", "devices[3].serial"]);
    let res = register(
        &app,
        &acme,
        json!({"devices": [{"serial": "NEW-1"}, {"serial": "SN-000042"}]}),
    )
    .await;
    assert_eq!(res.fields(), ["devices[1].serial"]);
    let list = app
        .get(
            &format!("/v1/memberships/{}/devices?limit=1000", acme.membership_id),
            &acme.token,
        )
        .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1000);
    assert!(list.body["next_cursor"].is_string());
    let res = app
        .get(
            &format!("/v1/memberships/{}/devices?status=active", acme.membership_id),
            &acme.token,
        )
        .await;
    assert_eq!(
        res.body["items"].as_array().unwrap().len(),
        0,
        "nothing is active yet, and NEW-1 was not stored"
    );
}

#[tokio::test]
async fn csv_registration() {
    let app = TestApp::spawn().await;
    let acme = app.company("csv@acme.example").await;
    let url = app.url(&format!("/v1/memberships/{}/devices", acme.membership_id));
    let send = |body: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&acme.token)
            .header("content-type", "text/csv")
            .body(body)
            .send()
    };
    let res = vitalfarm_tests::Resp::from(send("serial,model_id\nT-1,\nT-2,\n T-3 ,\n").await.unwrap()).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let serials: Vec<&str> = res.body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["T-1", "T-2", "T-3"]);
    let res = vitalfarm_tests::Resp::from(send("serial,model_id\nT-9,not-a-uuid\nT 10,\n").await.unwrap()).await;
    res.problem(422, "validation-failed");
    let res = vitalfarm_tests::Resp::from(send("name\nx\n").await.unwrap()).await;
    assert_eq!(res.fields(), ["body"]);
    let res = app
        .client
        .post(&url)
        .bearer_auth(&acme.token)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    vitalfarm_tests::Resp::from(res)
        .await
        .problem(415, "unsupported-media-type");
}

#[tokio::test]
async fn life_cycle_and_secret_rotation() {
    let app = TestApp::spawn().await;
    let acme = app.company("life@acme.example").await;
    let res = register(&app, &acme, json!({"serial": "L-1"})).await;
    let id = res.str("/devices/0/device_id");
    let secret = res.str("/devices/0/secret");
    let url = format!("/v1/devices/{id}");
    for (to, ok) in [
        ("active", true),
        ("suspended", true),
        ("active", true),
        ("retired", true),
        ("active", false),
    ] {
        let res = app.patch(&url, &acme.token, json!({"status": to})).await;
        if ok {
            assert_eq!(res.status, StatusCode::OK, "-> {to}: {}", res.text);
            assert_eq!(res.body["status"], to);
        } else {
            res.problem(409, "conflict");
        }
    }
    app.patch(&url, &acme.token, json!({"status": "provisioned"}))
        .await
        .problem(409, "conflict");
    let rotated = app
        .post(&format!("{url}/rotate-secret"), Some(&acme.token), json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_ne!(rotated.str("/secret"), secret);

    let viewer = app.staff(&acme, "viewer@acme.example", "viewer").await;
    assert_eq!(app.get(&url, &viewer).await.status, StatusCode::OK);
    app.patch(&url, &viewer, json!({"status": "suspended"}))
        .await
        .problem(403, "forbidden");
    app.post(&format!("{url}/rotate-secret"), Some(&viewer), json!({}))
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn a_buyer_claims_once_and_the_maker_sees_no_subject() {
    let app = TestApp::spawn().await;
    let maker = app.company("maker@acme.example").await;
    let res = register(&app, &maker, json!({"serial": "BP-77"})).await;
    let id = res.str("/devices/0/device_id");
    let code = res.str("/devices/0/claim_code");
    let buyer = app.individual("buyer@example.org").await;
    let me_subjects = app
        .get(
            &format!("/v1/memberships/{}/subjects", buyer.membership_id),
            &buyer.token,
        )
        .await;
    let self_subject = me_subjects.str("/items/0/id");

    // Typed sloppily: lower case, spaces instead of dashes.
    let typed = code.to_lowercase().replace('-', " ");
    let res = app
        .post(
            "/v1/devices/claim",
            Some(&buyer.token),
            json!({"claim_code": typed, "subject_id": self_subject}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["status"], "active");
    assert_eq!(res.body["subject_id"], self_subject);
    assert_eq!(
        app.get(&format!("/v1/devices/{id}"), &buyer.token).await.body["subject_id"],
        self_subject
    );
    let mine = app
        .get(
            &format!("/v1/memberships/{}/devices", buyer.membership_id),
            &buyer.token,
        )
        .await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);

    let seen_by_maker = app.get(&format!("/v1/devices/{id}"), &maker.token).await;
    assert_eq!(seen_by_maker.body["claimed"], true);
    assert!(
        seen_by_maker.body["subject_id"].is_null(),
        "the maker does not learn the buyer's subject"
    );

    // Single use; another person cannot take it; the maker cannot reassign it.
    let other = app.individual("other@example.org").await;
    let other_subject = app
        .get(
            &format!("/v1/memberships/{}/subjects", other.membership_id),
            &other.token,
        )
        .await
        .str("/items/0/id");
    let res = app
        .post(
            "/v1/devices/claim",
            Some(&other.token),
            json!({"claim_code": code, "subject_id": other_subject}),
        )
        .await;
    res.problem(404, "not-found");
    let enrollee = app
        .post(
            &format!("/v1/memberships/{}/subjects", maker.membership_id),
            Some(&maker.token),
            json!({"kind": "enrollee", "display_name": "E"}),
        )
        .await
        .str("/id");
    app.post(
        &format!("/v1/devices/{id}/assign"),
        Some(&maker.token),
        json!({"subject_id": enrollee}),
    )
    .await
    .problem(409, "conflict");
    // Claiming into someone else's subject is refused as if it did not exist.
    let res = register(&app, &maker, json!({"serial": "BP-78"})).await;
    let code2 = res.str("/devices/0/claim_code");
    let res = app
        .post(
            "/v1/devices/claim",
            Some(&buyer.token),
            json!({"claim_code": code2, "subject_id": other_subject}),
        )
        .await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["subject_id"]);
}

#[tokio::test]
async fn expired_claim_codes_are_gone() {
    let app = TestApp::spawn_with(|c| c.claim_code_ttl_secs = 1).await;
    let maker = app.company("maker@acme.example").await;
    let code = register(&app, &maker, json!({"serial": "OLD-1"}))
        .await
        .str("/devices/0/claim_code");
    let buyer = app.individual("late@example.org").await;
    let subject = app
        .get(
            &format!("/v1/memberships/{}/subjects", buyer.membership_id),
            &buyer.token,
        )
        .await
        .str("/items/0/id");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = app
        .post(
            "/v1/devices/claim",
            Some(&buyer.token),
            json!({"claim_code": code, "subject_id": subject}),
        )
        .await;
    res.problem(410, "gone");
}

#[tokio::test]
async fn a_company_assigns_fleet_devices_to_its_enrollees() {
    let app = TestApp::spawn().await;
    let care = app.company("care@acme.example").await;
    let id = register(&app, &care, json!({"serial": "W-1"}))
        .await
        .str("/devices/0/device_id");
    let enrollee = app
        .post(
            &format!("/v1/memberships/{}/subjects", care.membership_id),
            Some(&care.token),
            json!({"kind": "enrollee", "display_name": "Mrs. Grey"}),
        )
        .await
        .str("/id");
    let res = app
        .post(
            &format!("/v1/devices/{id}/assign"),
            Some(&care.token),
            json!({"subject_id": enrollee}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["subject_id"], enrollee);
    assert_eq!(res.body["status"], "active");
    let by_subject = app
        .get(
            &format!("/v1/memberships/{}/devices?subject_id={enrollee}", care.membership_id),
            &care.token,
        )
        .await;
    assert_eq!(by_subject.body["items"].as_array().unwrap().len(), 1);

    let ada = app.individual("ada@example.org").await;
    let foreign = app
        .get(&format!("/v1/memberships/{}/subjects", ada.membership_id), &ada.token)
        .await
        .str("/items/0/id");
    let res = app
        .post(
            &format!("/v1/devices/{id}/assign"),
            Some(&care.token),
            json!({"subject_id": foreign}),
        )
        .await;
    assert_eq!(res.fields(), ["subject_id"]);
}

#[tokio::test]
async fn the_metric_catalog_is_public() {
    let app = TestApp::spawn().await;
    let res = app.call(reqwest::Method::GET, "/v1/metrics", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    let metrics = res.body.as_array().unwrap();
    let bp = metrics.iter().find(|m| m["code"] == "blood_pressure").unwrap();
    assert_eq!(bp["loinc"], "85354-9");
    assert_eq!(bp["components"][0]["code"], "systolic");
    let temp = metrics.iter().find(|m| m["code"] == "body_temperature").unwrap();
    assert_eq!(temp["unit"], "Cel");
    assert!(
        temp["accepted_units"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["unit"] == "[degF]")
    );
    for code in [
        "heart_rate",
        "spo2",
        "respiratory_rate",
        "blood_glucose",
        "body_weight",
        "steps",
        "ecg",
    ] {
        assert!(metrics.iter().any(|m| m["code"] == code), "{code}");
    }
}
