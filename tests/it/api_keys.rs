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

async fn user_id(app: &TestApp, token: &str) -> String {
    app.get("/v1/me", token).await.str("/user/id")
}

/// Issue 13 item 4: a removed admin's key stops working with the removal,
/// and the key list says who answers for each key.
#[tokio::test]
async fn a_removed_members_keys_are_revoked_unless_an_owner_hands_them_on() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@keys-leave.example").await;
    let keys = format!("/v1/memberships/{}/api-keys", acme.membership_id);
    let members = format!("/v1/memberships/{}/members", acme.membership_id);
    let owner_id = user_id(&app, &acme.token).await;
    let admin = app.staff(&acme, "admin@keys-leave.example", "admin").await;
    let admin_id = user_id(&app, &admin).await;
    let res = app
        .post(
            &keys,
            Some(&admin),
            json!({"name": "admin's pipeline", "role": "admin"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let key = res.str("/secret");
    assert_eq!(res.body["key"]["created_by"]["user_id"], admin_id.as_str());
    assert_eq!(res.body["key"]["created_by"]["email"], "admin@keys-leave.example");
    let list = app.get(&keys, &acme.token).await;
    assert_eq!(
        list.body["items"][0]["created_by"]["user_id"],
        admin_id.as_str(),
        "{}",
        list.text
    );
    assert_eq!(list.body["items"][0]["created_by"]["email"], "admin@keys-leave.example");
    assert_eq!(app.get(&members, &key).await.status, StatusCode::OK);

    let res = app.delete(&format!("{members}/{admin_id}"), &acme.token).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    assert_eq!(app.get(&members, &key).await.status, StatusCode::UNAUTHORIZED);
    let list = app.get(&keys, &acme.token).await;
    assert_eq!(list.body["items"], json!([]), "{}", list.text);

    // Handed on by an owner in the same call, a key lives on and says who
    // answers for it now.
    let analyst = app.staff(&acme, "analyst@keys-leave.example", "analyst").await;
    let analyst_id = user_id(&app, &analyst).await;
    let dev = app.staff(&acme, "dev@keys-leave.example", "admin").await;
    let dev_id = user_id(&app, &dev).await;
    let res = app
        .post(
            &keys,
            Some(&dev),
            json!({"name": "dev's pipeline", "role": "developer"}),
        )
        .await;
    let key = res.str("/secret");
    // Not to someone whose role is below the key's, not to a stranger,
    // and not on an admin's say.
    let res = app
        .delete(
            &format!("{members}/{dev_id}?reassign_keys_to={analyst_id}"),
            &acme.token,
        )
        .await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), ["reassign_keys_to"]);
    let stranger = app.individual("stranger@keys-leave.example").await;
    let stranger_id = user_id(&app, &stranger.token).await;
    let res = app
        .delete(
            &format!("{members}/{dev_id}?reassign_keys_to={stranger_id}"),
            &acme.token,
        )
        .await;
    assert_eq!(res.fields(), ["reassign_keys_to"], "{}", res.text);
    let other_admin = app.staff(&acme, "admin2@keys-leave.example", "admin").await;
    let res = app
        .delete(&format!("{members}/{dev_id}?reassign_keys_to={owner_id}"), &other_admin)
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text);
    let res = app
        .delete(&format!("{members}/{dev_id}?reassign_keys_to=nope"), &acme.token)
        .await;
    res.problem(400, "invalid-parameter");
    assert_eq!(
        app.get(&members, &key).await.status,
        StatusCode::OK,
        "refusals changed nothing"
    );

    let res = app
        .delete(&format!("{members}/{dev_id}?reassign_keys_to={owner_id}"), &acme.token)
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    assert_eq!(app.get(&members, &key).await.status, StatusCode::OK);
    let list = app.get(&keys, &acme.token).await;
    assert_eq!(
        list.body["items"][0]["created_by"]["user_id"],
        owner_id.as_str(),
        "{}",
        list.text
    );
}
