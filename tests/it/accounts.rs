//! Sign-up, sign-in, token rotation, logout, `/v1/me` and memberships.

use reqwest::StatusCode;
use serde_json::json;
use vitalfarm_tests::{PASSWORD, TestApp};

#[tokio::test]
async fn individual_signup_creates_user_membership_farm_and_self_subject() {
    let app = TestApp::spawn().await;
    let res = app
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "  Ada@Example.org ", "password": PASSWORD, "display_name": "Ada Lovelace", "membership": {"kind": "individual", "name": "Ada's health"}}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["user"]["email"], "ada@example.org", "emails are normalised");
    assert_eq!(res.body["membership"]["kind"], "individual");
    assert!(res.body["membership"]["farm_id"].is_string());
    assert!(res.body["self_subject_id"].is_string());
    assert_eq!(res.body["tokens"]["token_type"], "Bearer");
    assert_eq!(res.body["tokens"]["expires_in"], 900);
    let membership = res.id("/membership/id");
    let token = res.str("/tokens/access_token");

    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["user"]["display_name"], "Ada Lovelace");
    let ms = me.body["memberships"].as_array().unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["id"], membership.to_string());
    assert_eq!(ms[0]["role"], "owner");

    let m = app.get(&format!("/v1/memberships/{membership}"), &token).await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.body["name"], "Ada's health");
    assert_eq!(m.body["farm_id"], res.body["membership"]["farm_id"]);
    assert!(m.body["created_at"].is_string());
}

#[tokio::test]
async fn company_signup_has_no_self_subject() {
    let app = TestApp::spawn().await;
    let res = app
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "ops@acme.example", "password": PASSWORD, "display_name": "Ops", "membership": {"kind": "company", "name": "Acme Cardio"}}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert!(res.body["self_subject_id"].is_null());
    assert_eq!(res.body["membership"]["kind"], "company");
}

#[tokio::test]
async fn duplicate_email_is_409_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.individual("dup@example.org").await;
    let res = app
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "DUP@example.org", "password": PASSWORD, "display_name": "D", "membership": {"kind": "company", "name": "D"}}),
        )
        .await;
    res.problem(409, "conflict");
}

#[tokio::test]
async fn password_rules() {
    let app = TestApp::spawn().await;
    for (password, why) in [
        ("short", "length"),
        ("pat@example.org", "the email"),
        ("PAT@EXAMPLE.ORG", "the email in capitals"),
        ("pat", "length"),
    ] {
        let res = app
            .post(
                "/v1/auth/signup",
                None,
                json!({"email": "pat@example.org", "password": password, "display_name": "P", "membership": {"kind": "individual", "name": "P"}}),
            )
            .await;
        res.problem(422, "validation-failed");
        assert_eq!(res.fields(), ["password"], "{why}");
    }
}

#[tokio::test]
async fn login_and_wrong_credentials() {
    let app = TestApp::spawn().await;
    app.individual("login@example.org").await;
    let res = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "LOGIN@example.org", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert!(res.str("/refresh_token").starts_with("vf_rt_"));
    let res = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "login@example.org", "password": "wrong password!"}),
        )
        .await;
    res.problem(401, "invalid-credentials");
    // An unknown account answers exactly like a wrong password.
    let res = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "nobody@example.org", "password": PASSWORD}),
        )
        .await;
    res.problem(401, "invalid-credentials");
    assert_eq!(res.body["detail"], "wrong email or password");
    // A malformed address is an unknown account, not a different answer.
    let res = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "not an email", "password": PASSWORD}),
        )
        .await;
    res.problem(401, "invalid-credentials");
    let res = app
        .post("/v1/auth/login", None, json!({"email": "", "password": PASSWORD}))
        .await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["email"]);
}

#[tokio::test]
async fn failed_logins_are_limited_per_account_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures_per_account = 3;
        c.login_window_secs = 120;
    })
    .await;
    app.individual("victim@example.org").await;
    for _ in 0..3 {
        let res = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": "victim@example.org", "password": "guess guess guess"}),
            )
            .await;
        res.problem(401, "invalid-credentials");
    }
    // Now even the right password is refused until the window ends.
    let res = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "victim@example.org", "password": PASSWORD}),
        )
        .await;
    res.problem(429, "rate-limited");
    let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry), "{retry}");
    // Other accounts are not affected.
    app.individual("bystander@example.org").await;
    app.login("bystander@example.org").await;
}

#[tokio::test]
async fn login_attempts_are_limited_per_client_address() {
    let app = TestApp::spawn_with(|c| c.login_max_attempts_per_ip = 4).await;
    app.individual("ip@example.org").await;
    for i in 0..4 {
        let res = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": format!("probe{i}@example.org"), "password": PASSWORD}),
            )
            .await;
        res.problem(401, "invalid-credentials");
    }
    let res = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ip@example.org", "password": PASSWORD}),
        )
        .await;
    res.problem(429, "rate-limited");
    assert!(res.header("retry-after").is_some());
}

#[tokio::test]
async fn a_successful_login_clears_the_failure_count() {
    let app = TestApp::spawn_with(|c| c.login_max_failures_per_account = 2).await;
    app.individual("forgetful@example.org").await;
    for _ in 0..3 {
        let res = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": "forgetful@example.org", "password": "not it at all"}),
            )
            .await;
        res.problem(401, "invalid-credentials");
        app.login("forgetful@example.org").await;
    }
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = TestApp::spawn().await;
    let user = app.individual("rotate@example.org").await;
    let first = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh_token}))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let second_rt = first.str("/refresh_token");
    assert_ne!(second_rt, user.refresh_token);
    let me = app.get("/v1/me", &first.str("/access_token")).await;
    assert_eq!(me.status, StatusCode::OK);

    // The spent token is presented again: it was copied. The family dies,
    // including the legitimate successor.
    let reuse = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh_token}))
        .await;
    reuse.problem(401, "unauthorized");
    let successor = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": second_rt}))
        .await;
    successor.problem(401, "unauthorized");

    // Another sign-in (another family) is unaffected.
    let other = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "rotate@example.org", "password": PASSWORD}),
        )
        .await;
    let res = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": other.str("/refresh_token")}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn logout_revokes_the_family_and_reveals_nothing() {
    let app = TestApp::spawn().await;
    let user = app.individual("bye@example.org").await;
    let rotated = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh_token}))
        .await;
    let current = rotated.str("/refresh_token");
    let res = app
        .post("/v1/auth/logout", None, json!({"refresh_token": current}))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let res = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": current}))
        .await;
    res.problem(401, "unauthorized");
    let res = app
        .post("/v1/auth/logout", None, json!({"refresh_token": "vf_rt_unknown"}))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let res = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": "vf_rt_unknown"}))
        .await;
    res.problem(401, "unauthorized");
}

#[tokio::test]
async fn me_needs_a_user_token() {
    let app = TestApp::spawn().await;
    let company = app.company("keyholder@example.org").await;
    let key = app.api_key(&company, "developer").await;
    let res = app.get("/v1/me", &key).await;
    res.problem(403, "forbidden");
}

#[tokio::test]
async fn stored_credentials_are_hashed() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn().await;
    let company = app.company("vault@example.org").await;
    let key = app.api_key(&company, "viewer").await;
    let db = app.running.state.db.conn();
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT password_hash FROM users".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let hash: String = row.try_get("", "password_hash").unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    for (table, column) in [("api_keys", "secret_hash"), ("refresh_tokens", "token_hash")] {
        let rows = db
            .query_all_raw(Statement::from_string(backend, format!("SELECT {column} FROM {table}")))
            .await
            .unwrap();
        assert!(!rows.is_empty());
        for row in rows {
            let stored: String = row.try_get("", column).unwrap();
            assert_eq!(stored.len(), 64, "a SHA-256 hex digest");
            assert_ne!(stored, key);
            assert_ne!(stored, company.refresh_token);
        }
    }
}

/// Concurrent sign-ups, sign-ins, refreshes and failed attempts all hit
/// write transactions at once; none may fail with a busy database.
#[tokio::test]
async fn concurrent_writes_never_fail() {
    let app = std::sync::Arc::new(TestApp::spawn_with(|c| c.workers = Some(2)).await);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let user = app.individual(&format!("crowd{i}@example.org")).await;
            let bad = app
                .post(
                    "/v1/auth/login",
                    None,
                    json!({"email": user.email, "password": "not the password"}),
                )
                .await;
            bad.problem(401, "invalid-credentials");
            let res = app
                .post("/v1/auth/refresh", None, json!({"refresh_token": user.refresh_token}))
                .await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.text);
            app.login(&user.email).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Passwords, access and refresh tokens, API keys and invitation tokens never
/// reach a log line, while the requests that carried them are logged.
#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let app = TestApp::spawn().await;
    let password = "zebra-quartz-9271-unique-passphrase";
    let res = app
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "secretive@example.org", "password": password, "display_name": "S", "membership": {"kind": "company", "name": "Secretive"}}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let access = res.str("/tokens/access_token");
    let refresh = res.str("/tokens/refresh_token");
    let mid = res.id("/membership/id");
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "secretive@example.org", "password": password}),
        )
        .await;
    let wrong = "wrong-zebra-quartz-guess";
    app.post(
        "/v1/auth/login",
        None,
        json!({"email": "secretive@example.org", "password": wrong}),
    )
    .await;
    let rotated = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    app.post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
        .await; // reuse, logged as a warning
    let key = app
        .post(
            &format!("/v1/memberships/{mid}/api-keys"),
            Some(&access),
            json!({"name": "k"}),
        )
        .await
        .str("/secret");
    app.get(&format!("/v1/memberships/{mid}"), &key).await;
    let invite = app
        .post(
            &format!("/v1/memberships/{mid}/members"),
            Some(&access),
            json!({"email": "invitee@example.org", "role": "viewer"}),
        )
        .await
        .str("/invitation_token");
    app.get("/v1/me", "not-a-valid-token-but-secret-looking").await;

    let logs = vitalfarm_tests::captured_logs();
    assert!(logs.contains("route=/v1/auth/login"), "requests are logged: {logs}");
    assert!(
        logs.contains("refresh token reuse detected"),
        "the reuse warning is logged"
    );
    for secret in [
        password,
        wrong,
        access.as_str(),
        refresh.as_str(),
        login.str("/access_token").as_str(),
        login.str("/refresh_token").as_str(),
        rotated.str("/refresh_token").as_str(),
        key.as_str(),
        invite.as_str(),
        "not-a-valid-token-but-secret-looking",
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs: {secret}");
    }
}
