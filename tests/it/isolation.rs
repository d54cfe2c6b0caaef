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
    let staff_id = app.staff_member(&acme, "staff@acme.example", "analyst").await.user_id;
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

    let acme_app = app
        .post(
            &format!("/v1/memberships/{}/apps", acme.membership_id),
            Some(&acme.token),
            json!({"name": "Acme app", "client_type": "confidential", "redirect_uris": ["https://acme.example/cb"], "scopes": ["profile"]}),
        )
        .await
        .str("/app/id");
    let export = app
        .post(
            &format!("/v1/memberships/{}/exports", acme.membership_id),
            Some(&acme.token),
            json!({}),
        )
        .await
        .str("/id");

    let webhook = app
        .post(
            &format!("/v1/memberships/{}/webhooks", acme.membership_id),
            Some(&acme.token),
            json!({"url": "https://hooks.acme.example/in", "events": ["alert.opened"]}),
        )
        .await
        .str("/webhook/id");
    let acme_rule = app
        .post(
            &format!("/v1/memberships/{}/alert-rules", acme.membership_id),
            Some(&acme.token),
            json!({"name": "Quiet enrollees", "condition": {"kind": "no_data", "for": "P1D"}, "severity": "info"}),
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
        if !["{mid}", "{fid}", "{sid}", "{did}", "{aid}"]
            .iter()
            .any(|p| path.contains(p))
        {
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
            .replace("{app_id}", &acme_app)
            .replace("{metric}", "heart_rate")
            .replace("{eid}", &export)
            .replace("{wid}", &webhook)
            .replace("{rid}", &acme_rule)
            .replace("{aid}", &uuid::Uuid::now_v7().to_string());
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = op
                .pointer("/requestBody/content/application~1json/schema")
                .map(|_| example_body(&op["requestBody"]));
            let query = required_query(op);
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
        app.get(
            &format!("/v1/memberships/{}/apps/{acme_app}", acme.membership_id),
            &acme.token
        )
        .await
        .status,
        StatusCode::OK,
        "the app was not deleted by a stranger"
    );
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

/// The operation's required query parameters with their documented
/// examples, so a request reaches the authorisation check.
fn required_query(op: &Value) -> Vec<String> {
    op["parameters"]
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
        .unwrap_or_default()
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

/// Sends `method target` with a raw `Authorization` header value.
async fn call_as(
    app: &TestApp,
    method: Method,
    target: &str,
    authorization: &str,
    body: Option<Value>,
) -> vitalfarm_tests::Resp {
    let mut req = app
        .client
        .request(method, app.url(target))
        .header("authorization", authorization);
    if let Some(body) = body {
        req = req.json(&body);
    }
    vitalfarm_tests::Resp::from(req.send().await.unwrap()).await
}

/// An individual's data after its consents ended: the company whose
/// consent was revoked, the company whose consent expired (with its API
/// key), a stranger, another company's device, another company's app and
/// an app Ann approved without the needed scope reach nothing of it
/// through any operation of the spec, and change nothing.
#[tokio::test]
async fn ended_consents_foreign_devices_and_apps_open_nothing_of_an_individual() {
    use chrono::{Duration, Utc};
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let infant = app
        .post(
            &format!("/v1/memberships/{}/subjects", ann.membership_id),
            Some(&ann.token),
            json!({"kind": "dependent", "display_name": "Baby Ada"}),
        )
        .await
        .str("/id");
    let monitor = app.claimed_device(&ann, &infant, "INF-9").await;
    let ann_rule = app
        .post(
            &format!("/v1/memberships/{}/alert-rules", ann.membership_id),
            Some(&ann.token),
            json!({"name": "Fast heart", "metric": "heart_rate",
                "condition": {"kind": "threshold", "op": "gt", "value": 120}, "severity": "warning"}),
        )
        .await
        .str("/id");
    let at = (Utc::now() - Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    app.ingest(&monitor, json!([{"metric": "heart_rate", "ts": at, "value": 131.5}]))
        .await;
    let ann_alert = app
        .get(&format!("/v1/memberships/{}/alerts", ann.membership_id), &ann.token)
        .await
        .str("/items/0/id");
    let up = app
        .upload(&ann.token, ann.farm_id, "ecg/a.csv", b"lead-1,0.42\n".to_vec(), &[])
        .await;
    assert_eq!(up.status, StatusCode::CREATED);

    // Acme's consent came from a request and was revoked.
    let acme = app.company("owner@acme.example").await;
    let acme_key = app.api_key(&acme, "admin").await;
    let request = app
        .post(
            "/v1/consent-requests",
            Some(&acme.token),
            json!({"individual_email": "ann@example.org", "metrics": ["heart_rate"], "farm_paths": ["/ecg/"],
                "purpose": "care", "access": "read_export", "duration": "P30D"}),
        )
        .await
        .str("/id");
    let revoked = app
        .post(
            &format!("/v1/consent-requests/{request}/approve"),
            Some(&ann.token),
            json!({"subject_ids": [infant]}),
        )
        .await
        .str("/id");
    // Beta's consent was granted directly and has expired.
    let beta = app.company("owner@beta.example").await;
    let beta_key = app.api_key(&beta, "admin").await;
    let expires = Utc::now() + Duration::milliseconds(1500);
    let expired = app
        .post(
            "/v1/consents",
            Some(&ann.token),
            json!({"grantee_membership_id": beta.membership_id, "subject_ids": [infant], "metrics": ["heart_rate"],
                "farm_paths": ["/ecg/"], "purpose": "service", "access": "read",
                "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)}),
        )
        .await
        .str("/id");
    // Both worked while they lasted.
    let hr = format!("/v1/subjects/{infant}/readings?metric=heart_rate");
    assert_eq!(app.get(&hr, &acme.token).await.status, StatusCode::OK);
    assert_eq!(app.get(&hr, &beta_key).await.status, StatusCode::OK);
    let res = app
        .call(
            Method::DELETE,
            &format!("/v1/consents/{revoked}"),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let stranger = app.individual("stranger@example.org").await;
    let rival = app.company("owner@rival.example").await;
    let rival_device = app.monitored_device(&rival, "RIVAL-1").await;
    // Apps: Ann's own approval of an app that asked only for her profile,
    // and a foreign company's backend with every data scope.
    let developer = app.company("dev@apps.example").await;
    let profile_only = super::oauth::user_app_token(&app, &developer, &ann, &["profile"]).await;
    let foreign_app = super::oauth::company_app_token(
        &app,
        &rival,
        &[
            "readings.read",
            "files.read",
            "devices.read",
            "consents.read",
            "profile",
        ],
    )
    .await;
    tokio::time::sleep((expires - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(100))
        .await;

    let spec: Value = serde_json::from_str(vitalfarm_openapi::COMMITTED_SPEC).unwrap();
    let principals = [
        (
            "revoked company user",
            format!("Bearer {}", acme.token),
            expired.clone(),
        ),
        ("revoked company key", format!("Bearer {acme_key}"), expired.clone()),
        (
            "expired company user",
            format!("Bearer {}", beta.token),
            revoked.clone(),
        ),
        ("expired company key", format!("Bearer {beta_key}"), revoked.clone()),
        ("stranger", format!("Bearer {}", stranger.token), revoked.clone()),
        ("foreign device", rival_device.credential(), revoked.clone()),
        (
            "Ann's app without the scope",
            format!("Bearer {profile_only}"),
            revoked.clone(),
        ),
        (
            "foreign company's app",
            format!("Bearer {foreign_app}"),
            revoked.clone(),
        ),
    ];
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !["{mid}", "{fid}", "{sid}", "{did}", "{id}", "{aid}"]
            .iter()
            .any(|p| path.contains(p))
        {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = op
                .pointer("/requestBody/content/application~1json/schema")
                .map(|_| example_body(&op["requestBody"]));
            let query = required_query(op);
            for (who, authorization, consent) in &principals {
                // The profile scope does show Ann's own membership to the
                // app she approved for it: that is the scope's purpose.
                if who.starts_with("Ann's app") && path == "/v1/memberships/{mid}" {
                    continue;
                }
                // A party to a consent may read that consent's own record,
                // so each walks the consent it was never a party to.
                let id = if path.starts_with("/v1/consent-requests/") {
                    &request
                } else {
                    consent
                };
                let concrete = path
                    .replace("{mid}", &ann.membership_id.to_string())
                    .replace("{fid}", &ann.farm_id.to_string())
                    .replace("{path}", "ecg/a.csv")
                    .replace("{sid}", &infant)
                    .replace("{did}", &monitor.id)
                    .replace("{id}", id)
                    .replace("{cid}", &uuid::Uuid::now_v7().to_string())
                    .replace("{lid}", &uuid::Uuid::now_v7().to_string())
                    .replace("{uid}", &ann.user_id.to_string())
                    .replace("{kid}", &uuid::Uuid::now_v7().to_string())
                    .replace("{app_id}", &uuid::Uuid::now_v7().to_string())
                    .replace("{metric}", "heart_rate")
                    .replace("{eid}", &uuid::Uuid::now_v7().to_string())
                    .replace("{wid}", &uuid::Uuid::now_v7().to_string())
                    .replace("{rid}", &ann_rule)
                    .replace("{aid}", &ann_alert);
                let target = if query.is_empty() {
                    concrete
                } else {
                    format!("{concrete}?{}", query.join("&"))
                };
                let res = if path.ends_with("{path}") && method == Method::PUT {
                    let res = app
                        .client
                        .put(app.url(&target))
                        .header("authorization", authorization)
                        .body(b"overwritten".to_vec())
                        .send()
                        .await
                        .unwrap();
                    vitalfarm_tests::Resp::from(res).await
                } else {
                    call_as(&app, method.clone(), &target, authorization, body.clone()).await
                };
                assert!(
                    [401, 403, 404].contains(&res.status.as_u16()),
                    "{who}: {method} {path}: {} {}",
                    res.status,
                    res.text
                );
                for secret in ["Baby Ada", "131.5", "lead-1", "ann@example.org"] {
                    assert!(
                        !res.text.contains(secret),
                        "{who}: {method} {path} leaks {secret}: {}",
                        res.text
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 40 * principals.len(),
        "walked {checked} operation/principal pairs"
    );

    // Nothing changed.
    let own = app.get(&hr, &ann.token).await;
    assert_eq!(own.body["items"].as_array().map(Vec::len), Some(1));
    let (status, _, body) = app.download(&ann.token, ann.farm_id, "ecg/a.csv", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"lead-1,0.42\n");
    let subject = app.get(&format!("/v1/subjects/{infant}"), &ann.token).await;
    assert_eq!(subject.body["display_name"], "Baby Ada");
    let c = app.get(&format!("/v1/consents/{revoked}"), &ann.token).await;
    assert_eq!(c.body["status"], "revoked");
    let c = app.get(&format!("/v1/consents/{expired}"), &ann.token).await;
    assert_eq!(c.body["status"], "expired");
    let dev = app.get(&format!("/v1/devices/{}", monitor.id), &ann.token).await;
    assert_eq!(dev.status, StatusCode::OK, "{}", dev.text);
    assert_eq!(dev.body["subject_id"], infant.as_str());
    let alerts = app
        .get(&format!("/v1/memberships/{}/alerts", ann.membership_id), &ann.token)
        .await;
    assert_eq!(alerts.body["items"][0]["status"], "open", "{}", alerts.text);
    let rule = app
        .get(
            &format!("/v1/memberships/{}/alert-rules/{ann_rule}", ann.membership_id),
            &ann.token,
        )
        .await;
    assert_eq!(rule.status, StatusCode::OK, "{}", rule.text);
}
