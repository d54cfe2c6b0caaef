//! MQTT ingest: devices log in with their id and secret, publish readings
//! at QoS 1, and get each acknowledged only after it is stored; a device
//! stays inside its own topics.

use std::time::Duration;

use reqwest::StatusCode;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, Packet, QoS};
use serde_json::{Value, json};
use vitalfarm_tests::TestApp;

/// Polls until the broker answers the CONNECT; returns its code.
async fn connack(eventloop: &mut EventLoop) -> Result<ConnectReturnCode, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, eventloop.poll())
            .await
            .map_err(|_| "no CONNACK".to_owned())?;
        match next {
            Ok(Event::Incoming(Packet::ConnAck(a))) => return Ok(a.code),
            Ok(_) => {}
            Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return Ok(code),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn reading(minute: u32, bpm: u32) -> Value {
    json!({"metric": "heart_rate", "ts": format!("2026-11-20T{:02}:{:02}:00Z", minute / 60, minute % 60), "value": bpm})
}

/// Publishes `n` one-reading messages at QoS 1 and waits for every PUBACK.
async fn publish_all(app: &TestApp, device: &str, secret: &str, n: u32) {
    let (client, mut eventloop) = AsyncClient::new(app.device_mqtt_options(device, secret), 256);
    let topic = app.topic(&format!("devices/{device}/readings"));
    let publisher = tokio::spawn(async move {
        for i in 0..n {
            let body = json!({"readings": [reading(i, 60 + i % 40)]});
            client
                .publish(topic.clone(), QoS::AtLeastOnce, false, body.to_string())
                .await
                .unwrap();
        }
        client
    });
    let mut acked = 0;
    while acked < n {
        match tokio::time::timeout(Duration::from_secs(20), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("MQTT error after {acked} acks: {e}"),
            Err(_) => panic!("stalled after {acked} of {n} acks"),
        }
    }
    let client = publisher.await.unwrap();
    let _ = client.disconnect().await;
}

async fn count(app: &TestApp, token: &str, subject: &str) -> usize {
    let res = app
        .get(
            &format!("/v1/subjects/{subject}/readings?metric=heart_rate&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z&limit=1000"),
            token,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.body["items"].as_array().unwrap().len()
}

/// Stored readings appear within a few seconds (an external broker hands
/// them on asynchronously).
async fn eventually(app: &TestApp, token: &str, subject: &str, want: usize) {
    for _ in 0..100 {
        if count(app, token, subject).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(app, token, subject).await, want);
}

#[tokio::test]
async fn acknowledged_readings_are_stored_once() {
    let app = TestApp::spawn_mqtt().await;
    let care = app.company("mqtt@acme.example").await;
    let d = app.monitored_device(&care, "MQ-1").await;
    let (device, secret, subject) = (d.id, d.secret, d.subject);
    publish_all(&app, &device, &secret, 300).await;
    if app.external_mqtt() {
        eventually(&app, &care.token, &subject, 300).await;
    } else {
        // The embedded front acknowledges only after the commit.
        assert_eq!(count(&app, &care.token, &subject).await, 300);
    }
    // The device sends everything again (it lost its session): duplicates.
    publish_all(&app, &device, &secret, 300).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    eventually(&app, &care.token, &subject, 300).await;
    let seen = app.get(&format!("/v1/devices/{device}"), &care.token).await;
    assert!(seen.body["last_seen_at"].is_string(), "{}", seen.text);
}

#[tokio::test]
async fn the_embedded_broker_checks_the_device_secret_and_status() {
    let app = TestApp::spawn_mqtt().await;
    if app.external_mqtt() {
        // The external broker authenticates through the HTTP hooks, tested
        // in `mqtt_hooks_answer_go_auth_and_emqx`.
        return;
    }
    let care = app.company("gate@acme.example").await;
    let d = app.monitored_device(&care, "MQ-2").await;
    let (device, secret) = (d.id, d.secret);

    let (_c, mut el) = AsyncClient::new(app.device_mqtt_options(&device, "wrong-secret"), 10);
    assert_eq!(connack(&mut el).await, Ok(ConnectReturnCode::BadUserNamePassword));

    let mut other_id = app.device_mqtt_options(&device, &secret);
    other_id.set_client_id("someone-else".into());
    let (_c, mut el) = AsyncClient::new(other_id, 10);
    assert_eq!(connack(&mut el).await, Ok(ConnectReturnCode::BadClientId));

    let (_c, mut el) = AsyncClient::new(app.device_mqtt_options(&device, &secret), 10);
    assert_eq!(connack(&mut el).await, Ok(ConnectReturnCode::Success));
    drop(el);

    let res = app
        .patch(
            &format!("/v1/devices/{device}"),
            &care.token,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let (_c, mut el) = AsyncClient::new(app.device_mqtt_options(&device, &secret), 10);
    assert_eq!(connack(&mut el).await, Ok(ConnectReturnCode::NotAuthorized));
}

#[tokio::test]
async fn a_device_cannot_publish_or_listen_under_another_device() {
    let app = TestApp::spawn_mqtt().await;
    if app.external_mqtt() {
        // Topic rights at an external broker are the ACL hook's answer.
        return;
    }
    let care = app.company("acl@acme.example").await;
    let d = app.monitored_device(&care, "MQ-3").await;
    let (mine, secret) = (d.id, d.secret);
    let d = app.monitored_device(&care, "MQ-4").await;
    let (theirs, their_subject) = (d.id, d.subject);

    // Subscribing to another device's commands is refused.
    let (client, mut el) = AsyncClient::new(app.device_mqtt_options(&mine, &secret), 10);
    assert_eq!(connack(&mut el).await, Ok(ConnectReturnCode::Success));
    client
        .subscribe(app.topic(&format!("devices/{theirs}/commands")), QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .subscribe(app.topic(&format!("devices/{mine}/commands")), QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut codes = Vec::new();
    while codes.len() < 2 {
        if let Ok(Event::Incoming(Packet::SubAck(a))) =
            tokio::time::timeout(Duration::from_secs(5), el.poll()).await.unwrap()
        {
            codes.push(a.return_codes[0]);
        }
    }
    assert_eq!(codes[0], rumqttc::SubscribeReasonCode::Failure);
    assert!(matches!(codes[1], rumqttc::SubscribeReasonCode::Success(_)));

    // Publishing readings under another device's topic ends the connection
    // and stores nothing.
    client
        .publish(
            app.topic(&format!("devices/{theirs}/readings")),
            QoS::AtLeastOnce,
            false,
            json!({"readings": [reading(1, 70)]}).to_string(),
        )
        .await
        .unwrap();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), el.poll()).await {
            Ok(Err(_)) => break true,
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break false,
            Ok(Ok(_)) => {}
            Err(_) => break false,
        }
    };
    assert!(ended, "the broker must drop a device that publishes outside its topics");
    assert_eq!(count(&app, &care.token, &their_subject).await, 0);
}

#[tokio::test]
async fn mqtt_hooks_answer_go_auth_and_emqx() {
    // The hooks only answer; MQTT itself stays off in this test.
    let app = TestApp::spawn_with(|c| {
        c.mqtt_url = Some("mqtt://vitalfarm:link%20secret@127.0.0.1:1883".into());
        c.mqtt_hook_secret = Some("the broker's own hook secret".into());
    })
    .await;
    let care = app.company("hooks@acme.example").await;
    let d = app.monitored_device(&care, "MQ-5").await;
    let (device, secret) = (d.id, d.secret);
    let other = app.monitored_device(&care, "MQ-6").await.id;
    let form = |path: &str, fields: Vec<(&str, String)>| {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = app
            .client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-vitalfarm-hook-secret", "the broker's own hook secret")
            .body(body);
        async move { req.send().await.unwrap().status() }
    };
    let json_hook = |path: &str, body: Value| {
        let req = app
            .client
            .post(app.url(path))
            .header("x-vitalfarm-hook-secret", "the broker's own hook secret")
            .json(&body);
        async move {
            let res = vitalfarm_tests::Resp::from(req.send().await.unwrap()).await;
            (res.status, res.body)
        }
    };

    // go-auth (form parameters, status answers).
    let login = |user: &str, pass: &str| {
        vec![
            ("username", user.to_owned()),
            ("password", pass.to_owned()),
            ("clientid", user.to_owned()),
        ]
    };
    assert_eq!(
        form("/v1/mqtt/auth/user", login(&device, &secret)).await,
        StatusCode::OK
    );
    assert_eq!(
        form("/v1/mqtt/auth/user", login(&device, "guess")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        form("/v1/mqtt/auth/user", login("not-a-device", "x")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        form("/v1/mqtt/auth/user", login("vitalfarm", "link secret")).await,
        StatusCode::OK
    );
    assert_eq!(
        form("/v1/mqtt/auth/superuser", vec![("username", "vitalfarm".into())]).await,
        StatusCode::OK
    );
    assert_eq!(
        form("/v1/mqtt/auth/superuser", vec![("username", device.clone())]).await,
        StatusCode::FORBIDDEN
    );
    let acl = |topic: String, acc: &str| {
        vec![
            ("username", device.clone()),
            ("clientid", device.clone()),
            ("topic", topic),
            ("acc", acc.to_owned()),
        ]
    };
    assert_eq!(
        form(
            "/v1/mqtt/auth/acl",
            acl(format!("vitalfarm/v1/devices/{device}/readings"), "2")
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        form(
            "/v1/mqtt/auth/acl",
            acl(format!("vitalfarm/v1/devices/{other}/readings"), "2")
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        form(
            "/v1/mqtt/auth/acl",
            acl(format!("vitalfarm/v1/devices/{device}/commands"), "4")
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        form(
            "/v1/mqtt/auth/acl",
            acl(format!("vitalfarm/v1/devices/{device}/commands"), "2")
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        form("/v1/mqtt/auth/acl", acl("vitalfarm/v1/devices/+/readings".into(), "4")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        form("/v1/mqtt/auth/acl", acl("#".into(), "1")).await,
        StatusCode::FORBIDDEN
    );

    // EMQX (JSON, `result` in the body).
    let (status, body) = json_hook(
        "/v1/mqtt/auth/user",
        json!({"username": device, "password": secret, "clientid": device}),
    )
    .await;
    assert_eq!((status, body["result"].as_str()), (StatusCode::OK, Some("allow")));
    assert_eq!(body["is_superuser"], false);
    let (status, body) = json_hook("/v1/mqtt/auth/user", json!({"username": device, "password": "nope"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["type"].as_str().map(|t| t.ends_with("forbidden")),
        Some(true),
        "{body}"
    );
    let (status, _) = json_hook(
        "/v1/mqtt/auth/acl",
        json!({"username": device, "topic": format!("vitalfarm/v1/devices/{device}/commands/{other}/result"), "action": "publish"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = json_hook("/v1/mqtt/auth/acl", json!({"username": device, "topic": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "acc");

    // A suspended device is refused at login.
    app.patch(
        &format!("/v1/devices/{device}"),
        &care.token,
        json!({"status": "suspended"}),
    )
    .await;
    assert_eq!(
        form("/v1/mqtt/auth/user", login(&device, &secret)).await,
        StatusCode::FORBIDDEN
    );
}

/// `application/x-www-form-urlencoded` escaping of one value.
fn encode(v: &str) -> String {
    v.chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' | '.' | '*' => c.to_string(),
            ' ' => "+".to_owned(),
            other => other.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
        })
        .collect()
}
