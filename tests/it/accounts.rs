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
    app.post(
        &format!("/v1/memberships/{mid}/members"),
        Some(&access),
        json!({"email": "invitee@example.org", "role": "viewer"}),
    )
    .await;
    let invite = app.mailed_token("invitee@example.org", "vf_inv_", 1).await;
    let verify = app.mailed_token("secretive@example.org", "vf_ev_", 1).await;
    app.post(
        "/v1/auth/password-reset",
        None,
        json!({"email": "secretive@example.org"}),
    )
    .await;
    let reset = app.mailed_token("secretive@example.org", "vf_pr_", 1).await;
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
        verify.as_str(),
        reset.as_str(),
        "not-a-valid-token-but-secret-looking",
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs: {secret}");
    }
}

/// Signing up mails a verification token (through a real SMTP server); only
/// its hash is stored; it works once, only until it expires, and `/v1/me`
/// shows the result.
#[tokio::test]
async fn signup_mails_a_single_use_expiring_verification_token() {
    let app = TestApp::spawn().await;
    let ada = app.signup_unverified("Ada@Example.org", "individual").await;
    assert_eq!(ada.email, "ada@example.org");
    let me = app.get("/v1/me", &ada.token).await;
    assert_eq!(me.status, StatusCode::OK, "an unverified account can sign in");
    assert_eq!(me.body["user"]["email_verified"], false);

    let token = app.mailed_token("ada@example.org", "vf_ev_", 1).await;
    let mail = &app.mails_to("ada@example.org")[0];
    assert!(
        vitalfarm_tests::mail_sink::header(mail, "From").is_some_and(|f| f.contains(&app.config.mail_from_address())),
        "{mail}"
    );
    assert!(vitalfarm_tests::mail_sink::header(mail, "Subject").is_some_and(|s| s.contains("Confirm")));
    // Stored as its SHA-256 only.
    let rows = vitalfarm_storage::repo::email_tokens::peek(
        app.db(),
        vitalfarm_storage::repo::email_tokens::Purpose::VerifyEmail,
        &hex_sha256(&token),
    )
    .await
    .unwrap();
    assert!(rows.is_some(), "the hash finds the token");
    let plain = app
        .exec_sql(
            "UPDATE email_tokens SET purpose = purpose WHERE token_hash = ?",
            vec![token.clone().into()],
        )
        .await;
    assert_eq!(plain, 0, "the token itself is not stored");

    app.post("/v1/auth/verify-email", None, json!({"token": "vf_ev_wrong"}))
        .await
        .problem(404, "not-found");
    app.post("/v1/auth/verify-email", None, json!({"token": ""}))
        .await
        .problem(422, "validation-failed");
    let res = app.post("/v1/auth/verify-email", None, json!({"token": token})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["email_verified"], true);
    assert_eq!(res.body["id"], ada.user_id.to_string());
    assert_eq!(app.get("/v1/me", &ada.token).await.body["user"]["email_verified"], true);
    // Single use; and a verified account needs no new mail.
    app.post("/v1/auth/verify-email", None, json!({"token": token}))
        .await
        .problem(404, "not-found");
    app.post("/v1/auth/resend-verification", Some(&ada.token), json!({}))
        .await
        .problem(409, "conflict");

    // An expired token does not verify; a resent one does.
    let bob = app.signup_unverified("bob@example.org", "individual").await;
    let first = app.mailed_token("bob@example.org", "vf_ev_", 1).await;
    app.exec_sql(
        "UPDATE email_tokens SET expires_at = ? WHERE token_hash = ?",
        vec![
            (chrono::Utc::now() - chrono::Duration::minutes(1)).into(),
            hex_sha256(&first).into(),
        ],
    )
    .await;
    app.post("/v1/auth/verify-email", None, json!({"token": first}))
        .await
        .problem(404, "not-found");
    let res = app
        .post("/v1/auth/resend-verification", Some(&bob.token), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let second = app.mailed_token("bob@example.org", "vf_ev_", 2).await;
    assert_ne!(first, second);
    app.verify_by_mail(&bob).await;
    // A verification token is no reset token, and the other way round.
    app.post(
        "/v1/auth/password-reset/confirm",
        None,
        json!({"token": second, "new_password": "a brand new passphrase"}),
    )
    .await
    .problem(404, "not-found");
    // The mailbox can not be flooded: a few resends an hour.
    let carl = app.signup_unverified("carl@example.org", "individual").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            app.post("/v1/auth/resend-verification", Some(&carl.token), json!({}))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [202, 202, 202, 202, 202, 429]);
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A consent request to an unverified address is one to an address nobody
/// has: the same answer to the company, and the squatter sees nothing.
#[tokio::test]
async fn consent_requests_to_an_unverified_address_reach_nobody() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let squatter = app.signup_unverified("ann@example.org", "individual").await;
    let ask = |email: &str| json!({"individual_email": email, "metrics": ["heart_rate"], "purpose": "care", "access": "read", "duration": "P30D"});
    let to_squatter = app
        .post("/v1/consent-requests", Some(&acme.token), ask("ann@example.org"))
        .await;
    let to_nobody = app
        .post("/v1/consent-requests", Some(&acme.token), ask("nobody@example.org"))
        .await;
    assert_eq!(to_squatter.status, StatusCode::CREATED, "{}", to_squatter.text);
    assert_eq!(to_squatter.status, to_nobody.status);
    let shape = |v: &serde_json::Value| {
        let mut v = v.clone();
        for k in ["id", "individual_email", "created_at", "expires_at"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(shape(&to_squatter.body), shape(&to_nobody.body));
    let id = to_squatter.str("/id");

    let incoming = app
        .get("/v1/consent-requests?direction=incoming", &squatter.token)
        .await;
    assert_eq!(incoming.status, StatusCode::OK);
    assert_eq!(incoming.body["items"], json!([]));
    app.post(
        &format!("/v1/consent-requests/{id}/approve"),
        Some(&squatter.token),
        json!({"subject_ids": []}),
    )
    .await
    .problem(404, "not-found");
    app.post(
        &format!("/v1/consent-requests/{id}/deny"),
        Some(&squatter.token),
        json!({}),
    )
    .await
    .problem(404, "not-found");
    // Nothing but the verification mail went to the address.
    let mails = app.wait_mails("ann@example.org", 1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("vf_ev_"));

    // Once the address is proved, the request is there.
    app.verify_by_mail(&squatter).await;
    let incoming = app
        .get("/v1/consent-requests?direction=incoming", &squatter.token)
        .await;
    assert_eq!(incoming.body["items"].as_array().unwrap().len(), 1);
}

/// Password reset by mailed token: the answer never tells whether the
/// address has an account; the token works once; every session and refresh
/// token of the account ends.
#[tokio::test]
async fn password_reset_by_mail_ends_every_session() {
    let app = TestApp::spawn().await;
    let ada = app.individual("ada@example.org").await;
    let second = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ada@example.org", "password": PASSWORD}),
        )
        .await;
    let second_refresh = second.str("/refresh_token");

    let known = app
        .post("/v1/auth/password-reset", None, json!({"email": "ADA@example.org"}))
        .await;
    let unknown = app
        .post("/v1/auth/password-reset", None, json!({"email": "nobody@example.org"}))
        .await;
    let malformed = app
        .post("/v1/auth/password-reset", None, json!({"email": "not an address"}))
        .await;
    for res in [&known, &unknown, &malformed] {
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
        assert_eq!(res.text, known.text);
    }
    let token = app.mailed_token("ada@example.org", "vf_pr_", 1).await;
    assert!(app.mails_to("nobody@example.org").is_empty());

    let confirm = "/v1/auth/password-reset/confirm";
    let res = app
        .post(confirm, None, json!({"token": token, "new_password": "short"}))
        .await;
    assert_eq!(res.fields(), ["new_password"]);
    app.post(
        confirm,
        None,
        json!({"token": "vf_pr_wrong", "new_password": "a brand new passphrase"}),
    )
    .await
    .problem(404, "not-found");
    // The refused password did not spend the token.
    let res = app
        .post(
            confirm,
            None,
            json!({"token": token, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    app.post(
        confirm,
        None,
        json!({"token": token, "new_password": "yet another passphrase"}),
    )
    .await
    .problem(404, "not-found");

    // Every refresh token of the account is revoked.
    for refresh in [&ada.refresh_token, &second_refresh] {
        app.post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
            .await
            .problem(401, "unauthorized");
    }
    app.post(
        "/v1/auth/login",
        None,
        json!({"email": "ada@example.org", "password": PASSWORD}),
    )
    .await
    .problem(401, "invalid-credentials");
    let res = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ada@example.org", "password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
}

/// Changing the password needs the current one; the other sessions end and
/// the caller gets a fresh token pair.
#[tokio::test]
async fn password_change_needs_the_current_password_and_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let ada = app.individual("ada@example.org").await;
    let other = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ada@example.org", "password": PASSWORD}),
        )
        .await
        .str("/refresh_token");
    let change = "/v1/me/password";
    app.post(
        change,
        Some(&ada.token),
        json!({"current_password": "not the password", "new_password": "a brand new passphrase"}),
    )
    .await
    .problem(401, "invalid-credentials");
    let res = app
        .post(
            change,
            Some(&ada.token),
            json!({"current_password": PASSWORD, "new_password": "ada@example.org"}),
        )
        .await;
    assert_eq!(res.fields(), ["new_password"]);
    app.post(
        change,
        None,
        json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
    )
    .await
    .problem(401, "unauthorized");

    let res = app
        .post(
            change,
            Some(&ada.token),
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let fresh_refresh = res.str("/refresh_token");
    assert!(app.get("/v1/me", &res.str("/access_token")).await.status.is_success());
    for refresh in [&ada.refresh_token, &other] {
        app.post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
            .await
            .problem(401, "unauthorized");
    }
    let res = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": fresh_refresh}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    app.post(
        "/v1/auth/login",
        None,
        json!({"email": "ada@example.org", "password": "a brand new passphrase"}),
    )
    .await;
    let res = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ada@example.org", "password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
}
