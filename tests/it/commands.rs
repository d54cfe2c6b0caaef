//! Device commands: sending, reading back and listing over HTTP; who may
//! command which device; expiry; and the service side (device results,
//! the expiry sweep, re-dispatch) driven in-process, since these servers
//! run with MQTT off.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use vitalfarm_tests::{Member, Resp, TestApp};

/// Registers a device in `company`'s fleet; returns its id and claim code.
async fn device(app: &TestApp, company: &Member, serial: &str) -> (Uuid, String) {
    let res = app
        .post(
            &format!("/v1/memberships/{}/devices", company.membership_id),
            Some(&company.token),
            json!({"serial": serial}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    (res.id("/devices/0/device_id"), res.str("/devices/0/claim_code"))
}

async fn command(app: &TestApp, token: &str, device: Uuid, body: Value) -> Resp {
    app.post(&format!("/v1/devices/{device}/commands"), Some(token), body)
        .await
}

/// Sends `MEASURE` with `ttl_secs` and returns the command's id.
async fn measure(app: &TestApp, token: &str, device: Uuid, ttl_secs: u64) -> Uuid {
    let res = command(app, token, device, json!({"name": "MEASURE", "ttl_secs": ttl_secs})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.id("/id")
}

async fn read(app: &TestApp, token: &str, device: Uuid, cmd: Uuid) -> Resp {
    app.get(&format!("/v1/devices/{device}/commands/{cmd}"), token).await
}

fn ids(res: &Resp) -> Vec<String> {
    res.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", res.text))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_command_is_queued_read_back_and_listed_newest_first() {
    let app = TestApp::spawn().await;
    let acme = app.company("ops@acme.example").await;
    let (dev, _) = device(&app, &acme, "CMD-1").await;

    let res = command(
        &app,
        &acme.token,
        dev,
        json!({"name": "MEASURE", "params": {"metric": "blood_pressure", "repeat": 2}, "ttl_secs": 600}),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let id = res.id("/id");
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/devices/{dev}/commands/{id}").as_str())
    );
    assert_eq!(res.body["status"], "queued", "MQTT is off: nothing sent it");
    assert_eq!(res.body["device_id"], dev.to_string());
    assert_eq!(res.body["params"], json!({"metric": "blood_pressure", "repeat": 2}));
    assert!(res.body["sent_at"].is_null() && res.body["result"].is_null());
    let created = chrono::DateTime::parse_from_rfc3339(&res.str("/created_at")).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(&res.str("/expires_at")).unwrap();
    assert_eq!((expires - created).num_seconds(), 600);

    let got = read(&app, &acme.token, dev, id).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.body, res.body);

    // Defaults: no params is `{}`, no ttl is five minutes.
    let res = command(&app, &acme.token, dev, json!({"name": "REBOOT"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["params"], json!({}));
    let created = chrono::DateTime::parse_from_rfc3339(&res.str("/created_at")).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(&res.str("/expires_at")).unwrap();
    assert_eq!((expires - created).num_seconds(), 300);
    let second = res.str("/id");
    let third = measure(&app, &acme.token, dev, 60).await.to_string();

    let url = format!("/v1/devices/{dev}/commands");
    let page = app.get(&format!("{url}?limit=2"), &acme.token).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(ids(&page), [third, second]);
    let cursor = page.str("/next_cursor");
    let rest = app.get(&format!("{url}?limit=2&cursor={cursor}"), &acme.token).await;
    assert_eq!(ids(&rest), [id.to_string()]);
    assert!(rest.body["next_cursor"].is_null());

    // Every role reads; only those who manage devices command.
    let viewer = app.staff(&acme, "viewer@acme.example", "viewer").await;
    assert_eq!(read(&app, &viewer, dev, id).await.status, StatusCode::OK);
    assert_eq!(app.get(&url, &viewer).await.status, StatusCode::OK);
    command(&app, &viewer, dev, json!({"name": "MEASURE"}))
        .await
        .problem(403, "forbidden");
    let key = app.api_key(&acme, "developer").await;
    measure(&app, &key, dev, 60).await;

    // Unknown commands, and commands of another device, are 404.
    read(&app, &acme.token, dev, Uuid::now_v7())
        .await
        .problem(404, "not-found");
    let (other, _) = device(&app, &acme, "CMD-2").await;
    read(&app, &acme.token, other, id).await.problem(404, "not-found");
    let res = app
        .get(&format!("/v1/devices/{dev}/commands/not-a-uuid"), &acme.token)
        .await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), ["cid"]);
}

#[tokio::test]
async fn bad_commands_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let acme = app.company("ops@acme.example").await;
    let (dev, _) = device(&app, &acme, "BAD-1").await;
    for (body, field) in [
        (json!({"name": "MEASURE", "priority": 1}), "priority"),
        (json!({"name": "measure"}), "name"),
        (json!({"name": "1MEASURE"}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "X".repeat(33)}), "name"),
        (json!({"params": {}}), "name"),
        (json!({"name": "MEASURE", "ttl_secs": 0}), "ttl_secs"),
        (json!({"name": "MEASURE", "ttl_secs": 86_401}), "ttl_secs"),
        (json!({"name": "MEASURE", "ttl_secs": -5}), "ttl_secs"),
        (json!({"name": "MEASURE", "params": [1, 2]}), "params"),
        (json!({"name": "MEASURE", "params": "now"}), "params"),
        (
            json!({"name": "MEASURE", "params": {"blob": "x".repeat(17_000)}}),
            "params",
        ),
    ] {
        let res = command(&app, &acme.token, dev, body.clone()).await;
        res.problem(422, "validation-failed");
        assert_eq!(res.fields(), [field], "{body}: {}", res.text);
    }
    // Every invalid field at once.
    let res = command(&app, &acme.token, dev, json!({"name": "bad", "ttl_secs": 0})).await;
    assert_eq!(res.fields(), ["name", "ttl_secs"]);
    let list = app.get(&format!("/v1/devices/{dev}/commands"), &acme.token).await;
    assert!(ids(&list).is_empty(), "nothing was stored");
    // The largest allowed ttl is fine.
    measure(&app, &acme.token, dev, 86_400).await;
}

#[tokio::test]
async fn suspended_and_retired_devices_take_no_commands() {
    let app = TestApp::spawn().await;
    let acme = app.company("ops@acme.example").await;
    let (dev, _) = device(&app, &acme, "S-1").await;
    let url = format!("/v1/devices/{dev}");
    assert_eq!(
        app.patch(&url, &acme.token, json!({"status": "suspended"}))
            .await
            .status,
        StatusCode::OK
    );
    let res = command(&app, &acme.token, dev, json!({"name": "MEASURE"})).await;
    res.problem(409, "conflict");
    assert!(res.str("/detail").contains("suspended"));
    // Resumed, it takes them again.
    app.patch(&url, &acme.token, json!({"status": "active"})).await;
    measure(&app, &acme.token, dev, 60).await;
    app.patch(&url, &acme.token, json!({"status": "retired"})).await;
    command(&app, &acme.token, dev, json!({"name": "MEASURE"}))
        .await
        .problem(409, "conflict");
}

#[tokio::test]
async fn strangers_neither_command_nor_see_a_device_s_commands() {
    let app = TestApp::spawn().await;
    let acme = app.company("ops@acme.example").await;
    let (dev, _) = device(&app, &acme, "PRIV-1").await;
    let cmd = measure(&app, &acme.token, dev, 600).await;
    let rival = app.company("ops@rival.example").await;
    let rival_key = app.api_key(&rival, "admin").await;
    let person = app.individual("someone@example.org").await;
    let list_url = format!("/v1/devices/{dev}/commands");
    for token in [&rival.token, &rival_key, &person.token] {
        command(&app, token, dev, json!({"name": "REBOOT"}))
            .await
            .problem(404, "not-found");
        read(&app, token, dev, cmd).await.problem(404, "not-found");
        app.get(&list_url, token).await.problem(404, "not-found");
    }
    // Exactly as for a device that does not exist.
    let unknown = command(&app, &rival.token, Uuid::now_v7(), json!({"name": "REBOOT"})).await;
    let foreign = command(&app, &rival.token, dev, json!({"name": "REBOOT"})).await;
    assert_eq!(unknown.body["detail"], foreign.body["detail"]);

    let list = app.get(&list_url, &acme.token).await;
    assert_eq!(ids(&list), [cmd.to_string()], "no stranger's command was stored");
    let got = read(&app, &acme.token, dev, cmd).await;
    assert_eq!(got.body["status"], "queued");
    let dev = app.get(&format!("/v1/devices/{dev}"), &acme.token).await;
    assert_eq!(dev.body["status"], "provisioned", "the device is unchanged");
}

#[tokio::test]
async fn the_buyer_commands_a_claimed_device_and_keeps_the_results_to_itself() {
    let app = TestApp::spawn().await;
    let maker = app.company("maker@acme.example").await;
    let (dev, code) = device(&app, &maker, "BP-1").await;
    let before_claim = measure(&app, &maker.token, dev, 600).await;

    let buyer = app.individual("buyer@example.org").await;
    let subject = app
        .get(
            &format!("/v1/memberships/{}/subjects", buyer.membership_id),
            &buyer.token,
        )
        .await
        .str("/items/0/id");
    let res = app
        .post(
            "/v1/devices/claim",
            Some(&buyer.token),
            json!({"claim_code": code, "subject_id": subject}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);

    let mine = measure(&app, &buyer.token, dev, 600).await;
    let got = read(&app, &buyer.token, dev, mine).await;
    assert_eq!(got.body["status"], "queued");
    app.command_result(
        dev,
        mine,
        br#"{"status": "acked", "result": {"systolic": 121, "diastolic": 79}}"#,
    )
    .await;
    let got = read(&app, &buyer.token, dev, mine).await;
    assert_eq!(got.body["status"], "acked");
    assert_eq!(got.body["result"]["systolic"], 121);

    // The maker may no longer command it, nor read the buyer's commands;
    // the buyer does not see the maker's.
    let res = command(&app, &maker.token, dev, json!({"name": "MEASURE"})).await;
    res.problem(409, "conflict");
    read(&app, &maker.token, dev, mine).await.problem(404, "not-found");
    let maker_list = app.get(&format!("/v1/devices/{dev}/commands"), &maker.token).await;
    assert_eq!(ids(&maker_list), [before_claim.to_string()]);
    let buyer_list = app.get(&format!("/v1/devices/{dev}/commands"), &buyer.token).await;
    assert_eq!(ids(&buyer_list), [mine.to_string()]);
    read(&app, &buyer.token, dev, before_claim)
        .await
        .problem(404, "not-found");
}

#[tokio::test]
async fn a_company_commands_a_device_assigned_to_its_enrollee() {
    let app = TestApp::spawn().await;
    let care = app.company("care@acme.example").await;
    let (dev, _) = device(&app, &care, "W-1").await;
    let enrollee = app
        .post(
            &format!("/v1/memberships/{}/subjects", care.membership_id),
            Some(&care.token),
            json!({"kind": "enrollee", "display_name": "Mrs. Grey"}),
        )
        .await
        .str("/id");
    let res = app
        .post(
            &format!("/v1/devices/{dev}/assign"),
            Some(&care.token),
            json!({"subject_id": enrollee}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    measure(&app, &care.token, dev, 60).await;
}

#[tokio::test]
async fn an_unanswered_command_expires_on_read_and_in_the_sweep() {
    let app = TestApp::spawn().await;
    let acme = app.company("ops@acme.example").await;
    let (dev, _) = device(&app, &acme, "EXP-1").await;
    let short = measure(&app, &acme.token, dev, 1).await;
    let sent = measure(&app, &acme.token, dev, 1).await;
    assert!(app.mark_command_sent(sent).await);
    let long = measure(&app, &acme.token, dev, 600).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // No sweep has run: reads still say `expired`.
    for cmd in [short, sent] {
        let got = read(&app, &acme.token, dev, cmd).await;
        assert_eq!(got.body["status"], "expired", "{}", got.text);
    }
    let list = app.get(&format!("/v1/devices/{dev}/commands"), &acme.token).await;
    let statuses: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["queued", "expired", "expired"]);

    // An answer after expiry is dropped.
    app.command_result(dev, short, br#"{"status": "acked"}"#).await;
    let got = read(&app, &acme.token, dev, short).await;
    assert_eq!(got.body["status"], "expired");
    assert!(got.body["completed_at"].is_null() && got.body["result"].is_null());

    // The sweep writes it down, once.
    assert_eq!(app.expire_commands().await, 2);
    assert_eq!(app.expire_commands().await, 0);
    assert_eq!(read(&app, &acme.token, dev, sent).await.body["status"], "expired");
    assert_eq!(read(&app, &acme.token, dev, long).await.body["status"], "queued");
    // Expired commands are not re-dispatched; with no broker link nothing
    // is, and the queued one stays queued.
    assert_eq!(app.dispatch_pending_commands().await, 0);
    assert_eq!(read(&app, &acme.token, dev, long).await.body["status"], "queued");
}

#[tokio::test]
async fn device_results_are_recorded_once_and_junk_is_ignored() {
    let app = TestApp::spawn().await;
    let acme = app.company("ops@acme.example").await;
    let (dev, _) = device(&app, &acme, "RES-1").await;
    let (other_dev, _) = device(&app, &acme, "RES-2").await;
    let cmd = measure(&app, &acme.token, dev, 600).await;
    let status = || async { read(&app, &acme.token, dev, cmd).await.body };

    // Junk from a device changes nothing and never reaches the log.
    let marker = "MARKER-7731";
    let junk: Vec<Vec<u8>> = vec![
        format!("not json {marker}").into_bytes(),
        format!(r#"{{"status": "done", "result": {{"v": "{marker}"}}}}"#).into_bytes(),
        format!(r#"{{"status": "acked", "result": ["{marker}"]}}"#).into_bytes(),
        format!(r#"["{marker}"]"#).into_bytes(),
        vec![0xff, 0xfe, 0x00],
        Vec::new(),
        vec![b' '; 70 * 1024],
    ];
    for payload in &junk {
        app.command_result(dev, cmd, payload).await;
    }
    // A result for a command this device does not have, or of another
    // device.
    app.command_result(dev, Uuid::now_v7(), br#"{"status": "acked"}"#).await;
    app.command_result(other_dev, cmd, br#"{"status": "acked"}"#).await;
    let before = status().await;
    assert_eq!(before["status"], "queued");
    assert!(before["completed_at"].is_null());

    // Sent, then failed by the device; a late `acked` and a repeat change
    // nothing.
    assert!(app.mark_command_sent(cmd).await);
    assert!(!app.mark_command_sent(cmd).await, "only a queued command is sent");
    let sent = status().await;
    assert_eq!(sent["status"], "sent");
    assert!(sent["sent_at"].is_string());
    let error = format!("cuff not attached {marker}");
    let long_error = format!("{error}{}", "!".repeat(2000));
    app.command_result(
        dev,
        cmd,
        json!({"status": "failed", "error": long_error, "firmware": "1.2"})
            .to_string()
            .as_bytes(),
    )
    .await;
    let failed = status().await;
    assert_eq!(failed["status"], "failed");
    assert!(failed["completed_at"].is_string());
    let stored_error = failed["error"].as_str().unwrap();
    assert!(stored_error.starts_with(&error));
    assert_eq!(stored_error.chars().count(), 1000, "long errors are cut");
    assert!(failed["result"].is_null());
    app.command_result(dev, cmd, br#"{"status": "acked", "result": {"ok": true}}"#)
        .await;
    app.command_result(dev, cmd, br#"{"status": "failed", "error": "again"}"#)
        .await;
    assert_eq!(status().await, failed, "a final state never changes");
    assert!(!app.mark_command_sent(cmd).await);
    assert_eq!(app.expire_commands().await, 0);

    // A command answered before its publish was recorded is acked too.
    let quick = measure(&app, &acme.token, dev, 600).await;
    app.command_result(dev, quick, br#"{"status": "acked", "result": {"readings": 1}}"#)
        .await;
    let got = read(&app, &acme.token, dev, quick).await;
    assert_eq!(got.body["status"], "acked");
    assert_eq!(got.body["result"], json!({"readings": 1}));
    assert!(got.body["error"].is_null());
    assert!(!app.mark_command_sent(quick).await, "answered: not sent afterwards");

    let logs = vitalfarm_tests::captured_logs();
    assert!(!logs.contains(marker), "device payloads never reach the log");
}
