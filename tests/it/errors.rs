//! Bad input of every kind gets a specific 4xx problem naming what was
//! wrong, never a 500.

use reqwest::Method;
use serde_json::json;
use vitalfarm_tests::{PASSWORD, TestApp};

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> vitalfarm_tests::Resp {
    let mut req = app.client.request(method, app.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    vitalfarm_tests::Resp::from(req.send().await.unwrap()).await
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    for body in [
        "{",
        "{\"email\": }",
        "not json",
        "{\"email\": \"a@b.org\", \"password\": \"x\"} trailing",
        "",
    ] {
        let res = raw(&app, Method::POST, "/v1/auth/login", Some("application/json"), body).await;
        res.problem(400, "invalid-json");
    }
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415_naming_the_header() {
    let app = TestApp::spawn().await;
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let res = raw(
            &app,
            Method::POST,
            "/v1/auth/login",
            ct,
            r#"{"email":"a@b.org","password":"x"}"#,
        )
        .await;
        res.problem(415, "unsupported-media-type");
        assert_eq!(res.fields(), ["Content-Type"]);
    }
    // A charset parameter is fine.
    let res = raw(
        &app,
        Method::POST,
        "/v1/auth/login",
        Some("application/json; charset=utf-8"),
        r#"{"email":"a@b.org","password":"xxxxxxxxxxxx"}"#,
    )
    .await;
    res.problem(401, "invalid-credentials");
}

#[tokio::test]
async fn missing_fields_bad_enums_wrong_types_and_unknown_fields_name_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"password": PASSWORD, "display_name": "A", "membership": {"kind": "individual", "name": "A"}}),
            "email",
        ),
        (
            json!({"email": "a@b.org", "password": PASSWORD, "display_name": "A", "membership": {"kind": "bank", "name": "A"}}),
            "membership.kind",
        ),
        (
            json!({"email": "a@b.org", "password": PASSWORD, "display_name": "A", "membership": {"name": "A"}}),
            "membership.kind",
        ),
        (
            json!({"email": "a@b.org", "password": 1234567890, "display_name": "A", "membership": {"kind": "company", "name": "A"}}),
            "password",
        ),
        (
            json!({"email": "a@b.org", "password": PASSWORD, "display_name": "A", "membership": {"kind": "company", "name": "A"}, "admin": true}),
            "admin",
        ),
        (json!(["not", "an", "object"]), "body"),
    ];
    for (body, field) in cases {
        let res = app.post("/v1/auth/signup", None, body.clone()).await;
        res.problem(422, "validation-failed");
        assert_eq!(res.fields(), [field], "{body}");
    }
}

#[tokio::test]
async fn semantic_validation_reports_every_field() {
    let app = TestApp::spawn().await;
    let res = app
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "not-an-email", "password": "short", "display_name": "  ", "membership": {"kind": "company", "name": ""}}),
        )
        .await;
    res.problem(422, "validation-failed");
    let fields = res.fields();
    for f in ["email", "display_name", "membership.name"] {
        assert!(fields.contains(&f.to_owned()), "{f} in {fields:?}");
    }
}

#[tokio::test]
async fn oversize_bodies_are_413_and_nothing_is_stored() {
    let app = TestApp::spawn_with(|c| c.max_json_body_bytes = 4096).await;
    let body = json!({"email": "big@example.org", "password": PASSWORD, "display_name": "x".repeat(5000), "membership": {"kind": "company", "name": "B"}});
    let res = app.post("/v1/auth/signup", None, body).await;
    res.problem(413, "payload-too-large");
    // Also when the length is not declared up front (chunked).
    let stream = futures_like_chunks(vec![b"{\"email\": \"".to_vec(), vec![b'a'; 8000], b"\"}".to_vec()]);
    let res = raw(&app, Method::POST, "/v1/auth/signup", Some("application/json"), stream).await;
    res.problem(413, "payload-too-large");
    let res = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "big@example.org", "password": PASSWORD}),
        )
        .await;
    res.problem(401, "invalid-credentials");
}

/// A body sent in chunks, with no Content-Length up front.
fn futures_like_chunks(chunks: Vec<Vec<u8>>) -> reqwest::Body {
    let items: Vec<Result<Vec<u8>, std::io::Error>> = chunks.into_iter().map(Ok).collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(items))
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let app = TestApp::spawn().await;
    let res = app.call(Method::GET, "/v1/nothing-here", None, None).await;
    res.problem(404, "route-not-found");
    let res = app.call(Method::DELETE, "/v1/auth/login", None, None).await;
    res.problem(405, "method-not-allowed");
    assert_eq!(res.header("allow"), Some("POST"));
    let res = app
        .call(
            Method::PUT,
            "/v1/memberships/00000000-0000-0000-0000-000000000000/members",
            None,
            None,
        )
        .await;
    res.problem(405, "method-not-allowed");
    assert_eq!(res.header("allow"), Some("POST, GET"));
}

#[tokio::test]
async fn malformed_path_and_query_parameters_name_the_parameter() {
    let app = TestApp::spawn().await;
    let owner = app.company("params@example.org").await;
    let res = app.get("/v1/memberships/not-a-uuid", &owner.token).await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), ["mid"]);

    let members = format!("/v1/memberships/{}/members", owner.membership_id);
    for (query, field) in [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=%25%25", "cursor"),
    ] {
        let res = app.get(&format!("{members}?{query}"), &owner.token).await;
        res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), [field], "{query}");
    }
    let res = app
        .patch(&format!("{members}/xyz"), &owner.token, json!({"role": "admin"}))
        .await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), ["uid"]);
}

#[tokio::test]
async fn authentication_failures_are_401_with_www_authenticate() {
    let app = TestApp::spawn().await;
    let owner = app.company("authn@example.org").await;
    let path = format!("/v1/memberships/{}", owner.membership_id);
    let res = app.call(Method::GET, &path, None, None).await;
    res.problem(401, "unauthorized");
    assert!(res.header("www-authenticate").unwrap().starts_with("Bearer"));
    for bad in [
        "garbage",
        "vf_key_not-a-real-key",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ] {
        let res = app.get(&path, bad).await;
        res.problem(401, "unauthorized");
    }
    let res = app
        .client
        .get(app.url(&path))
        .header("authorization", format!("Basic {}", owner.token))
        .send()
        .await
        .unwrap();
    vitalfarm_tests::Resp::from(res).await.problem(401, "unauthorized");
}
