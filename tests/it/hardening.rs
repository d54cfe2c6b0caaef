//! Abuse paths of issue 13 closed at the edge of the server: the broker
//! hooks, sign-in limits, client-supplied host headers, metric labels, the
//! MQTT front before authentication, and error responses actix produces
//! itself.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vitalfarm_tests::{PASSWORD, Resp, TestApp};

const HOOK_SECRET: &str = "broker-hook-secret-0123456789";

async fn hook(app: &TestApp, path: &str, secret: Option<&str>, body: Value) -> Resp {
    let mut req = app.client.post(app.url(path)).json(&body);
    if let Some(s) = secret {
        req = req.header("x-vitalfarm-hook-secret", s);
    }
    Resp::from(req.send().await.unwrap()).await
}

/// Item 2: the hooks were an open password oracle on the public port.
#[tokio::test]
async fn mqtt_hooks_need_the_shared_secret_and_stop_guessing_per_device() {
    // Without a configured secret there are no hooks.
    let bare = TestApp::spawn().await;
    for path in ["/v1/mqtt/auth/user", "/v1/mqtt/auth/superuser", "/v1/mqtt/auth/acl"] {
        hook(
            &bare,
            path,
            Some(HOOK_SECRET),
            json!({"username": "x", "password": "y"}),
        )
        .await
        .problem(404, "not-found");
    }

    let app = TestApp::spawn_with(|c| {
        c.mqtt_hook_secret = Some(HOOK_SECRET.into());
        c.mqtt_hook_max_failures = 3;
    })
    .await;
    let care = app.company("hooks-secret@acme.example").await;
    let d = app.monitored_device(&care, "HK-1").await;
    let other = app.monitored_device(&care, "HK-2").await;
    let login = |dev: &str, pass: &str| json!({"username": dev, "password": pass, "clientid": dev});

    // The broker's secret, by header or as the Basic password, lets it in.
    let ok = hook(&app, "/v1/mqtt/auth/user", Some(HOOK_SECRET), login(&d.id, &d.secret)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let basic = app
        .client
        .post(app.url("/v1/mqtt/auth/user"))
        .basic_auth("mosquitto", Some(HOOK_SECRET))
        .json(&login(&d.id, &d.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
    // Anyone else, even with the device's own credentials, is refused.
    for secret in [None, Some("broker-hook-secret-012345678X")] {
        hook(&app, "/v1/mqtt/auth/user", secret, login(&d.id, &d.secret))
            .await
            .problem(403, "forbidden");
        hook(
            &app,
            "/v1/mqtt/auth/acl",
            secret,
            json!({"username": d.id, "topic": "x", "acc": 2}),
        )
        .await
        .problem(403, "forbidden");
    }

    // Guessing: three failures, then no more checks for that device id,
    // not even of the right secret; another device is unaffected.
    for _ in 0..3 {
        hook(&app, "/v1/mqtt/auth/user", Some(HOOK_SECRET), login(&d.id, "guess"))
            .await
            .problem(403, "forbidden");
    }
    let res = hook(&app, "/v1/mqtt/auth/user", Some(HOOK_SECRET), login(&d.id, "guess")).await;
    res.problem(429, "rate-limited");
    assert!(res.header("retry-after").is_some());
    hook(&app, "/v1/mqtt/auth/user", Some(HOOK_SECRET), login(&d.id, &d.secret))
        .await
        .problem(429, "rate-limited");
    let ok = hook(
        &app,
        "/v1/mqtt/auth/user",
        Some(HOOK_SECRET),
        login(&other.id, &other.secret),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
}

async fn login_from(app: &TestApp, email: &str, password: &str, from: &str) -> StatusCode {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

/// Item 5: five wrong passwords from anyone locked the owner out.
#[tokio::test]
async fn wrong_passwords_from_elsewhere_do_not_lock_out_the_owner() {
    let app = TestApp::spawn_with(|c| {
        c.trust_forwarded_for = true;
        c.login_max_failures_account_wide = 9;
    })
    .await;
    let owner = app.individual("lockout@example.org").await;
    let home = "198.51.100.20";
    // The owner has signed in from home before: a known network.
    assert_eq!(login_from(&app, &owner.email, PASSWORD, home).await, StatusCode::OK);

    // An attacker fails five times from one address, then is stopped there.
    for _ in 0..5 {
        assert_eq!(
            login_from(&app, &owner.email, "not the password", "203.0.113.7").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_from(&app, &owner.email, "not the password", "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner's correct password from home still works.
    assert_eq!(login_from(&app, &owner.email, PASSWORD, home).await, StatusCode::OK);

    // Spread over more addresses, the account-wide back-off (9 failures
    // here) stops guesses from unknown networks, even a right one...
    for from in ["203.0.113.8", "203.0.113.9"] {
        for _ in 0..2 {
            assert_eq!(
                login_from(&app, &owner.email, "not the password", from).await,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    assert_eq!(
        login_from(&app, &owner.email, "not the password", "192.0.2.50").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&app, &owner.email, PASSWORD, "192.0.2.51").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...while the owner at home gets in.
    assert_eq!(login_from(&app, &owner.email, PASSWORD, home).await, StatusCode::OK);
}

/// Item 5: the limit was checked before counting, so 39 of 40 concurrent
/// guesses were verified against a limit of 5.
#[tokio::test]
async fn concurrent_wrong_passwords_are_verified_at_most_the_limit() {
    let app = TestApp::spawn().await;
    let owner = app.individual("raced@example.org").await;
    let guesses = (0..40).map(|i| {
        let req = app
            .client
            .post(app.url("/v1/auth/login"))
            .json(&json!({"email": owner.email, "password": format!("guess number {i}")}));
        async move { req.send().await.unwrap().status() }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let verified = answers.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = answers.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(verified + refused, 40, "{answers:?}");
    assert!(verified <= 5, "{verified} guesses were checked: {answers:?}");
}

/// Item 5: a whole IPv6 address was the key, so a /64 was unlimited; and
/// successful sign-ins used up the per-address budget.
#[tokio::test]
async fn an_ipv6_64_shares_one_budget_and_successes_cost_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.trust_forwarded_for = true;
        c.login_max_attempts_per_ip = 3;
    })
    .await;
    let owner = app.individual("v6@example.org").await;
    for _ in 0..5 {
        assert_eq!(
            login_from(&app, &owner.email, PASSWORD, "2001:db8:1:2::1").await,
            StatusCode::OK
        );
    }
    // Three failures from three addresses of one /64 (different accounts,
    // so only the network's budget is in play)...
    for (i, from) in ["2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:2:ffff::c"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            login_from(&app, &format!("nobody{i}@example.org"), "not the password", from).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // ...use it up for the whole /64, and only for it.
    assert_eq!(
        login_from(&app, "nobody9@example.org", "not the password", "2001:db8:1:2:abcd::1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&app, "nobody9@example.org", "not the password", "2001:db8:1:3::1").await,
        StatusCode::UNAUTHORIZED
    );
}

/// Item 5: common passwords were accepted.
#[tokio::test]
async fn common_passwords_are_refused_at_sign_up() {
    let app = TestApp::spawn().await;
    for weak in ["password123", "qwertyuiop1", "iloveyou2026"] {
        let res = app
            .post(
                "/v1/auth/signup",
                None,
                json!({"email": "weak@example.org", "password": weak, "display_name": "Weak",
                       "membership": {"kind": "individual", "name": "Weak"}}),
            )
            .await;
        res.problem(422, "validation-failed");
        assert_eq!(res.fields(), vec!["password".to_owned()], "{weak}: {}", res.text);
    }
}

/// Item 7: share links and OAuth metadata pointed wherever
/// `X-Forwarded-Host` said.
#[tokio::test]
async fn forwarded_host_headers_count_only_behind_a_trusted_proxy() {
    let app = TestApp::spawn().await;
    let own = format!("http://{}", app.running.addr);
    let meta = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let meta: Value = meta.json().await.unwrap();
    assert_eq!(meta["token_endpoint"], format!("{own}/oauth/token"), "{meta}");

    let owner = app.company("links-host@acme.example").await;
    let up = app
        .upload(&owner.token, owner.farm_id, "report.txt", b"hello".to_vec(), &[])
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let link = app
        .client
        .post(app.url(&format!("/v1/farms/{}/share-links", owner.farm_id)))
        .bearer_auth(&owner.token)
        .header("x-forwarded-host", "evil.example")
        .json(&json!({"path": "/report.txt", "expires_in": 3600}))
        .send()
        .await
        .unwrap();
    let link = Resp::from(link).await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.text);
    let url = link.str("/url");
    assert!(url.starts_with(&format!("{own}/v1/shared/")), "{url}");

    // Behind a proxy the operator trusts, its forwarded host is the address.
    let proxied = TestApp::spawn_with(|c| c.trust_forwarded_for = true).await;
    let meta: Value = proxied
        .client
        .get(proxied.url("/.well-known/oauth-authorization-server"))
        .header("x-forwarded-host", "api.example.org")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["token_endpoint"], "https://api.example.org/oauth/token", "{meta}");
}

/// Item 8: made-up methods became label values, so `/metrics` grew without
/// bound.
#[tokio::test]
async fn random_methods_and_paths_do_not_grow_metrics() {
    let app = TestApp::spawn().await;
    let metrics = || async {
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // Every status the loop can produce, once, so the baseline has their
    // series.
    for method in ["GET", "BREW"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        app.client.request(m, app.url("/nothing/here")).send().await.unwrap();
    }
    let before = metrics().await.len();
    for i in 0..200u32 {
        let method = format!("M{:08X}", i.wrapping_mul(2_654_435_761));
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let res = app
            .client
            .request(m, app.url(&format!("/random/{i}/{}", i * 7919)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    let after = metrics().await;
    assert!(!after.contains("M0000"), "a made-up method became a label");
    assert!(!after.contains("/random/"), "a raw path became a label");
    assert!(
        after.len() < before + 4096,
        "/metrics grew from {before} to {} bytes",
        after.len()
    );
    assert!(after.contains(r#"method="other""#), "{after}");
}

/// Item 11: before authentication the front buffered a CONNECT of up to
/// 4 MiB.
#[tokio::test]
async fn an_oversized_first_mqtt_packet_closes_the_connection_at_once() {
    let app = TestApp::spawn_mqtt().await;
    if app.external_mqtt() {
        // The external broker is not vitalfarm's front; nothing to test.
        return;
    }
    let (host, port) = app.mqtt_endpoint();
    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await.unwrap();
    // CONNECT announcing 4 MiB - 1 of remaining length (variable-length
    // integer 0xFF 0xFF 0xFF 0x01), then the start of it.
    let mut packet = vec![0x10, 0xFF, 0xFF, 0xFF, 0x01];
    packet.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60]);
    packet.extend(std::iter::repeat_n(b'x', 1000));
    stream.write_all(&packet).await.unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the front kept the connection open");
}

/// Bad input: MQTT payloads that are not JSON were acknowledged and
/// vanished without a trace.
#[tokio::test]
async fn mqtt_payloads_that_are_not_json_are_counted_and_recorded_on_the_device() {
    use rumqttc::{AsyncClient, Event, Packet, QoS};
    let app = TestApp::spawn_mqtt().await;
    let care = app.company("poison@acme.example").await;
    let d = app.monitored_device(&care, "PZ-1").await;
    let (client, mut eventloop) = AsyncClient::new(app.device_mqtt_options(&d.id, &d.secret), 10);
    let topic = app.topic(&format!("devices/{}/readings", d.id));
    client
        .publish(topic, QoS::AtLeastOnce, false, b"temperature=38.2".to_vec())
        .await
        .unwrap();
    // Acknowledged all the same (see `handle_uplink` for why).
    loop {
        match tokio::time::timeout(Duration::from_secs(20), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("no PUBACK: {other:?}"),
        }
    }
    let _ = client.disconnect().await;
    let mut device = Value::Null;
    for _ in 0..100 {
        device = app.get(&format!("/v1/devices/{}", d.id), &care.token).await.body;
        if device["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = device["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("not JSON"), "{device}");
    assert!(!error.contains("38.2"), "the payload stays out of the record");
    assert!(device["last_error_at"].is_string(), "{device}");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vitalfarm_mqtt_rejected_payloads_total 1"),
        "{metrics}"
    );
}

/// Sends `raw` as is and returns the status line's code, the headers and
/// the body.
async fn raw_exchange(app: &TestApp, raw: &[u8]) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(app.running.addr).await.unwrap();
    // The server may answer and close before reading everything.
    let _ = stream.write_all(raw).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn assert_problem(what: &str, status: u16, want: u16, head: &str, body: &str) {
    assert_eq!(status, want, "{what}: {head}\n{body}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{what}: {head}"
    );
    let problem: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body:?}"));
    assert_eq!(problem["status"], want, "{what}: {problem}");
}

/// Bad input: actix's own rejections came back with an empty or plain-text
/// body.
#[tokio::test]
async fn protocol_rejections_are_problem_documents() {
    let app = TestApp::spawn().await;
    let addr = app.running.addr;

    // A Content-Type that is not ASCII.
    let body = br#"{"email":"a@example.org","password":"x"}"#;
    let mut raw = format!(
        "POST /v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: application/jéson\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    let (status, head, text) = raw_exchange(&app, &raw).await;
    assert!(status == 400 || status == 415, "{head}\n{text}");
    assert_problem("non-ASCII Content-Type", status, status, &head, &text);

    // A body over the limit of a byte route (the OAuth token endpoint).
    let big = vec![b'a'; 300 * 1024];
    let mut raw = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        big.len()
    )
    .into_bytes();
    raw.extend_from_slice(&big);
    let (status, head, text) = raw_exchange(&app, &raw).await;
    assert_problem("oversized byte body", status, 413, &head, &text);
    assert!(text.contains("262144"), "the limit is named: {text}");
}

/// Bad input: rejections that actix's HTTP/1 parser makes before any route
/// or middleware runs (a malformed `Content-Length`, a URI the `http` crate
/// cannot hold, a head beyond the parser's buffer) came back with an empty
/// body: actix-http writes those itself. Every connection now passes
/// through `api::parser_errors::ProblemHeads`, which gives them their
/// problem document.
#[tokio::test]
async fn parser_rejections_are_problem_documents() {
    let app = TestApp::spawn().await;
    let addr = app.running.addr;
    let long_uri = format!("/v1/{}", "a".repeat(70 * 1024));
    let big_header = "b".repeat(300 * 1024);
    let cases = [
        (
            "URI too long",
            format!("GET {long_uri} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
            400,
        ),
        (
            "header fields too large",
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Big: {big_header}\r\nConnection: close\r\n\r\n"),
            431,
        ),
        (
            "bad Content-Length",
            format!("POST /v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Length: ten\r\nConnection: close\r\n\r\n"),
            400,
        ),
    ];
    for (what, raw, want) in cases {
        let (status, head, body) = raw_exchange(&app, raw.as_bytes()).await;
        assert_problem(what, status, want, &head, &body);
    }
}
