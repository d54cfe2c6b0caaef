//! Health, readiness, metrics, the published spec and the reference.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use vitalfarm_tests::TestApp;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let res = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["status"], "ok");
    assert!(res.header("x-request-id").is_some());

    let res = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["checks"][0]["name"], "database");
    assert_eq!(res.body["checks"][0]["status"], "ok");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.running.state.db.clone().close().await.unwrap();
    let res = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.text);
    assert_eq!(res.body["status"], "unavailable");
    assert_eq!(res.body["checks"][0]["status"], "failed");
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = TestApp::spawn().await;
    let owner = app.company("metrics@example.org").await;
    app.get(&format!("/v1/memberships/{}", owner.membership_id), &owner.token)
        .await;
    app.call(Method::GET, "/nowhere", None, None).await;
    let res = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.header("content-type").unwrap().starts_with("text/plain"));
    assert!(
        res.text
            .contains(r#"vitalfarm_http_requests_total{method="GET",route="/v1/memberships/{mid}",status="200"} 1"#),
        "{}",
        res.text
    );
    assert!(res.text.contains(r#"route="unmatched",status="404""#));
    assert!(res.text.contains("vitalfarm_http_request_duration_seconds_bucket"));
    // The concrete id never becomes a label.
    assert!(!res.text.contains(&owner.membership_id.to_string()));
}

#[tokio::test]
async fn spec_is_served_and_equals_the_committed_file() {
    let app = TestApp::spawn().await;
    let res = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text, vitalfarm_openapi::COMMITTED_SPEC);
    assert!(res.body["openapi"].as_str().unwrap().starts_with("3.1"));
}

/// Every operation in the spec reaches a handler: none answers "no such
/// endpoint" or "method not allowed".
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::spawn().await;
    let spec: Value = serde_json::from_str(vitalfarm_openapi::COMMITTED_SPEC).unwrap();
    let nil = uuid::Uuid::nil().to_string();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{mid}", &nil)
            .replace("{uid}", &nil)
            .replace("{kid}", &nil)
            .replace("{fid}", &nil)
            .replace("{lid}", &nil)
            .replace("{sid}", &nil)
            .replace("{did}", &nil)
            .replace("{path}", "a/b.txt")
            .replace("{token}", "vf_share_x");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app.call(method.clone(), &concrete, None, None).await;
            let kind = res.body["type"].as_str().unwrap_or_default();
            assert!(
                !kind.ends_with("route-not-found") && !kind.ends_with("method-not-allowed"),
                "{method} {path} is documented but not routed: {}",
                res.text
            );
        }
    }
}

#[tokio::test]
async fn interactive_reference_works_offline() {
    let app = TestApp::spawn().await;
    let res = app.call(Method::GET, "/docs", None, None).await;
    assert_eq!(res.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.header("location"), Some("/docs/"));
    let res = app.call(Method::GET, "/docs/", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.text.contains("swagger-ui"), "{}", res.text);
    // Every script and stylesheet the page loads is served by us, not a CDN.
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js"] {
        let res = app.call(Method::GET, &format!("/docs/{asset}"), None, None).await;
        assert_eq!(res.status, StatusCode::OK, "{asset}");
    }
    assert!(
        !res.text.contains("https://"),
        "no external assets referenced in the page"
    );
    let init = app.call(Method::GET, "/docs/swagger-initializer.js", None, None).await;
    assert!(init.text.contains("/openapi.json"), "{}", init.text);
}

#[tokio::test]
async fn jwks_verifies_issued_tokens() {
    let app = TestApp::spawn().await;
    let user = app.individual("jwks@example.org").await;
    let res = app.call(Method::GET, "/.well-known/jwks.json", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    let key = &res.body["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["alg"], "EdDSA");
    let header = jsonwebtoken::decode_header(&user.token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let decoding = jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["vitalfarm-api"]);
    let data = jsonwebtoken::decode::<Value>(&user.token, &decoding, &validation).unwrap();
    assert_eq!(data.claims["sub"], user.user_id.to_string());
    let lifetime = data.claims["exp"].as_i64().unwrap() - data.claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 15 * 60, "access tokens live 15 minutes");
}
