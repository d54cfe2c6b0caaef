//! Subjects: oneself, dependents, enrollees.

use reqwest::StatusCode;
use serde_json::json;
use vitalfarm_tests::TestApp;

#[tokio::test]
async fn individuals_have_self_and_add_dependents() {
    let app = TestApp::spawn().await;
    let ada = app.individual("mother@example.org").await;
    let subjects = format!("/v1/memberships/{}/subjects", ada.membership_id);
    let list = app.get(&subjects, &ada.token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["items"][0]["kind"], "self");

    let res = app
        .post(
            &subjects,
            Some(&ada.token),
            json!({"kind": "dependent", "display_name": "Baby Ada", "birth_date": "2026-09-01", "sex": "female"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let sid = res.str("/id");
    assert_eq!(res.body["birth_date"], "2026-09-01");
    assert_eq!(res.body["membership_id"], ada.membership_id.to_string());

    let got = app.get(&format!("/v1/subjects/{sid}"), &ada.token).await;
    assert_eq!(got.body["display_name"], "Baby Ada");
    let dependents = app.get(&format!("{subjects}?kind=dependent"), &ada.token).await;
    assert_eq!(dependents.body["items"].as_array().unwrap().len(), 1);

    // PATCH: absent stays, null clears.
    let res = app
        .patch(
            &format!("/v1/subjects/{sid}"),
            &ada.token,
            json!({"display_name": "Ada junior", "sex": null}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["display_name"], "Ada junior");
    assert!(res.body["sex"].is_null());
    assert_eq!(res.body["birth_date"], "2026-09-01");
    assert_eq!(res.body["kind"], "dependent");

    // An individual records dependents, not enrollees.
    app.post(
        &subjects,
        Some(&ada.token),
        json!({"kind": "enrollee", "display_name": "X"}),
    )
    .await
    .problem(409, "conflict");
}

#[tokio::test]
async fn companies_enroll_and_roles_apply() {
    let app = TestApp::spawn().await;
    let acme = app.company("care@acme.example").await;
    let subjects = format!("/v1/memberships/{}/subjects", acme.membership_id);
    let res = app
        .post(&subjects, Some(&acme.token), json!({"kind": "enrollee", "display_name": "Mr. Brown", "birth_date": "1941-03-02", "external_ref": "MRN-1001"}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let sid = res.str("/id");
    app.post(
        &subjects,
        Some(&acme.token),
        json!({"kind": "dependent", "display_name": "X"}),
    )
    .await
    .problem(409, "conflict");
    app.post(
        &subjects,
        Some(&acme.token),
        json!({"kind": "self", "display_name": "X"}),
    )
    .await
    .problem(422, "validation-failed");

    let viewer = app.staff(&acme, "viewer@acme.example", "viewer").await;
    assert_eq!(
        app.get(&format!("/v1/subjects/{sid}"), &viewer).await.status,
        StatusCode::OK
    );
    app.patch(&format!("/v1/subjects/{sid}"), &viewer, json!({"display_name": "Y"}))
        .await
        .problem(403, "forbidden");
    app.post(
        &subjects,
        Some(&viewer),
        json!({"kind": "enrollee", "display_name": "Z"}),
    )
    .await
    .problem(403, "forbidden");
}

#[tokio::test]
async fn subject_input_is_validated() {
    let app = TestApp::spawn().await;
    let ada = app.individual("strict@example.org").await;
    let subjects = format!("/v1/memberships/{}/subjects", ada.membership_id);
    let res = app
        .post(&subjects, Some(&ada.token), json!({"kind": "dependent", "display_name": " ", "birth_date": "2999-01-01", "external_ref": "x".repeat(201)}))
        .await;
    res.problem(422, "validation-failed");
    let mut fields = res.fields();
    fields.sort();
    assert_eq!(fields, ["birth_date", "display_name", "external_ref"]);
    let res = app
        .post(
            &subjects,
            Some(&ada.token),
            json!({"kind": "dependent", "display_name": "A", "birth_date": "2026-02-30"}),
        )
        .await;
    assert_eq!(res.fields(), ["birth_date"]);
    let res = app
        .post(
            &subjects,
            Some(&ada.token),
            json!({"kind": "dependent", "display_name": "A", "sex": "robot"}),
        )
        .await;
    assert_eq!(res.fields(), ["sex"]);
    app.get("/v1/subjects/not-a-uuid", &ada.token)
        .await
        .problem(400, "invalid-parameter");
    app.get(&format!("/v1/subjects/{}", uuid::Uuid::now_v7()), &ada.token)
        .await
        .problem(404, "not-found");
}
