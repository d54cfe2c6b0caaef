//! The audit log: events recorded where things happen, listed with filters
//! and pages, visible to owners and admins only, and a hash chain whose
//! verification finds an altered or deleted stored event.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use vitalfarm_tests::{Member, TestApp};

fn audit_path(m: &Member) -> String {
    format!("/v1/memberships/{}/audit", m.membership_id)
}

/// Waits for an event recorded off the request's path.
async fn eventually(app: &TestApp, m: &Member, query: &str, want: usize) -> Vec<Value> {
    for _ in 0..100 {
        let events = app.audit(m.membership_id, &m.token, query).await;
        if events.len() >= want {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {want} events matching {query:?}");
}

#[tokio::test]
async fn sign_ins_are_recorded_and_failed_ones_do_not_reveal_the_account() {
    let app = TestApp::spawn().await;
    let ada = app.individual("ada@example.org").await;
    app.login("ada@example.org").await;

    let events = app.audit(ada.membership_id, &ada.token, "action=auth.sign_in&").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["outcome"], "allowed");
    assert_eq!(e["actor"]["kind"], "user");
    assert_eq!(e["actor"]["id"], ada.user_id.to_string());
    assert_eq!(e["resource"], format!("user/{}", ada.user_id));
    assert_eq!(e["seq"], 1);
    assert_eq!(e["hash"].as_str().map(str::len), Some(64));

    let wrong = |email: &str| json!({"email": email, "password": "not the password"});
    let known = app.post("/v1/auth/login", None, wrong("ada@example.org")).await;
    let unknown = app.post("/v1/auth/login", None, wrong("nobody@example.org")).await;
    known.problem(401, "invalid-credentials");
    unknown.problem(401, "invalid-credentials");
    for field in ["type", "title", "detail", "status"] {
        assert_eq!(known.body[field], unknown.body[field], "{field} differs");
    }

    let failed = eventually(&app, &ada, "outcome=failed&", 1).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["action"], "auth.sign_in");
    assert_eq!(failed[0]["actor"]["id"], ada.user_id.to_string());
    assert!(!failed[0].to_string().contains("not the password"));

    // Signing out is recorded too.
    let res = app
        .post("/v1/auth/logout", None, json!({"refresh_token": ada.refresh_token}))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let out = app.audit(ada.membership_id, &ada.token, "action=auth.sign_out&").await;
    assert_eq!(out.len(), 1);
    assert_eq!(app.audit_verify(ada.membership_id, &ada.token).await["ok"], true);
}

#[tokio::test]
async fn keys_devices_members_and_share_links_are_recorded() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let mid = acme.membership_id;

    let key = app
        .post(
            &format!("/v1/memberships/{mid}/api-keys"),
            Some(&acme.token),
            json!({"name": "ci", "role": "developer"}),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);
    let key_id = key.str("/key/id");
    let secret = key.str("/secret");

    let reg = app
        .post(
            &format!("/v1/memberships/{mid}/devices"),
            Some(&secret),
            json!({"devices": [{"serial": "A-1"}, {"serial": "A-2"}, {"serial": "A-3"}]}),
        )
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);

    app.staff(&acme, "grace@acme.example", "analyst").await;

    app.upload(&acme.token, acme.farm_id, "docs/a.txt", b"hello".to_vec(), &[])
        .await;
    let link = app
        .post(
            &format!("/v1/farms/{}/share-links", acme.farm_id),
            Some(&acme.token),
            json!({"path": "/docs/a.txt", "expires_in": 600}),
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.text);
    let url = link.str("/url");
    let anon = app.client.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::OK);

    let events = app.audit(mid, &acme.token, "").await;
    let find = |action: &str| -> Value {
        events
            .iter()
            .find(|e| e["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("no {action} in {events:#?}"))
    };
    let created = find("api_key.created");
    assert_eq!(created["resource"], format!("api_key/{key_id}"));
    assert_eq!(created["actor"]["id"], acme.user_id.to_string());
    assert!(
        !created.to_string().contains(&secret),
        "the secret stays out of the log"
    );

    let registered = find("device.registered");
    assert_eq!(registered["detail"]["count"], 3);
    assert_eq!(registered["actor"]["kind"], "api_key");
    assert_eq!(registered["actor"]["id"], key_id);

    assert_eq!(find("member.added")["detail"]["role"], "analyst");

    let used = find("share_link.used");
    assert_eq!(used["actor"]["kind"], "anonymous");
    assert_eq!(used["actor"]["id"], Value::Null);
    assert_eq!(used["outcome"], "allowed");
    assert!(
        !used.to_string().contains("vf_share_"),
        "the link's token stays out of the log"
    );
    find("share_link.created");

    // Newest first, one seq after another.
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    let n = i64::try_from(seqs.len()).unwrap();
    assert_eq!(seqs, (1..=n).rev().collect::<Vec<_>>());
    let v = app.audit_verify(mid, &acme.token).await;
    assert_eq!(v, json!({"ok": true, "checked": n, "first_broken": null}));
}

#[tokio::test]
async fn filters_and_pages() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let mid = acme.membership_id;
    for i in 0..3 {
        let res = app
            .post(
                &format!("/v1/memberships/{mid}/api-keys"),
                Some(&acme.token),
                json!({"name": format!("k{i}"), "role": "viewer"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
    }
    app.login("owner@acme.example").await;
    app.login("owner@acme.example").await;
    let all = app.audit(mid, &acme.token, "").await;
    assert_eq!(all.len(), 5);

    // Pages of two, newest first, neither skipping nor repeating.
    let mut paged = Vec::new();
    let mut path = format!("{}?limit=2", audit_path(&acme));
    loop {
        let res = app.get(&path, &acme.token).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        paged.extend(res.body["items"].as_array().unwrap().iter().cloned());
        let Some(c) = res.body["next_cursor"].as_str() else {
            break;
        };
        path = format!("{}?limit=2&cursor={c}", audit_path(&acme));
    }
    assert_eq!(paged, all);

    let count = |q: &'static str| {
        let app = &app;
        let acme = &acme;
        async move { app.audit(acme.membership_id, &acme.token, q).await.len() }
    };
    assert_eq!(count("action=api_key&").await, 3);
    assert_eq!(count("action=api_key.created&").await, 3);
    assert_eq!(count("action=auth&").await, 2);
    assert_eq!(count("action=api_key_created&").await, 0, "'_' is no wildcard");
    assert_eq!(count("outcome=allowed&").await, 5);
    assert_eq!(count("outcome=denied&").await, 0);
    let by_user = app
        .audit(mid, &acme.token, &format!("actor_id={}&", acme.user_id))
        .await;
    assert_eq!(by_user.len(), 5);
    let nobody = app
        .audit(mid, &acme.token, &format!("actor_id={}&", Uuid::now_v7()))
        .await;
    assert!(nobody.is_empty());
    assert_eq!(
        app.audit(mid, &acme.token, &format!("consent_id={}&", Uuid::now_v7()))
            .await
            .len(),
        0
    );
    assert_eq!(count("from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z&").await, 5);
    assert_eq!(count("from=2999-01-01T00:00:00Z&").await, 0);
    assert_eq!(count("to=2000-01-01T00:00:00Z&").await, 0);
    // `from` is inclusive, `to` exclusive, to the millisecond.
    let at = all[2]["at"].as_str().unwrap().to_owned();
    let from_at = app.audit(mid, &acme.token, &format!("from={at}&")).await;
    assert!(from_at.iter().any(|e| e["id"] == all[2]["id"]));
    let to_at = app.audit(mid, &acme.token, &format!("to={at}&")).await;
    assert!(to_at.iter().all(|e| e["id"] != all[2]["id"]));

    let bad = |q: &str| format!("{}?{q}", audit_path(&acme));
    for (q, field) in [
        ("action=Auth%25", "action"),
        ("outcome=maybe", "outcome"),
        ("actor_id=42", "actor_id"),
        ("from=yesterday", "from"),
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("limit=0", "limit"),
        ("cursor=AAAAAAAAAAAAAAAAAAAAAA", "cursor"),
    ] {
        let res = app.get(&bad(q), &acme.token).await;
        let p = res.problem(400, "invalid-parameter");
        assert!(p.to_string().contains(field), "{q}: {p}");
    }
}

#[tokio::test]
async fn only_owners_and_admins_of_the_membership_read_it() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let other = app.company("owner@other.example").await;
    let other_key = app.api_key(&other, "admin").await;
    let admin_key = app.api_key(&acme, "admin").await;
    let viewer = app.staff(&acme, "viewer@acme.example", "viewer").await;
    let developer = app.staff(&acme, "dev@acme.example", "developer").await;
    let admin = app.staff(&acme, "admin@acme.example", "admin").await;

    for suffix in ["", "/verify"] {
        let path = format!("{}{suffix}", audit_path(&acme));
        for foreign in [&other.token, &other_key] {
            app.get(&path, foreign).await.problem(404, "not-found");
        }
        for weak in [&viewer, &developer] {
            app.get(&path, weak).await.problem(403, "forbidden");
        }
        for strong in [&acme.token, &admin, &admin_key] {
            assert_eq!(app.get(&path, strong).await.status, StatusCode::OK, "{path}");
        }
        // A membership that does not exist looks the same as a foreign one.
        let missing = format!("/v1/memberships/{}/audit{suffix}", Uuid::now_v7());
        app.get(&missing, &acme.token).await.problem(404, "not-found");
    }
    // Nothing of acme's shows in the other company's log.
    let theirs = app.audit(other.membership_id, &other.token, "").await;
    assert!(theirs.iter().all(|e| e["actor"]["id"] != acme.user_id.to_string()));
}

/// A company with `n` audit events (API key creations).
async fn company_with_events(app: &TestApp, n: usize) -> Member {
    let acme = app.company("owner@acme.example").await;
    for i in 0..n {
        let res = app
            .post(
                &format!("/v1/memberships/{}/api-keys", acme.membership_id),
                Some(&acme.token),
                json!({"name": format!("k{i}")}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
    }
    acme
}

async fn event_at(app: &TestApp, m: &Member, seq: i64) -> Value {
    app.audit(m.membership_id, &m.token, "")
        .await
        .into_iter()
        .find(|e| e["seq"] == seq)
        .unwrap_or_else(|| panic!("no event {seq}"))
}

#[tokio::test]
async fn verify_names_the_event_altered_in_the_database() {
    let app = TestApp::spawn().await;
    let acme = company_with_events(&app, 5).await;
    let v = app.audit_verify(acme.membership_id, &acme.token).await;
    assert_eq!(v, json!({"ok": true, "checked": 5, "first_broken": null}));

    let third = event_at(&app, &acme, 3).await;
    let id: Uuid = third["id"].as_str().unwrap().parse().unwrap();
    let changed = app
        .exec_sql(
            "UPDATE audit_events SET resource = ? WHERE id = ?",
            vec!["api_key/someone-else".into(), id.into()],
        )
        .await;
    assert_eq!(changed, 1);

    let v = app.audit_verify(acme.membership_id, &acme.token).await;
    assert_eq!(
        v,
        json!({"ok": false, "checked": 2, "first_broken": {"seq": 3, "event_id": id, "reason": "hash_mismatch"}})
    );
}

#[tokio::test]
async fn verify_finds_a_deleted_middle_event() {
    let app = TestApp::spawn().await;
    let acme = company_with_events(&app, 5).await;
    let third = event_at(&app, &acme, 3).await;
    let fourth = event_at(&app, &acme, 4).await;
    let id: Uuid = third["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        app.exec_sql("DELETE FROM audit_events WHERE id = ?", vec![id.into()])
            .await,
        1
    );
    let v = app.audit_verify(acme.membership_id, &acme.token).await;
    assert_eq!(
        v,
        json!({"ok": false, "checked": 2, "first_broken": {"seq": 4, "event_id": fourth["id"], "reason": "seq_gap"}})
    );
}

#[tokio::test]
async fn concurrent_appends_leave_one_unbroken_chain() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let path = format!("/v1/memberships/{}/api-keys", acme.membership_id);
    let creations = (0..20).map(|i| app.post(&path, Some(&acme.token), json!({"name": format!("parallel {i}")})));
    for res in futures_util::future::join_all(creations).await {
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    }
    let events = app.audit(acme.membership_id, &acme.token, "").await;
    assert_eq!(events.len(), 20);
    let mut seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    let v = app.audit_verify(acme.membership_id, &acme.token).await;
    assert_eq!(v, json!({"ok": true, "checked": 20, "first_broken": null}));
}

#[tokio::test]
async fn refusals_by_role_are_recorded_as_denied() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let mid = acme.membership_id;
    let analyst = app.staff(&acme, "analyst@acme.example", "analyst").await;
    let viewer_key = app.api_key(&acme, "viewer").await;
    let stranger = app.company("owner@other.example").await;

    let res = app
        .post(
            &format!("/v1/memberships/{mid}/members"),
            Some(&analyst),
            json!({"email": "x@acme.example", "role": "viewer"}),
        )
        .await;
    res.problem(403, "forbidden");
    let res = app
        .post(
            &format!("/v1/memberships/{mid}/devices"),
            Some(&viewer_key),
            json!({"serial": "D-1"}),
        )
        .await;
    res.problem(403, "forbidden");
    // Someone with no standing in the membership leaves no trace in its log.
    let res = app
        .post(
            &format!("/v1/memberships/{mid}/api-keys"),
            Some(&stranger.token),
            json!({"name": "intruder"}),
        )
        .await;
    res.problem(404, "not-found");

    let denied = app.audit(mid, &acme.token, "outcome=denied&").await;
    let summary: Vec<(&str, &str)> = denied
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"]["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(summary, [("device.registered", "api_key"), ("member.added", "user")]);
    assert_eq!(denied[1]["detail"]["role"], "viewer");
    assert!(!denied.iter().any(|e| e["actor"]["id"] == stranger.user_id.to_string()));
    let v = app.audit_verify(mid, &acme.token).await;
    assert_eq!(v["ok"], true);
}
