//! Company staff: invitations, roles, removal and the last-owner rule.

use reqwest::StatusCode;
use serde_json::json;
use vitalfarm_tests::{PASSWORD, TestApp};

#[tokio::test]
async fn existing_users_accept_invitations_new_ones_complete_their_account_by_mail() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let members = format!("/v1/memberships/{}/members", acme.membership_id);
    let grace = app.individual("grace@example.org").await;

    // An existing account is invited, not added: nothing changes for it
    // until it accepts.
    let res = app
        .post(
            &members,
            Some(&acme.token),
            json!({"email": "Grace@example.org", "role": "analyst"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["member"]["status"], "invited");
    assert!(res.body.get("invitation_token").is_none(), "tokens go by mail only");
    assert!(res.body["invitation_expires_at"].is_string());
    let mails = app.wait_mails("grace@example.org", 2).await;
    let notice = mails
        .iter()
        .find(|m| m.contains("/v1/me/invitations"))
        .expect("an invitation notice");
    assert!(
        notice.contains("owner@acme.example's") && notice.contains("analyst"),
        "{notice}"
    );
    assert!(!notice.contains("vf_inv_"), "an existing account needs no token");
    let me = app.get("/v1/me", &grace.token).await;
    assert_eq!(me.body["memberships"].as_array().unwrap().len(), 1, "not a member yet");
    let list = app.get(&members, &acme.token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1, "only the owner");

    let pending = app.get("/v1/me/invitations", &grace.token).await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.text);
    let items = pending.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["membership_id"], acme.membership_id.to_string());
    assert_eq!(items[0]["membership_name"], "owner@acme.example's company");
    assert_eq!(items[0]["role"], "analyst");
    let id = items[0]["id"].as_str().unwrap();
    // Someone else cannot answer it.
    let stranger = app.individual("stranger@example.org").await;
    app.post(
        &format!("/v1/me/invitations/{id}/accept"),
        Some(&stranger.token),
        json!({}),
    )
    .await
    .problem(404, "not-found");
    let res = app
        .post(
            &format!("/v1/me/invitations/{id}/accept"),
            Some(&grace.token),
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["id"], acme.membership_id.to_string());
    assert_eq!(res.body["role"], "analyst");
    let me = app.get("/v1/me", &grace.token).await;
    assert_eq!(
        me.body["memberships"].as_array().unwrap().len(),
        2,
        "own membership and Acme"
    );
    // Spent: accepting again, or declining, finds nothing.
    app.post(
        &format!("/v1/me/invitations/{id}/accept"),
        Some(&grace.token),
        json!({}),
    )
    .await
    .problem(404, "not-found");
    app.post(
        &format!("/v1/me/invitations/{id}/decline"),
        Some(&grace.token),
        json!({}),
    )
    .await
    .problem(404, "not-found");
    // A member is not invited again.
    app.post(
        &members,
        Some(&acme.token),
        json!({"email": "grace@example.org", "role": "viewer"}),
    )
    .await
    .problem(409, "conflict");

    // Declining leaves the account as it was.
    let beta = app.company("owner@beta.example").await;
    app.post(
        &format!("/v1/memberships/{}/members", beta.membership_id),
        Some(&beta.token),
        json!({"email": "grace@example.org", "role": "admin"}),
    )
    .await;
    let pending = app.get("/v1/me/invitations", &grace.token).await;
    let id = pending.str("/items/0/id");
    let res = app
        .post(
            &format!("/v1/me/invitations/{id}/decline"),
            Some(&grace.token),
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    assert_eq!(
        app.get("/v1/me/invitations", &grace.token).await.body["items"],
        json!([])
    );
    assert_eq!(
        app.get("/v1/me", &grace.token).await.body["memberships"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Someone without an account gets the token by mail.
    let res = app
        .post(
            &members,
            Some(&acme.token),
            json!({"email": "newbie@acme.example", "role": "developer"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["member"]["status"], "invited");
    assert!(res.body.get("invitation_token").is_none());
    assert!(res.body["invitation_expires_at"].is_string());
    let token = app.mailed_token("newbie@acme.example", "vf_inv_", 1).await;
    let mail = &app.mails_to("newbie@acme.example")[0];
    assert!(
        mail.contains("owner@acme.example's") && mail.contains("developer"),
        "{mail}"
    );

    // The invited account has no password yet: it cannot sign in.
    let res = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "newbie@acme.example", "password": PASSWORD}),
        )
        .await;
    res.problem(401, "invalid-credentials");
    // A wrong token is refused, and so is a password that is the email.
    let accept = "/v1/auth/accept-invitation";
    let res = app
        .post(
            accept,
            None,
            json!({"invitation_token": "vf_inv_wrong", "password": PASSWORD, "display_name": "Newbie"}),
        )
        .await;
    res.problem(404, "not-found");
    let res = app
        .post(
            accept,
            None,
            json!({"invitation_token": token, "password": "newbie@acme.example", "display_name": "Newbie"}),
        )
        .await;
    assert_eq!(res.fields(), ["password"], "{}", res.text);

    let res = app
        .post(
            accept,
            None,
            json!({"invitation_token": token, "password": PASSWORD, "display_name": "Newbie"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["membership"]["id"], acme.membership_id.to_string());
    assert_eq!(res.body["user"]["email"], "newbie@acme.example");
    assert_eq!(
        res.body["user"]["email_verified"], true,
        "the mailed token proves the address"
    );
    let newbie = res.str("/tokens/access_token");
    let me = app.get("/v1/me", &newbie).await;
    assert_eq!(me.body["memberships"][0]["role"], "developer");
    app.login("newbie@acme.example").await;
    // The token worked once.
    let res = app
        .post(
            accept,
            None,
            json!({"invitation_token": token, "password": PASSWORD, "display_name": "Again"}),
        )
        .await;
    res.problem(404, "not-found");

    let list = app.get(&members, &acme.token).await;
    assert_eq!(list.status, StatusCode::OK);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|m| m["status"] == "active"));
    assert!(list.body["next_cursor"].is_null());
}

/// Issue 13, item 1: a squatter signs up with a colleague's address before
/// its owner does; when the company invites that address as admin, the
/// squatter gets no role, no staff list and no admin API key: the
/// invitation waits for acceptance, and an unverified account cannot
/// accept it (nor see it).
#[tokio::test]
async fn a_squatter_of_a_colleagues_address_gets_no_role_from_an_invitation() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let squatter = app.signup_unverified("ana@acme.example", "individual").await;
    let me = app.get("/v1/me", &squatter.token).await;
    assert_eq!(me.body["user"]["email_verified"], false);

    let res = app
        .post(
            &format!("/v1/memberships/{}/members", acme.membership_id),
            Some(&acme.token),
            json!({"email": "ana@acme.example", "role": "admin"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["member"]["status"], "invited");

    // No admin role, no staff list, no admin API key.
    let me = app.get("/v1/me", &squatter.token).await;
    let memberships = me.body["memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 1, "{}", me.body);
    assert!(memberships.iter().all(|m| m["id"] != acme.membership_id.to_string()));
    app.get(
        &format!("/v1/memberships/{}/members", acme.membership_id),
        &squatter.token,
    )
    .await
    .problem(404, "not-found");
    app.post(
        &format!("/v1/memberships/{}/api-keys", acme.membership_id),
        Some(&squatter.token),
        json!({"name": "mine", "role": "admin"}),
    )
    .await
    .problem(404, "not-found");

    // An unverified account neither sees nor answers invitations.
    app.get("/v1/me/invitations", &squatter.token)
        .await
        .problem(403, "forbidden");
    let invitation: uuid::Uuid = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        vitalfarm_storage::entity::invitation::Entity::find()
            .filter(vitalfarm_storage::entity::invitation::Column::UserId.eq(squatter.user_id))
            .one(app.db().conn())
            .await
            .unwrap()
            .expect("the invitation waits")
            .id
    };
    for answer in ["accept", "decline"] {
        app.post(
            &format!("/v1/me/invitations/{invitation}/{answer}"),
            Some(&squatter.token),
            json!({}),
        )
        .await
        .problem(403, "forbidden");
    }
    let me = app.get("/v1/me", &squatter.token).await;
    assert_eq!(me.body["memberships"].as_array().unwrap().len(), 1);

    // The address's owner reads the mail: verified, she accepts.
    app.verify_by_mail(&squatter).await;
    let res = app
        .post(
            &format!("/v1/me/invitations/{invitation}/accept"),
            Some(&squatter.token),
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["role"], "admin");
}

#[tokio::test]
async fn member_lists_paginate_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let acme = app.company("pager@acme.example").await;
    let members = format!("/v1/memberships/{}/members", acme.membership_id);
    for i in 0..4 {
        let res = app
            .post(
                &members,
                Some(&acme.token),
                json!({"email": format!("p{i}@acme.example"), "role": "viewer"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{members}?limit=2&cursor={c}"),
            None => format!("{members}?limit=2"),
        };
        let page = app.get(&q, &acme.token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|m| m["user_id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(seen.len(), 5);
    assert_eq!(unique.len(), 5);
}

#[tokio::test]
async fn roles_decide_who_may_manage_whom() {
    let app = TestApp::spawn().await;
    let acme = app.company("boss@acme.example").await;
    let members = format!("/v1/memberships/{}/members", acme.membership_id);
    let admin = app.staff(&acme, "admin@acme.example", "admin").await;
    let dev = app.staff(&acme, "dev@acme.example", "developer").await;
    let viewer = app.staff(&acme, "viewer@acme.example", "viewer").await;

    // Admins manage staff but never the owner role.
    let res = app
        .post(
            &members,
            Some(&admin),
            json!({"email": "a1@acme.example", "role": "analyst"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let a1 = res.id("/member/user_id");
    let res = app
        .post(
            &members,
            Some(&admin),
            json!({"email": "a2@acme.example", "role": "owner"}),
        )
        .await;
    res.problem(403, "forbidden");
    let res = app
        .patch(&format!("{members}/{a1}"), &admin, json!({"role": "owner"}))
        .await;
    res.problem(403, "forbidden");
    let res = app
        .patch(
            &format!("{members}/{}", acme.user_id),
            &admin,
            json!({"role": "viewer"}),
        )
        .await;
    res.problem(403, "forbidden");
    let res = app.delete(&format!("{members}/{}", acme.user_id), &admin).await;
    res.problem(403, "forbidden");

    // Developers and viewers read the list but change nothing.
    for token in [&dev, &viewer] {
        assert_eq!(app.get(&members, token).await.status, StatusCode::OK);
        let res = app
            .post(
                &members,
                Some(token),
                json!({"email": "x@acme.example", "role": "viewer"}),
            )
            .await;
        res.problem(403, "forbidden");
        let res = app
            .patch(&format!("{members}/{a1}"), token, json!({"role": "viewer"}))
            .await;
        res.problem(403, "forbidden");
        let res = app.delete(&format!("{members}/{a1}"), token).await;
        res.problem(403, "forbidden");
    }

    let res = app
        .patch(&format!("{members}/{a1}"), &admin, json!({"role": "developer"}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["role"], "developer");
    let res = app.delete(&format!("{members}/{a1}"), &admin).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let res = app.delete(&format!("{members}/{a1}"), &admin).await;
    res.problem(404, "not-found");

    // Anyone may leave.
    let me = app.get("/v1/me", &viewer).await;
    let viewer_id = me.str("/user/id");
    let res = app.delete(&format!("{members}/{viewer_id}"), &viewer).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let res = app.get(&members, &viewer).await;
    res.problem(404, "not-found");
}

#[tokio::test]
async fn the_last_owner_stays() {
    let app = TestApp::spawn().await;
    let acme = app.company("solo@acme.example").await;
    let members = format!("/v1/memberships/{}/members", acme.membership_id);
    let me = format!("{members}/{}", acme.user_id);
    app.patch(&me, &acme.token, json!({"role": "admin"}))
        .await
        .problem(409, "conflict");
    app.delete(&me, &acme.token).await.problem(409, "conflict");

    let second = app.staff(&acme, "second@acme.example", "owner").await;
    let res = app.patch(&me, &acme.token, json!({"role": "admin"})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let second_id = app.get("/v1/me", &second).await.str("/user/id");
    app.delete(&format!("{members}/{second_id}"), &second)
        .await
        .problem(409, "conflict");
}

#[tokio::test]
async fn member_input_is_validated() {
    let app = TestApp::spawn().await;
    let acme = app.company("strict@acme.example").await;
    let members = format!("/v1/memberships/{}/members", acme.membership_id);
    let res = app
        .post(&members, Some(&acme.token), json!({"email": "nope", "role": "viewer"}))
        .await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["email"]);
    let res = app
        .post(
            &members,
            Some(&acme.token),
            json!({"email": "x@acme.example", "role": "superuser"}),
        )
        .await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["role"]);
    app.post(
        &members,
        Some(&acme.token),
        json!({"email": "x@acme.example", "role": "viewer"}),
    )
    .await;
    let res = app
        .post(
            &members,
            Some(&acme.token),
            json!({"email": "x@acme.example", "role": "admin"}),
        )
        .await;
    res.problem(409, "conflict");
    let unknown = uuid::Uuid::now_v7();
    app.patch(&format!("{members}/{unknown}"), &acme.token, json!({"role": "viewer"}))
        .await
        .problem(404, "not-found");
}

#[tokio::test]
async fn individuals_and_api_keys_do_not_manage_staff() {
    let app = TestApp::spawn().await;
    let ada = app.individual("ada@example.org").await;
    let res = app
        .post(
            &format!("/v1/memberships/{}/members", ada.membership_id),
            Some(&ada.token),
            json!({"email": "x@example.org", "role": "viewer"}),
        )
        .await;
    res.problem(409, "conflict");

    let acme = app.company("keys@acme.example").await;
    let key = app.api_key(&acme, "admin").await;
    let members = format!("/v1/memberships/{}/members", acme.membership_id);
    assert_eq!(app.get(&members, &key).await.status, StatusCode::OK);
    let res = app
        .post(
            &members,
            Some(&key),
            json!({"email": "x@acme.example", "role": "viewer"}),
        )
        .await;
    res.problem(403, "forbidden");
    let res = app.delete(&format!("{members}/{}", acme.user_id), &key).await;
    res.problem(403, "forbidden");
}

/// Someone invited by two companies before having an account: each mail
/// carries a token that completes the account; the second company's token
/// joins that company.
#[tokio::test]
async fn an_unclaimed_invitee_can_complete_the_account_from_a_second_invitation() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let beta = app.company("owner@beta.example").await;
    for (company, role) in [(&acme, "viewer"), (&beta, "analyst")] {
        let res = app
            .post(
                &format!("/v1/memberships/{}/members", company.membership_id),
                Some(&company.token),
                json!({"email": "kim@example.org", "role": role}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    }
    // The two mails may arrive in either order: each names its company.
    let mails = app.wait_mails("kim@example.org", 2).await;
    let token_of = |company: &str| {
        let mail = mails.iter().find(|m| m.contains(company)).expect("a mail per company");
        vitalfarm_tests::mail_sink::tokens(mail, "vf_inv_").remove(0)
    };
    let (acme_token, beta_token) = (token_of("owner@acme.example's"), token_of("owner@beta.example's"));
    assert_ne!(acme_token, beta_token);
    let res = app
        .post(
            "/v1/auth/accept-invitation",
            None,
            json!({"invitation_token": beta_token, "password": PASSWORD, "display_name": "Kim"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["membership"]["id"], beta.membership_id.to_string());
    assert_eq!(res.body["user"]["email_verified"], true);
    let me = app.get("/v1/me", &res.str("/tokens/access_token")).await;
    let roles: Vec<(String, String)> = me.body["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        roles.contains(&(beta.membership_id.to_string(), "analyst".into())),
        "{roles:?}"
    );
    // The first company's token no longer completes anything.
    app.post(
        "/v1/auth/accept-invitation",
        None,
        json!({"invitation_token": acme_token, "password": PASSWORD, "display_name": "Again"}),
    )
    .await
    .problem(404, "not-found");
}
