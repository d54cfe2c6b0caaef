//! Tenant isolation: another membership's user or API key reaches nothing of
//! this membership through any operation of the spec, learns nothing of its
//! existence (404, like an id that does not exist), and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vitalfarm_tests::TestApp;

#[tokio::test]
async fn foreign_principals_get_404_on_every_membership_operation() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let staff_id = {
        app.individual("staff@acme.example").await;
        let res = app
            .post(
                &format!("/v1/memberships/{}/members", acme.membership_id),
                Some(&acme.token),
                json!({"email": "staff@acme.example", "role": "analyst"}),
            )
            .await;
        res.id("/member/user_id")
    };
    let key_res = app
        .post(
            &format!("/v1/memberships/{}/api-keys", acme.membership_id),
            Some(&acme.token),
            json!({"name": "acme key", "role": "admin"}),
        )
        .await;
    let acme_key = key_res.str("/secret");
    let acme_key_id = key_res.id("/key/id");

    // Something in Acme's farm, and a share link to it.
    let up = app
        .upload(
            &acme.token,
            acme.farm_id,
            "fleet/roster.csv",
            b"device,subject\n".to_vec(),
            &[],
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED);
    let acme_etag = up.str("/etag");
    let link = app
        .post(
            &format!("/v1/farms/{}/share-links", acme.farm_id),
            Some(&acme.token),
            json!({"path": "/fleet/roster.csv", "expires_in": 3600}),
        )
        .await;
    let link_id = link.str("/link/id");

    let enrollee = app
        .post(
            &format!("/v1/memberships/{}/subjects", acme.membership_id),
            Some(&acme.token),
            json!({"kind": "enrollee", "display_name": "Mr. Brown"}),
        )
        .await
        .str("/id");

    let device = app
        .post(
            &format!("/v1/memberships/{}/devices", acme.membership_id),
            Some(&acme.token),
            json!({"serial": "ACME-1"}),
        )
        .await
        .str("/devices/0/device_id");
    let command = app
        .post(
            &format!("/v1/devices/{device}/commands"),
            Some(&acme.token),
            json!({"name": "MEASURE"}),
        )
        .await
        .str("/id");

    let export = app
        .post(
            &format!("/v1/memberships/{}/exports", acme.membership_id),
            Some(&acme.token),
            json!({}),
        )
        .await
        .str("/id");

    let rival = app.company("owner@rival.example").await;
    let rival_key = app.api_key(&rival, "admin").await;
    let person = app.individual("person@example.org").await;

    let before_members = app
        .get(&format!("/v1/memberships/{}/members", acme.membership_id), &acme.token)
        .await
        .body;
    let spec: Value = serde_json::from_str(vitalfarm_openapi::COMMITTED_SPEC).unwrap();
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !["{mid}", "{fid}", "{sid}", "{did}"].iter().any(|p| path.contains(p)) {
            continue;
        }
        let concrete = path
            .replace("{mid}", &acme.membership_id.to_string())
            .replace("{fid}", &acme.farm_id.to_string())
            .replace("{path}", "fleet/roster.csv")
            .replace("{lid}", &link_id)
            .replace("{sid}", &enrollee)
            .replace("{did}", &device)
            .replace("{cid}", &command)
            .replace("{uid}", &staff_id.to_string())
            .replace("{kid}", &acme_key_id.to_string())
            .replace("{eid}", &export);
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = op
                .pointer("/requestBody/content/application~1json/schema")
                .map(|_| example_body(&op["requestBody"]));
            // Required query parameters get their documented example, so the
            // request reaches the authorisation check.
            let query: Vec<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "query" && p["required"] == true)
                        .map(|p| {
                            format!(
                                "{}={}",
                                p["name"].as_str().unwrap(),
                                p["example"].as_str().unwrap_or("x")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let target = if query.is_empty() {
                concrete.clone()
            } else {
                format!("{concrete}?{}", query.join("&"))
            };
            for (who, token) in [
                ("foreign user", &rival.token),
                ("foreign API key", &rival_key),
                ("individual", &person.token),
            ] {
                let res = if path.ends_with("{path}") && method == Method::PUT {
                    app.upload(token, acme.farm_id, "fleet/roster.csv", b"overwritten".to_vec(), &[])
                        .await
                } else {
                    app.call(method.clone(), &target, Some(token), body.clone()).await
                };
                assert_eq!(
                    res.status,
                    StatusCode::NOT_FOUND,
                    "{who}: {method} {path}: {}",
                    res.text
                );
                assert!(!res.text.contains(&acme.email), "{who}: {method} {path} leaks");
                assert!(
                    !res.text.contains("device,subject"),
                    "{who}: {method} {path} leaks file content"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 38 * 3, "walked {checked} operation/principal pairs");

    // Nothing changed: same members, the key still works.
    let after_members = app
        .get(&format!("/v1/memberships/{}/members", acme.membership_id), &acme.token)
        .await
        .body;
    assert_eq!(before_members, after_members);
    assert_eq!(
        app.get(&format!("/v1/memberships/{}", acme.membership_id), &acme_key)
            .await
            .status,
        StatusCode::OK
    );
    let (status, headers, body) = app.download(&acme.token, acme.farm_id, "fleet/roster.csv", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["etag"], acme_etag.as_str());
    assert_eq!(body, b"device,subject\n");
    let links = app
        .get(&format!("/v1/farms/{}/share-links", acme.farm_id), &acme.token)
        .await;
    assert!(
        links.body["items"][0]["revoked_at"].is_null(),
        "the link was not revoked by a stranger"
    );
    let subject = app.get(&format!("/v1/subjects/{enrollee}"), &acme.token).await;
    assert_eq!(
        subject.body["display_name"], "Mr. Brown",
        "the subject was not changed by a stranger"
    );
    let dev = app.get(&format!("/v1/devices/{device}"), &acme.token).await;
    assert_eq!(
        dev.body["status"], "provisioned",
        "the device was not changed by a stranger"
    );
    let commands = app.get(&format!("/v1/devices/{device}/commands"), &acme.token).await;
    assert_eq!(
        commands.body["items"].as_array().map(Vec::len),
        Some(1),
        "no stranger's command was stored"
    );
}

/// A plausible body for an operation: its example when the spec has one.
fn example_body(request_body: &Value) -> Value {
    let content = &request_body["content"]["application/json"];
    if let Some(example) = content.get("example") {
        return example.clone();
    }
    let schema_ref = content["schema"]["$ref"].as_str().unwrap_or_default();
    let spec: Value = serde_json::from_str(vitalfarm_openapi::COMMITTED_SPEC).unwrap();
    let pointer = schema_ref.trim_start_matches('#');
    spec.pointer(pointer)
        .and_then(|s| s.get("example"))
        .cloned()
        .unwrap_or_else(|| json!({}))
}

#[tokio::test]
async fn an_api_key_reaches_only_its_own_membership() {
    let app = TestApp::spawn().await;
    let acme = app.company("a@acme.example").await;
    let rival = app.company("r@rival.example").await;
    let acme_key = app.api_key(&acme, "admin").await;
    let res = app
        .get(&format!("/v1/memberships/{}", rival.membership_id), &acme_key)
        .await;
    res.problem(404, "not-found");
    // Unknown and foreign look the same.
    let unknown = uuid::Uuid::now_v7();
    let res2 = app.get(&format!("/v1/memberships/{unknown}"), &acme_key).await;
    res2.problem(404, "not-found");
    assert_eq!(res.body["detail"], res2.body["detail"]);
}
