//! Company API keys: shown once, stored hashed, usable as Bearer, revocable.

use reqwest::StatusCode;
use serde_json::json;
use vitalfarm_tests::TestApp;

#[tokio::test]
async fn keys_are_shown_once_work_as_bearer_and_die_on_revocation() {
    let app = TestApp::spawn().await;
    let acme = app.company("keys@acme.example").await;
    let keys = format!("/v1/memberships/{}/api-keys", acme.membership_id);
    let res = app
        .post(
            &keys,
            Some(&acme.token),
            json!({"name": "pipeline", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let secret = res.str("/secret");
    let kid = res.id("/key/id");
    assert!(secret.starts_with("vf_key_"));
    assert_eq!(res.body["key"]["role"], "developer", "the default role");
    assert!(secret.starts_with(res.body["key"]["prefix"].as_str().unwrap()));
    assert!(res.body["key"]["expires_at"].is_string());

    let list = app.get(&keys, &acme.token).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert!(!list.text.contains(&secret), "listings never show the secret");

    let membership = format!("/v1/memberships/{}", acme.membership_id);
    let res = app.get(&membership, &secret).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let list = app.get(&keys, &acme.token).await;
    assert!(list.body["items"][0]["last_used_at"].is_string(), "use is recorded");

    let res = app.delete(&format!("{keys}/{kid}"), &acme.token).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    app.get(&membership, &secret).await.problem(401, "unauthorized");
    app.delete(&format!("{keys}/{kid}"), &acme.token)
        .await
        .problem(404, "not-found");
    assert_eq!(
        app.get(&keys, &acme.token).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn a_key_never_outranks_its_creator_and_never_mints_keys() {
    let app = TestApp::spawn().await;
    let acme = app.company("rank@acme.example").await;
    let keys = format!("/v1/memberships/{}/api-keys", acme.membership_id);
    app.post(&keys, Some(&acme.token), json!({"name": "root", "role": "owner"}))
        .await
        .problem(422, "validation-failed");

    let dev = app.staff(&acme, "dev@acme.example", "developer").await;
    app.post(&keys, Some(&dev), json!({"name": "too strong", "role": "admin"}))
        .await
        .problem(403, "forbidden");
    let res = app
        .post(&keys, Some(&dev), json!({"name": "ok", "role": "analyst"}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);

    let analyst = app.staff(&acme, "analyst@acme.example", "analyst").await;
    app.post(&keys, Some(&analyst), json!({"name": "no"}))
        .await
        .problem(403, "forbidden");
    app.get(&keys, &analyst).await.problem(403, "forbidden");

    let key = app.api_key(&acme, "admin").await;
    app.post(&keys, Some(&key), json!({"name": "child"}))
        .await
        .problem(403, "forbidden");
    let viewer_key = app.api_key(&acme, "viewer").await;
    app.get(&keys, &viewer_key).await.problem(403, "forbidden");
    assert_eq!(app.get(&keys, &key).await.status, StatusCode::OK);
    // Nor does anyone revoke a key stronger than themself.
    let listed = app.get(&keys, &acme.token).await;
    let admin_key_id = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("{keys}/{admin_key_id}"), &dev)
        .await
        .problem(403, "forbidden");
    assert_eq!(app.get(&keys, &key).await.status, StatusCode::OK, "still alive");
}

#[tokio::test]
async fn key_input_is_validated_and_individuals_have_no_keys() {
    let app = TestApp::spawn().await;
    let acme = app.company("valid@acme.example").await;
    let keys = format!("/v1/memberships/{}/api-keys", acme.membership_id);
    let res = app
        .post(&keys, Some(&acme.token), json!({"name": " ", "expires_in_days": 0}))
        .await;
    res.problem(422, "validation-failed");
    let mut fields = res.fields();
    fields.sort();
    assert_eq!(fields, ["expires_in_days", "name"]);
    let res = app
        .post(&keys, Some(&acme.token), json!({"name": "x", "role": "god"}))
        .await;
    assert_eq!(res.fields(), ["role"]);

    let ada = app.individual("ada@example.org").await;
    app.post(
        &format!("/v1/memberships/{}/api-keys", ada.membership_id),
        Some(&ada.token),
        json!({"name": "mine"}),
    )
    .await
    .problem(409, "conflict");
}
