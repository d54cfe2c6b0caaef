//! Share links: download without signing in, until expiry or revocation,
//! every use recorded.

use reqwest::{Method, StatusCode};
use serde_json::json;
use vitalfarm_tests::TestApp;

#[tokio::test]
async fn a_share_link_downloads_without_login_until_revoked() {
    let app = TestApp::spawn().await;
    let ada = app.individual("sharer@example.org").await;
    let data = b"lab report".repeat(1000);
    app.upload(
        &ada.token,
        ada.farm_id,
        "labs/report.pdf",
        data.clone(),
        &[("content-type", "application/pdf")],
    )
    .await;
    let links = format!("/v1/farms/{}/share-links", ada.farm_id);
    let res = app
        .post(
            &links,
            Some(&ada.token),
            json!({"path": "/labs/report.pdf", "expires_in": 3600}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let url = res.str("/url");
    let id = res.str("/link/id");
    assert!(
        url.starts_with(&app.base) && url.contains("/v1/shared/vf_share_"),
        "{url}"
    );
    let token_path = &url[app.base.len()..];

    let anon = app.client.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::OK);
    assert_eq!(anon.headers()["content-type"], "application/pdf");
    assert_eq!(anon.bytes().await.unwrap().to_vec(), data);
    let part = app.client.get(&url).header("range", "bytes=0-2").send().await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"lab");

    // The link follows its file through a move.
    let res = app
        .post(
            &format!("/v1/farms/{}/move", ada.farm_id),
            Some(&ada.token),
            json!({"from": "/labs/report.pdf", "to": "/archive/report.pdf"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), StatusCode::OK);

    let list = app.get(&links, &ada.token).await;
    assert_eq!(list.body["items"][0]["use_count"], 3);
    assert_eq!(list.body["items"][0]["path"], "/archive/report.pdf");
    assert!(!list.text.contains("vf_share_"), "the token is never shown again");

    assert_eq!(
        app.delete(&format!("{links}/{id}"), &ada.token).await.status,
        StatusCode::NO_CONTENT
    );
    app.call(Method::GET, token_path, None, None).await.problem(410, "gone");

    let uses = app.get(&format!("{links}/{id}/uses"), &ada.token).await;
    let outcomes: Vec<&str> = uses.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["served", "served", "served", "revoked"]);
    assert_eq!(uses.body["items"][0]["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn expired_unknown_and_orphaned_links() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn().await;
    let ada = app.individual("expiry@example.org").await;
    app.upload(&ada.token, ada.farm_id, "a.txt", b"a".to_vec(), &[]).await;
    let links = format!("/v1/farms/{}/share-links", ada.farm_id);
    let url = app
        .post(&links, Some(&ada.token), json!({"path": "a.txt", "expires_in": 60}))
        .await
        .str("/url");
    let path = url[app.base.len()..].to_owned();
    // Let an hour pass for the link.
    let db = app.running.state.db.conn();
    let backend = db.get_database_backend();
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        match backend {
            sea_orm::DatabaseBackend::Postgres => "UPDATE share_links SET expires_at = $1::timestamptz",
            _ => "UPDATE share_links SET expires_at = ?",
        },
        [past.into()],
    ))
    .await
    .unwrap();
    let res = app.call(Method::GET, &path, None, None).await;
    res.problem(410, "gone");
    app.call(Method::GET, "/v1/shared/vf_share_unknown", None, None)
        .await
        .problem(404, "not-found");
    app.call(Method::GET, "/v1/shared/garbage", None, None)
        .await
        .problem(404, "not-found");

    // Deleting the file kills its links.
    let url = app
        .post(&links, Some(&ada.token), json!({"path": "a.txt", "expires_in": 600}))
        .await
        .str("/url");
    app.delete(&format!("/v1/farms/{}/files/a.txt", ada.farm_id), &ada.token)
        .await;
    app.call(Method::GET, &url[app.base.len()..], None, None)
        .await
        .problem(404, "not-found");
}

#[tokio::test]
async fn share_link_input_is_validated() {
    let app = TestApp::spawn().await;
    let ada = app.individual("valid@example.org").await;
    let links = format!("/v1/farms/{}/share-links", ada.farm_id);
    let res = app
        .post(&links, Some(&ada.token), json!({"path": "a/../b", "expires_in": 10}))
        .await;
    res.problem(422, "validation-failed");
    let mut fields = res.fields();
    fields.sort();
    assert_eq!(fields, ["expires_in", "path"]);
    app.post(
        &links,
        Some(&ada.token),
        json!({"path": "missing.txt", "expires_in": 600}),
    )
    .await
    .problem(404, "not-found");
    let res = app.post(&links, Some(&ada.token), json!({"path": "x"})).await;
    assert_eq!(res.fields(), ["expires_in"]);
}
