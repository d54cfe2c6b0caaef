//! Consent-based sharing: a company reads an individual's data exactly
//! inside an active consent's subjects, metrics, paths and data period,
//! with receipts, and loses access on the request after revocation.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vitalfarm_tests::{Member, TestApp, self_subject};

fn ts(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn dependent(app: &TestApp, parent: &Member, name: &str) -> String {
    let res = app
        .post(
            &format!("/v1/memberships/{}/subjects", parent.membership_id),
            Some(&parent.token),
            json!({"kind": "dependent", "display_name": name, "birth_date": "2026-09-01"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.str("/id")
}

fn item_count(res: &vitalfarm_tests::Resp) -> usize {
    res.body["items"].as_array().map_or(0, Vec::len)
}

/// The scenario: heart rate of the infant for 30 days from a date.
#[tokio::test]
async fn a_company_reads_exactly_what_the_approved_request_covers_until_revoked() {
    let app = TestApp::spawn().await;
    let care = app.company("care@acme.example").await;
    let mom = app.individual("mom@example.org").await;
    let infant = dependent(&app, &mom, "Baby Ada").await;
    let me = self_subject(&app, &mom).await;
    let monitor = app.claimed_device(&mom, &infant, "INF-1").await;
    let watch = app.claimed_device(&mom, &me, "W-1").await;
    let now = Utc::now();
    let data_from = now - Duration::days(2);
    let old = now - Duration::days(5);
    let recent = now - Duration::hours(1);
    app.ingest(
        &monitor,
        json!([
            {"metric": "heart_rate", "ts": ts(old), "value": 140},
            {"metric": "heart_rate", "ts": ts(recent), "value": 132},
            {"metric": "blood_pressure", "ts": ts(recent), "components": {"systolic": 80, "diastolic": 50}},
        ]),
    )
    .await;
    app.ingest(&watch, json!([{"metric": "heart_rate", "ts": ts(recent), "value": 70}]))
        .await;

    // Before any consent the infant does not exist for the company.
    let hr = format!("/v1/subjects/{infant}/readings?metric=heart_rate");
    app.get(&hr, &care.token).await.problem(404, "not-found");

    let req = app
        .post(
            "/v1/consent-requests",
            Some(&care.token),
            json!({
                "individual_email": "Mom@Example.org",
                "metrics": ["heart_rate"],
                "purpose": "care",
                "access": "read",
                "duration": "P30D",
                "data_from": ts(data_from),
                "note": "Night-time heart rate."
            }),
        )
        .await;
    assert_eq!(req.status, StatusCode::CREATED, "{}", req.text);
    assert_eq!(req.body["status"], "pending");
    assert_eq!(req.body["direction"], "outgoing");
    let req_id = req.str("/id");

    // The individual sees it as incoming; the company as outgoing.
    let incoming = app.get("/v1/consent-requests?direction=incoming", &mom.token).await;
    assert_eq!(item_count(&incoming), 1, "{}", incoming.text);
    assert_eq!(
        incoming.body["items"][0]["requester_name"],
        "care@acme.example's company"
    );
    let outgoing = app.get("/v1/consent-requests", &care.token).await;
    assert_eq!(outgoing.body["items"][0]["direction"], "outgoing");
    // Nobody else sees it or can decide it.
    let stranger = app.individual("stranger@example.org").await;
    assert_eq!(item_count(&app.get("/v1/consent-requests", &stranger.token).await), 0);
    app.post(
        &format!("/v1/consent-requests/{req_id}/approve"),
        Some(&stranger.token),
        json!({"subject_ids": [infant]}),
    )
    .await
    .problem(404, "not-found");
    app.post(
        &format!("/v1/consent-requests/{req_id}/approve"),
        Some(&care.token),
        json!({"subject_ids": [infant]}),
    )
    .await
    .problem(404, "not-found");

    let approved = app
        .post(
            &format!("/v1/consent-requests/{req_id}/approve"),
            Some(&mom.token),
            json!({"subject_ids": [infant]}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.text);
    let consent = approved.str("/id");
    assert_eq!(approved.body["status"], "active");
    assert_eq!(approved.body["metrics"], json!(["heart_rate"]));
    let until = chrono::DateTime::parse_from_rfc3339(&approved.str("/valid_until")).unwrap();
    let days = (until.with_timezone(&Utc) - Utc::now()).num_hours();
    assert!((29 * 24..=30 * 24).contains(&days), "{days} hours");
    // Deciding twice is refused.
    app.post(
        &format!("/v1/consent-requests/{req_id}/deny"),
        Some(&mom.token),
        json!({}),
    )
    .await
    .problem(409, "conflict");

    // shared-with-me lists the infant under the consent.
    let shared = app.get("/v1/shared-with-me", &care.token).await;
    assert_eq!(shared.status, StatusCode::OK, "{}", shared.text);
    assert_eq!(shared.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(shared.body["items"][0]["consent_id"], consent.as_str());
    assert_eq!(shared.body["items"][0]["subjects"][0]["id"], infant.as_str());
    assert_eq!(shared.body["items"][0]["subjects"][0]["display_name"], "Baby Ada");

    // Exactly heart rate of the infant since data_from, with receipts.
    let read = app.get(&hr, &care.token).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.header("vitalfarm-consent"), Some(consent.as_str()));
    assert_eq!(read.body["consents"], json!([consent]));
    let items = read.body["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        1,
        "the reading before data_from is not shared: {}",
        read.text
    );
    assert_eq!(items[0]["value"], 132.0);
    let subject = app.get(&format!("/v1/subjects/{infant}"), &care.token).await;
    assert_eq!(subject.status, StatusCode::OK);
    assert_eq!(subject.header("vitalfarm-consent"), Some(consent.as_str()));
    let agg = app
        .get(
            &format!(
                "/v1/subjects/{infant}/readings/aggregate?metric=heart_rate&bucket=1d&from={}",
                ts(now - Duration::days(7)).replace('+', "%2B")
            ),
            &care.token,
        )
        .await;
    assert_eq!(agg.status, StatusCode::OK, "{}", agg.text);
    assert_eq!(agg.body["consents"], json!([consent]));
    let counted: u64 = agg.body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 1, "{}", agg.text);
    let summary = app.get(&format!("/v1/subjects/{infant}/summary"), &care.token).await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.text);
    assert_eq!(summary.body["consents"], json!([consent]));
    let metrics = summary.body["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 1, "only heart rate is summarised: {}", summary.text);
    assert_eq!(metrics[0]["metric"], "heart_rate");
    assert_eq!(metrics[0]["count"], 1);

    // The FHIR view holds the shared observations only.
    let fhir = app.get(&format!("/v1/subjects/{infant}/fhir"), &care.token).await;
    assert_eq!(fhir.status, StatusCode::OK, "{}", fhir.text);
    assert_eq!(fhir.header("vitalfarm-consent"), Some(consent.as_str()));
    let observations: Vec<&Value> = fhir.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .collect();
    assert_eq!(observations.len(), 1, "{}", fhir.text);
    assert_eq!(observations[0]["resource"]["code"]["coding"][0]["code"], "8867-4");
    app.get(
        &format!("/v1/subjects/{infant}/fhir?metric=blood_pressure"),
        &care.token,
    )
    .await
    .problem(403, "forbidden");

    // Not blood pressure, not the other subject.
    app.get(
        &format!("/v1/subjects/{infant}/readings?metric=blood_pressure"),
        &care.token,
    )
    .await
    .problem(403, "forbidden");
    app.get(&format!("/v1/subjects/{me}/readings?metric=heart_rate"), &care.token)
        .await
        .problem(404, "not-found");
    app.get(&format!("/v1/subjects/{me}"), &care.token)
        .await
        .problem(404, "not-found");
    // Her own reads carry no receipt.
    let own = app.get(&hr, &mom.token).await;
    assert_eq!(own.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(own.header("vitalfarm-consent"), None);
    assert_eq!(own.body["consents"], json!([]));
    // A company key reads the same; a stranger reads nothing.
    let key = app.api_key(&care, "analyst").await;
    assert_eq!(app.get(&hr, &key).await.status, StatusCode::OK);
    app.get(&hr, &stranger.token).await.problem(404, "not-found");

    // Only the grantor revokes.
    app.call(
        Method::DELETE,
        &format!("/v1/consents/{consent}"),
        Some(&care.token),
        None,
    )
    .await
    .problem(403, "forbidden");
    app.call(
        Method::DELETE,
        &format!("/v1/consents/{consent}"),
        Some(&stranger.token),
        None,
    )
    .await
    .problem(404, "not-found");
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/v1/consents/{consent}"),
            Some(&mom.token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(revoked.body["status"], "revoked");
    // The very next request is refused, everywhere.
    app.get(&hr, &care.token).await.problem(404, "not-found");
    app.get(&format!("/v1/subjects/{infant}"), &care.token)
        .await
        .problem(404, "not-found");
    app.get(&format!("/v1/subjects/{infant}/summary"), &care.token)
        .await
        .problem(404, "not-found");
    assert_eq!(item_count(&app.get("/v1/shared-with-me", &care.token).await), 0);
    // Her audit log shows every shared read with its consent, the refused
    // ones, and the consent's life; the chain is intact.
    let log = app
        .audit(mom.membership_id, &mom.token, &format!("consent_id={consent}&"))
        .await;
    let reads: Vec<&Value> = log.iter().filter(|e| e["action"] == "data.read").collect();
    assert!(reads.len() >= 6, "{log:?}");
    for e in &reads {
        assert_eq!(e["outcome"], "allowed");
        assert_eq!(e["actor"]["membership_id"], care.membership_id.to_string());
    }
    assert!(
        reads
            .iter()
            .any(|e| e["resource"] == format!("subject/{infant}/readings/heart_rate"))
    );
    assert!(
        reads
            .iter()
            .any(|e| e["resource"] == format!("subject/{infant}/summary"))
    );
    assert!(reads.iter().any(|e| e["actor"]["kind"] == "api_key"));
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(
        actions.contains(&"consent.granted") && actions.contains(&"consent.revoked"),
        "{actions:?}"
    );
    let denied = app.audit(mom.membership_id, &mom.token, "outcome=denied&").await;
    assert!(
        denied
            .iter()
            .any(|e| e["resource"] == format!("subject/{infant}/readings/blood_pressure")),
        "{denied:?}"
    );
    assert!(
        denied.iter().any(|e| e["resource"] == format!("subject/{me}")),
        "{denied:?}"
    );
    assert_eq!(app.audit_verify(mom.membership_id, &mom.token).await["ok"], true);
    // The company's own log has the request and the consent's life.
    let theirs = app.audit_actions(care.membership_id, &care.token).await;
    for action in ["consent.requested", "consent.granted", "consent.revoked"] {
        assert!(theirs.iter().any(|a| a == action), "{action}: {theirs:?}");
    }

    // Both parties still see the consent, revoked.
    let theirs = app.get(&format!("/v1/consents/{consent}"), &care.token).await;
    assert_eq!(theirs.body["status"], "revoked");
    let listed = app.get("/v1/consents?role=grantor", &mom.token).await;
    assert_eq!(listed.body["items"][0]["status"], "revoked");
    assert_eq!(item_count(&app.get("/v1/consents?role=grantor", &care.token).await), 0);
}

#[tokio::test]
async fn a_direct_grant_shares_folders_and_expires_by_itself() {
    let app = TestApp::spawn().await;
    let care = app.company("files@acme.example").await;
    let ann = app.individual("ann@example.org").await;
    for (path, body) in [("ecg/2026/a.csv", "1,2,3"), ("private/diary.txt", "secret")] {
        let res = app
            .upload(&ann.token, ann.farm_id, path, body.as_bytes().to_vec(), &[])
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    }
    let farm = ann.farm_id;
    let file = format!("/v1/farms/{farm}/files/ecg/2026/a.csv");
    app.get(&file, &care.token).await.problem(404, "not-found");

    let expires = Utc::now() + Duration::seconds(3);
    let grant = app
        .post(
            "/v1/consents",
            Some(&ann.token),
            json!({
                "grantee_membership_id": care.membership_id,
                "farm_paths": ["ecg"],
                "purpose": "service",
                "access": "read",
                "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            }),
        )
        .await;
    assert_eq!(grant.status, StatusCode::CREATED, "{}", grant.text);
    assert_eq!(grant.body["farm_paths"], json!(["/ecg/"]));
    assert_eq!(grant.body["grantor_farm_id"], farm.to_string());
    let consent = grant.str("/id");

    let (status, headers, body) = app.download(&care.token, farm, "ecg/2026/a.csv", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"1,2,3");
    assert_eq!(
        headers.get("vitalfarm-consent").and_then(|v| v.to_str().ok()),
        Some(consent.as_str())
    );
    app.get(&format!("/v1/farms/{farm}/files/private/diary.txt"), &care.token)
        .await
        .problem(403, "forbidden");
    // The root listing shows the way to the shared folder, nothing else.
    let root = app.get(&format!("/v1/farms/{farm}/list"), &care.token).await;
    assert_eq!(root.status, StatusCode::OK, "{}", root.text);
    let paths: Vec<&str> = root.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/ecg/"], "{}", root.text);
    assert_eq!(root.body["consents"], json!([consent]));
    app.get(&format!("/v1/farms/{farm}/list?prefix=/private/"), &care.token)
        .await
        .problem(403, "forbidden");
    // Reading never becomes writing, and the farm itself stays private.
    let put = app
        .upload(&care.token, farm, "ecg/2026/b.csv", b"x".to_vec(), &[])
        .await;
    put.problem(404, "not-found");
    app.get(&format!("/v1/farms/{farm}"), &care.token)
        .await
        .problem(404, "not-found");
    app.call(Method::DELETE, &file, Some(&care.token), None)
        .await
        .problem(404, "not-found");

    // Expiry needs no job: past `expires_at` the next read is refused.
    tokio::time::sleep((expires - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(200))
        .await;
    app.get(&file, &care.token).await.problem(404, "not-found");
    let c = app.get(&format!("/v1/consents/{consent}"), &ann.token).await;
    assert_eq!(c.body["status"], "expired");
}

#[tokio::test]
async fn consents_and_requests_refuse_bad_input_naming_the_field() {
    let app = TestApp::spawn().await;
    let care = app.company("strict@acme.example").await;
    let other_company = app.company("other@acme.example").await;
    let bob = app.individual("bob@example.org").await;
    let eve = app.individual("eve@example.org").await;
    let bobs = self_subject(&app, &bob).await;
    let eves = self_subject(&app, &eve).await;
    let expires = ts(Utc::now() + Duration::days(3));
    let grant = |body: Value| {
        let app = &app;
        let token = bob.token.clone();
        async move { app.post("/v1/consents", Some(&token), body).await }
    };
    let base = json!({
        "grantee_membership_id": care.membership_id, "subject_ids": [bobs],
        "metrics": ["heart_rate"], "purpose": "care", "access": "read", "expires_at": expires
    });
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("metrics", json!(["heart_rate", "mood"])), "metrics[1]"),
        (with("farm_paths", json!(["a/../b"])), "farm_paths[0]"),
        (with("subject_ids", json!([eves])), "subject_ids[0]"),
        (
            with("grantee_membership_id", json!(bob.membership_id)),
            "grantee_membership_id",
        ),
        (
            with("expires_at", json!(ts(Utc::now() - Duration::hours(1)))),
            "expires_at",
        ),
        (
            with("expires_at", json!(ts(Utc::now() + Duration::days(4000)))),
            "expires_at",
        ),
        (with("data_until", json!("2020-01-01T00:00:00Z")), "data_until"),
        (with("metrics", json!([])), "metrics"),
    ];
    for (mut body, field) in cases {
        if field == "data_until" {
            body["data_from"] = json!("2021-01-01T00:00:00Z");
        }
        let res = grant(body).await;
        res.problem(422, "validation-failed");
        assert_eq!(res.fields(), [field], "{}", res.text);
    }
    let res = grant(with("purpose", json!("marketing"))).await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["purpose"]);
    // Nothing was stored by any of them.
    assert_eq!(item_count(&app.get("/v1/consents", &bob.token).await), 0);

    let request = |body: Value| {
        let app = &app;
        let token = care.token.clone();
        async move { app.post("/v1/consent-requests", Some(&token), body).await }
    };
    let rbase = json!({"individual_email": "bob@example.org", "metrics": ["spo2"], "purpose": "research",
        "access": "read_export", "duration": "P2W"});
    for (k, v, field) in [
        ("individual_email", json!("not-an-email"), "individual_email"),
        ("duration", json!("30 days"), "duration"),
        ("duration", json!("P0D"), "duration"),
        ("metrics", json!(["ecg2"]), "metrics[0]"),
        ("membership_id", json!(other_company.membership_id), "membership_id"),
    ] {
        let mut b = rbase.clone();
        b[k] = v;
        let res = request(b).await;
        res.problem(422, "validation-failed");
        assert_eq!(res.fields(), [field], "{}", res.text);
    }
    // An individual cannot request; a viewer of the company cannot either.
    app.post("/v1/consent-requests", Some(&bob.token), rbase.clone())
        .await
        .problem(403, "forbidden");
    let viewer = app.staff(&care, "viewer@acme.example", "viewer").await;
    app.post("/v1/consent-requests", Some(&viewer), rbase.clone())
        .await
        .problem(403, "forbidden");

    // A request to an address with no account is accepted all the same.
    let ghost = request(json!({"individual_email": "nobody@example.org", "metrics": ["spo2"],
        "purpose": "care", "access": "read", "duration": "PT12H"}))
    .await;
    assert_eq!(ghost.status, StatusCode::CREATED, "{}", ghost.text);
    assert_eq!(ghost.body["duration"], "PT12H");

    // Denial is final; approving someone else's subject is refused.
    let r = request(rbase.clone()).await;
    let id = r.str("/id");
    app.post(
        &format!("/v1/consent-requests/{id}/approve"),
        Some(&bob.token),
        json!({"subject_ids": [eves]}),
    )
    .await
    .problem(422, "validation-failed");
    let denied = app
        .post(&format!("/v1/consent-requests/{id}/deny"), Some(&bob.token), json!({}))
        .await;
    assert_eq!(denied.body["status"], "denied", "{}", denied.text);
    app.post(
        &format!("/v1/consent-requests/{id}/approve"),
        Some(&bob.token),
        json!({"subject_ids": [bobs]}),
    )
    .await
    .problem(409, "conflict");
    let seen = app.get("/v1/consent-requests?status=denied", &care.token).await;
    assert_eq!(item_count(&seen), 1, "{}", seen.text);
    assert_eq!(item_count(&app.get("/v1/consents", &care.token).await), 0);
}

#[tokio::test]
async fn overlapping_consents_use_the_widest_and_each_read_names_it() {
    // Two consents for one subject: the wider data period wins, and each
    // read names the consent that permitted it.
    let app = TestApp::spawn().await;
    let care = app.company("two@acme.example").await;
    let kim = app.individual("kim@example.org").await;
    let subject = self_subject(&app, &kim).await;
    let device = app.claimed_device(&kim, &subject, "K-1").await;
    let now = Utc::now();
    app.ingest(
        &device,
        json!([
            {"metric": "spo2", "ts": ts(now - Duration::days(10)), "value": 97},
            {"metric": "spo2", "ts": ts(now - Duration::days(1)), "value": 95},
        ]),
    )
    .await;
    let grant = |data_from: chrono::DateTime<Utc>| {
        let app = &app;
        let token = kim.token.clone();
        let body = json!({"grantee_membership_id": care.membership_id, "subject_ids": [subject],
            "metrics": ["spo2"], "purpose": "care", "access": "read",
            "expires_at": ts(now + Duration::days(1)), "data_from": ts(data_from)});
        async move { app.post("/v1/consents", Some(&token), body).await.str("/id") }
    };
    let narrow = grant(now - Duration::days(2)).await;
    let wide = grant(now - Duration::days(30)).await;
    let read = app
        .get(&format!("/v1/subjects/{subject}/readings?metric=spo2"), &care.token)
        .await;
    assert_eq!(read.body["items"].as_array().unwrap().len(), 2, "{}", read.text);
    assert_eq!(read.body["consents"], json!([wide]));
    app.call(Method::DELETE, &format!("/v1/consents/{wide}"), Some(&kim.token), None)
        .await;
    let read = app
        .get(&format!("/v1/subjects/{subject}/readings?metric=spo2"), &care.token)
        .await;
    assert_eq!(read.body["items"].as_array().unwrap().len(), 1, "{}", read.text);
    assert_eq!(read.body["consents"], json!([narrow]));
}

#[tokio::test]
async fn erasing_an_individual_ends_its_consents_at_once_and_keeps_only_the_erasure_on_record() {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use vitalfarm_storage::entity::audit_event;
    let app = TestApp::spawn().await;
    let care = app.company("erasure@acme.example").await;
    let zoe = app.individual("zoe@example.org").await;
    let subject = self_subject(&app, &zoe).await;
    let device = app.claimed_device(&zoe, &subject, "Z-1").await;
    app.ingest(
        &device,
        json!([{"metric": "heart_rate", "ts": ts(Utc::now() - Duration::hours(2)), "value": 64}]),
    )
    .await;
    let consent = app
        .post(
            "/v1/consents",
            Some(&zoe.token),
            json!({"grantee_membership_id": care.membership_id, "subject_ids": [subject], "metrics": ["heart_rate"],
                "purpose": "care", "access": "read", "expires_at": ts(Utc::now() + Duration::days(30))}),
        )
        .await
        .str("/id");
    let hr = format!("/v1/subjects/{subject}/readings?metric=heart_rate");
    assert_eq!(app.get(&hr, &care.token).await.status, StatusCode::OK);
    assert!(
        app.audit(zoe.membership_id, &zoe.token, "action=data.read&")
            .await
            .len()
            >= 2
    );

    let res = app
        .call(
            Method::DELETE,
            &format!("/v1/memberships/{}", zoe.membership_id),
            Some(&zoe.token),
            Some(json!({"password": vitalfarm_tests::PASSWORD, "confirm": "zoe@example.org's individual"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);

    // The grantee loses access on its next request, and sees why.
    app.get(&hr, &care.token).await.problem(404, "not-found");
    let c = app.get(&format!("/v1/consents/{consent}"), &care.token).await;
    assert_eq!(c.body["status"], "revoked", "{}", c.text);
    let theirs = app
        .audit(care.membership_id, &care.token, "action=consent.revoked&")
        .await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["detail"]["reason"], "membership_erased");
    assert_eq!(app.audit_verify(care.membership_id, &care.token).await["ok"], true);
    // Of the erased membership's log, only the erasure itself remains.
    let left = audit_event::Entity::find()
        .filter(audit_event::Column::MembershipId.eq(zoe.membership_id))
        .all(app.db().conn())
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].action, "membership.erased");
    assert_eq!(left[0].seq, 1);
    assert_eq!(
        audit_event::Entity::find()
            .filter(audit_event::Column::Action.eq("data.read"))
            .count(app.db().conn())
            .await
            .unwrap(),
        0
    );
}

/// An export of all that is held: the individual's has its consents, its
/// audit chain and a FHIR bundle per subject; a company's holds shared
/// readings only under a `read_export` consent, and only what it covers.
#[tokio::test]
async fn exports_carry_consents_audit_fhir_and_only_exportable_shared_data() {
    use super::exports::{download, finished, request_export, unzip};
    let app = TestApp::spawn().await;
    let care = app.company("export@acme.example").await;
    let lab = app.company("export@lab.example").await;
    let ivy = app.individual("ivy@example.org").await;
    let subject = self_subject(&app, &ivy).await;
    let device = app.claimed_device(&ivy, &subject, "I-1").await;
    let now = Utc::now();
    app.ingest(
        &device,
        json!([
            {"metric": "heart_rate", "ts": ts(now - Duration::days(3)), "value": 61},
            {"metric": "heart_rate", "ts": ts(now - Duration::hours(3)), "value": 62},
            {"metric": "spo2", "ts": ts(now - Duration::hours(3)), "value": 98},
        ]),
    )
    .await;
    let grant = |grantee: uuid::Uuid, access: &str| {
        let app = &app;
        let token = ivy.token.clone();
        let body = json!({"grantee_membership_id": grantee, "subject_ids": [subject], "metrics": ["heart_rate"],
            "purpose": "research", "access": access, "expires_at": ts(now + Duration::days(1)),
            "data_from": ts(now - Duration::days(1))});
        async move { app.post("/v1/consents", Some(&token), body).await.str("/id") }
    };
    let exportable = grant(care.membership_id, "read_export").await;
    grant(lab.membership_id, "read").await;

    // The company with read_export gets exactly the covered readings.
    let id = request_export(&app, &care).await;
    let done = finished(&app, &care, id).await;
    assert_eq!(done.body["status"], "succeeded", "{}", done.text);
    let (status, _, bytes) = download(&app, &care.token, &done.str("/download_url"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let files = unzip(bytes);
    let shared = files
        .get(&format!("shared/{}/{subject}.ndjson", ivy.membership_id))
        .unwrap_or_else(|| panic!("{:?}", files.keys().collect::<Vec<_>>()));
    let lines: Vec<Value> = std::str::from_utf8(shared)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "only heart rate since data_from: {lines:?}");
    assert_eq!(lines[0]["value"], 62.0);
    let consents: Value = serde_json::from_slice(&files["consents.json"]).unwrap();
    assert_eq!(consents.as_array().unwrap().len(), 1);
    assert_eq!(consents[0]["id"], exportable.as_str());
    // The export of shared data is in Ivy's log.
    let exported = app.audit(ivy.membership_id, &ivy.token, "action=data.exported&").await;
    assert_eq!(exported.len(), 1, "{exported:?}");
    assert_eq!(exported[0]["consent_id"], exportable.as_str());

    let care_log = app.audit_actions(care.membership_id, &care.token).await;
    for action in ["export.requested", "export.downloaded"] {
        assert!(care_log.iter().any(|a| a == action), "{action}: {care_log:?}");
    }

    // A read-only consent never reaches an export.
    let id = request_export(&app, &lab).await;
    let done = finished(&app, &lab, id).await;
    let (_, _, bytes) = download(&app, &lab.token, &done.str("/download_url"), &[]).await;
    let files = unzip(bytes);
    assert!(
        !files.keys().any(|k| k.starts_with("shared/")),
        "{:?}",
        files.keys().collect::<Vec<_>>()
    );

    // The individual's own export: consents given, the audit chain, FHIR.
    let id = request_export(&app, &ivy).await;
    let done = finished(&app, &ivy, id).await;
    let (_, _, bytes) = download(&app, &ivy.token, &done.str("/download_url"), &[]).await;
    let files = unzip(bytes);
    let consents: Value = serde_json::from_slice(&files["consents.json"]).unwrap();
    assert_eq!(consents.as_array().unwrap().len(), 2);
    let audit: Vec<Value> = std::str::from_utf8(&files["audit.ndjson"])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(audit.iter().any(|e| e["action"] == "data.exported"));
    for pair in audit.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "the chain is whole");
    }
    let bundle: Value = serde_json::from_slice(&files[&format!("fhir/{subject}.json")]).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries[0]["resource"]["resourceType"], "Patient");
    assert_eq!(entries.len(), 4, "the patient and three observations: {bundle}");
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["counts"]["fhir_observations"], 3);
}

/// Every consent has its two parties' audit entries and outbound events
/// for each change it went through, every request its requester's entry,
/// and no audit entry names a consent that is not stored.
async fn assert_consents_and_audit_agree(app: &TestApp) {
    let consents = app.sql_count("SELECT COUNT(*) FROM consents").await;
    let revoked = app
        .sql_count("SELECT COUNT(*) FROM consents WHERE revoked_at_ms IS NOT NULL")
        .await;
    for (what, sql) in [
        (
            "consent without both consent.granted entries",
            "SELECT COUNT(*) FROM consents c WHERE (SELECT COUNT(*) FROM audit_events a \
             WHERE a.consent_id = c.id AND a.action = 'consent.granted') <> 2",
        ),
        (
            "revoked consent without both consent.revoked entries",
            "SELECT COUNT(*) FROM consents c WHERE c.revoked_at_ms IS NOT NULL AND (SELECT COUNT(*) \
             FROM audit_events a WHERE a.consent_id = c.id AND a.action = 'consent.revoked') <> 2",
        ),
        (
            "consent.revoked entry for a consent in force",
            "SELECT COUNT(*) FROM consents c WHERE c.revoked_at_ms IS NULL AND EXISTS (SELECT 1 \
             FROM audit_events a WHERE a.consent_id = c.id AND a.action = 'consent.revoked')",
        ),
        (
            "audit entry naming a consent that is not stored",
            "SELECT COUNT(*) FROM audit_events a WHERE a.consent_id IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM consents c WHERE c.id = a.consent_id)",
        ),
        (
            "approved request without its consent",
            "SELECT COUNT(*) FROM consent_requests r WHERE r.status = 'approved' \
             AND NOT EXISTS (SELECT 1 FROM consents c WHERE c.id = r.consent_id)",
        ),
    ] {
        assert_eq!(app.sql_count(sql).await, 0, "{what}");
    }
    let count = |sql: &'static str| app.sql_count(sql);
    assert_eq!(
        count("SELECT COUNT(*) FROM consent_requests").await,
        count("SELECT COUNT(*) FROM audit_events WHERE action = 'consent.requested'").await,
        "one consent.requested entry per request"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM consent_requests WHERE status = 'denied'").await,
        count("SELECT COUNT(*) FROM audit_events WHERE action = 'consent.request_denied'").await,
        "one consent.request_denied entry per denied request"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM events WHERE kind = 'consent.granted'").await,
        2 * consents,
        "one consent.granted event per party and consent"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM events WHERE kind = 'consent.revoked'").await,
        2 * revoked,
        "one consent.revoked event per party and revoked consent"
    );
}

/// Issue 14: a consent change is one unit of work. A failure injected
/// after the consent (or request) row is written and before its audit
/// entries and events leaves nothing of the change behind and answers a
/// problem document; the same change without the fault then succeeds.
#[tokio::test]
async fn a_consent_change_that_fails_midway_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    let care = app.company("unit@acme.example").await;
    let mom = app.individual("unit-mom@example.org").await;
    let infant = dependent(&app, &mom, "Baby Una").await;
    let me = self_subject(&app, &mom).await;
    let expires = ts(Utc::now() + Duration::days(30));
    let grant_body = json!({
        "grantee_membership_id": care.membership_id,
        "subject_ids": [me],
        "metrics": ["heart_rate"],
        "purpose": "care",
        "access": "read",
        "expires_at": expires,
    });
    let request_body = json!({
        "individual_email": "unit-mom@example.org",
        "metrics": ["heart_rate"],
        "purpose": "care",
        "access": "read",
        "duration": "P30D",
    });
    let count = |sql: &'static str| app.sql_count(sql);

    // Direct grant.
    app.fail_consent_changes_midway(true);
    app.post("/v1/consents", Some(&mom.token), grant_body.clone())
        .await
        .problem(500, "internal");
    assert_eq!(count("SELECT COUNT(*) FROM consents").await, 0);
    assert_consents_and_audit_agree(&app).await;

    // Request.
    app.post("/v1/consent-requests", Some(&care.token), request_body.clone())
        .await
        .problem(500, "internal");
    assert_eq!(count("SELECT COUNT(*) FROM consent_requests").await, 0);
    assert_consents_and_audit_agree(&app).await;
    app.fail_consent_changes_midway(false);
    let req = app
        .post("/v1/consent-requests", Some(&care.token), request_body.clone())
        .await;
    assert_eq!(req.status, StatusCode::CREATED, "{}", req.text);
    let req_id = req.str("/id");
    let other = app.post("/v1/consent-requests", Some(&care.token), request_body).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    let other_id = other.str("/id");

    // Approve and deny: the request stays pending, no consent appears.
    app.fail_consent_changes_midway(true);
    let approve = format!("/v1/consent-requests/{req_id}/approve");
    app.post(&approve, Some(&mom.token), json!({"subject_ids": [infant]}))
        .await
        .problem(500, "internal");
    let deny = format!("/v1/consent-requests/{other_id}/deny");
    app.post(&deny, Some(&mom.token), json!({}))
        .await
        .problem(500, "internal");
    assert_eq!(count("SELECT COUNT(*) FROM consents").await, 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM consent_requests WHERE status = 'pending'").await,
        2
    );
    assert_consents_and_audit_agree(&app).await;

    // Without the fault every change goes through, recorded in full.
    app.fail_consent_changes_midway(false);
    let approved = app
        .post(&approve, Some(&mom.token), json!({"subject_ids": [infant]}))
        .await;
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.text);
    let denied = app.post(&deny, Some(&mom.token), json!({})).await;
    assert_eq!(denied.status, StatusCode::OK, "{}", denied.text);
    assert_eq!(denied.body["status"], "denied");
    let granted = app.post("/v1/consents", Some(&mom.token), grant_body).await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.text);
    let consent = granted.str("/id");
    assert_eq!(count("SELECT COUNT(*) FROM consents").await, 2);
    assert_consents_and_audit_agree(&app).await;

    // Revoke: the consent stays in force.
    app.fail_consent_changes_midway(true);
    app.delete(&format!("/v1/consents/{consent}"), &mom.token)
        .await
        .problem(500, "internal");
    assert_eq!(
        count("SELECT COUNT(*) FROM consents WHERE revoked_at_ms IS NOT NULL").await,
        0
    );
    let still = app.get(&format!("/v1/consents/{consent}"), &mom.token).await;
    assert_eq!(still.body["status"], "active", "{}", still.text);
    assert_consents_and_audit_agree(&app).await;
    app.fail_consent_changes_midway(false);
    let revoked = app.delete(&format!("/v1/consents/{consent}"), &mom.token).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(revoked.body["status"], "revoked");
    assert_consents_and_audit_agree(&app).await;

    // Both chains are whole: the failed changes left no gap or stray link.
    for m in [&mom, &care] {
        assert_eq!(app.audit_verify(m.membership_id, &m.token).await["ok"], true);
    }
}
