//! Alert rules: each condition kind opens an alert from device readings
//! sent over HTTP ingest, one alert per rule and subject while the
//! condition persists, resolution, acknowledgement, silences found by the
//! due loop, rules over consented subjects, isolation and bad bodies.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use vitalfarm_storage::entity::event;
use vitalfarm_tests::{Member, MonitoredDevice, Resp, TestApp, self_subject};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct Setup {
    app: TestApp,
    ann: Member,
    me: String,
    watch: MonitoredDevice,
}

async fn setup_with(tweak: impl FnOnce(&mut vitalfarm_app::config::Config)) -> Setup {
    let app = TestApp::spawn_with(tweak).await;
    let ann = app.individual("ann@example.org").await;
    let me = self_subject(&app, &ann).await;
    let watch = app.claimed_device(&ann, &me, "W-1").await;
    Setup { app, ann, me, watch }
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

fn rules_url(m: &Member) -> String {
    format!("/v1/memberships/{}/alert-rules", m.membership_id)
}

fn alerts_url(m: &Member, query: &str) -> String {
    format!("/v1/memberships/{}/alerts{query}", m.membership_id)
}

async fn create_rule(app: &TestApp, m: &Member, body: Value) -> String {
    let res = app.post(&rules_url(m), Some(&m.token), body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.str("/id")
}

async fn alerts(app: &TestApp, m: &Member, query: &str) -> Vec<Value> {
    let res = app.get(&alerts_url(m, query), &m.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.body["items"].as_array().cloned().unwrap_or_default()
}

fn bp(t: DateTime<Utc>, systolic: f64) -> Value {
    json!({"metric": "blood_pressure", "ts": ts(t), "components": {"systolic": systolic, "diastolic": 80.0}})
}

async fn events_of(app: &TestApp, membership: uuid::Uuid, kind: &str) -> Vec<Value> {
    event::Entity::find()
        .filter(event::Column::MembershipId.eq(membership))
        .filter(event::Column::Kind.eq(kind))
        .all(app.db().conn())
        .await
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str(&e.payload).unwrap())
        .collect()
}

fn high_systolic() -> Value {
    json!({"name": "High systolic", "metric": "blood_pressure", "component": "systolic",
        "condition": {"kind": "threshold", "op": "gt", "value": 180}, "severity": "critical"})
}

#[tokio::test]
async fn a_threshold_opens_one_alert_while_it_persists_and_resolves_on_a_normal_reading() {
    let Setup { app, ann, me, watch } = setup().await;
    let rule = create_rule(&app, &ann, high_systolic()).await;
    let t0 = Utc::now() - Duration::minutes(30);

    app.ingest(&watch, json!([bp(t0, 120.0)])).await;
    assert!(
        alerts(&app, &ann, "").await.is_empty(),
        "a normal reading opens nothing"
    );

    // Three breaching readings, two in one request: one alert.
    app.ingest(&watch, json!([bp(t0 + Duration::minutes(1), 185.0)])).await;
    app.ingest(
        &watch,
        json!([
            bp(t0 + Duration::minutes(2), 190.0),
            bp(t0 + Duration::minutes(3), 195.0)
        ]),
    )
    .await;
    let items = alerts(&app, &ann, "").await;
    assert_eq!(items.len(), 1, "{items:?}");
    let a = &items[0];
    assert_eq!(a["status"], "open");
    assert_eq!(a["occurrences"], 3);
    assert_eq!(a["rule_id"], rule.as_str());
    assert_eq!(a["rule_name"], "High systolic");
    assert_eq!(a["subject_id"], me.as_str());
    assert_eq!(a["membership_id"], ann.membership_id.to_string());
    assert_eq!(a["metric"], "blood_pressure");
    assert_eq!(a["component"], "systolic");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["last_value"], 195.0);
    assert_eq!(a["trigger"]["kind"], "threshold");
    assert_eq!(a["trigger"]["value"], 185.0);
    assert_eq!(a["trigger"]["threshold"], 180.0);
    assert!(a["resolved_at"].is_null());

    let opened = events_of(&app, ann.membership_id, "alert.opened").await;
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["id"], a["id"]);
    assert_eq!(opened[0]["status"], "open");

    app.ingest(&watch, json!([bp(t0 + Duration::minutes(4), 150.0)])).await;
    let items = alerts(&app, &ann, "").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "resolved");
    assert_eq!(items[0]["last_value"], 150.0);
    assert!(items[0]["resolved_at"].is_string());
    let resolved = events_of(&app, ann.membership_id, "alert.resolved").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["status"], "resolved");

    // A new breach after resolution is a new alert.
    app.ingest(&watch, json!([bp(t0 + Duration::minutes(5), 200.0)])).await;
    assert_eq!(alerts(&app, &ann, "?status=open").await.len(), 1);
    assert_eq!(alerts(&app, &ann, "?status=resolved").await.len(), 1);
    assert_eq!(
        alerts(&app, &ann, &format!("?rule_id={rule}&subject_id={me}"))
            .await
            .len(),
        2
    );
    assert_eq!(
        alerts(&app, &ann, &format!("?rule_id={}", uuid::Uuid::now_v7()))
            .await
            .len(),
        0
    );
    app.get(&alerts_url(&ann, "?status=sleeping"), &ann.token)
        .await
        .problem(400, "invalid-parameter");

    // The rule itself reads back, in a list and alone.
    let res = app.get(&rules_url(&ann), &ann.token).await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 1, "{}", res.text);
    let res = app.get(&format!("{}/{rule}", rules_url(&ann)), &ann.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(
        res.body["condition"],
        json!({"kind": "threshold", "op": "gt", "value": 180.0})
    );
    assert!(res.body["subject_ids"].is_null());
    let actions = app.audit_actions(ann.membership_id, &ann.token).await;
    assert!(actions.iter().any(|a| a == "alert_rule.created"), "{actions:?}");
}

#[tokio::test]
async fn range_and_rate_of_change_rules_open_alerts() {
    let Setup { app, ann, me, watch } = setup().await;
    let range = create_rule(
        &app,
        &ann,
        json!({"name": "Fever", "metric": "body_temperature", "subject_ids": [me],
            "condition": {"kind": "range", "min": 36.0, "max": 38.0}, "severity": "warning"}),
    )
    .await;
    let rate = create_rule(
        &app,
        &ann,
        json!({"name": "Racing heart", "metric": "heart_rate",
            "condition": {"kind": "rate_of_change", "delta": 30, "per": "PT1H"}, "severity": "info"}),
    )
    .await;
    let t0 = Utc::now() - Duration::hours(3);
    app.ingest(
        &watch,
        json!([
            {"metric": "body_temperature", "ts": ts(t0), "value": 37.0},
            {"metric": "heart_rate", "ts": ts(t0), "value": 60.0},
            // 2 hours later: too far from the first to compare.
            {"metric": "heart_rate", "ts": ts(t0 + Duration::hours(2)), "value": 120.0},
        ]),
    )
    .await;
    assert!(alerts(&app, &ann, "").await.is_empty());

    app.ingest(
        &watch,
        json!([
            {"metric": "body_temperature", "ts": ts(t0 + Duration::hours(2)), "value": 39.2},
            {"metric": "heart_rate", "ts": ts(t0 + Duration::minutes(130)), "value": 80.0},
        ]),
    )
    .await;
    let fever = alerts(&app, &ann, &format!("?rule_id={range}")).await;
    assert_eq!(fever.len(), 1, "{fever:?}");
    assert_eq!(
        fever[0]["trigger"],
        json!({"kind": "range", "value": 39.2, "min": 36.0, "max": 38.0})
    );
    assert!(fever[0]["component"].is_null());
    let racing = alerts(&app, &ann, &format!("?rule_id={rate}")).await;
    assert_eq!(racing.len(), 1, "{racing:?}");
    assert_eq!(racing[0]["trigger"]["kind"], "rate_of_change");
    assert_eq!(racing[0]["trigger"]["previous_value"], 120.0);
    assert_eq!(racing[0]["trigger"]["change"], -40.0);
    assert_eq!(racing[0]["severity"], "info");

    // A small change resolves the rate alert; the fever persists.
    app.ingest(
        &watch,
        json!([{"metric": "heart_rate", "ts": ts(t0 + Duration::minutes(135)), "value": 85.0}]),
    )
    .await;
    assert_eq!(
        alerts(&app, &ann, &format!("?rule_id={rate}")).await[0]["status"],
        "resolved"
    );
    assert_eq!(
        alerts(&app, &ann, &format!("?rule_id={range}")).await[0]["status"],
        "open"
    );

    // Deleting the range rule resolves its alert, which stays listed.
    let res = app.delete(&format!("{}/{range}", rules_url(&ann)), &ann.token).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    assert_eq!(
        alerts(&app, &ann, &format!("?rule_id={range}")).await[0]["status"],
        "resolved"
    );
    app.get(&format!("{}/{range}", rules_url(&ann)), &ann.token)
        .await
        .problem(404, "not-found");
    app.delete(&format!("{}/{range}", rules_url(&ann)), &ann.token)
        .await
        .problem(404, "not-found");
    let actions = app.audit_actions(ann.membership_id, &ann.token).await;
    assert!(actions.iter().any(|a| a == "alert_rule.deleted"), "{actions:?}");
}

async fn ack(app: &TestApp, id: &str, token: &str) -> Resp {
    app.call(Method::POST, &format!("/v1/alerts/{id}/ack"), Some(token), None)
        .await
}

#[tokio::test]
async fn an_alert_is_acknowledged_once_and_not_after_it_resolved() {
    let Setup { app, ann, watch, .. } = setup().await;
    create_rule(&app, &ann, high_systolic()).await;
    let t0 = Utc::now() - Duration::minutes(10);
    app.ingest(&watch, json!([bp(t0, 200.0)])).await;
    let id = alerts(&app, &ann, "").await[0]["id"].as_str().unwrap().to_owned();

    let stranger = app.individual("eve@example.org").await;
    ack(&app, &id, &stranger.token).await.problem(404, "not-found");
    ack(&app, &uuid::Uuid::now_v7().to_string(), &ann.token)
        .await
        .problem(404, "not-found");
    ack(&app, "not-a-uuid", &ann.token)
        .await
        .problem(400, "invalid-parameter");

    let first = ack(&app, &id, &ann.token).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["status"], "acknowledged");
    assert_eq!(first.body["acknowledged_by"], ann.user_id.to_string());
    let again = ack(&app, &id, &ann.token).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["acknowledged_at"], first.body["acknowledged_at"]);

    // Still live: a breach counts, a normal reading resolves it.
    app.ingest(&watch, json!([bp(t0 + Duration::minutes(1), 190.0)])).await;
    let a = &alerts(&app, &ann, "").await[0];
    assert_eq!(
        (a["status"].as_str(), a["occurrences"].as_i64()),
        (Some("acknowledged"), Some(2))
    );
    app.ingest(&watch, json!([bp(t0 + Duration::minutes(2), 130.0)])).await;
    assert_eq!(alerts(&app, &ann, "").await[0]["status"], "resolved");
    ack(&app, &id, &ann.token).await.problem(409, "conflict");
    let actions = app.audit_actions(ann.membership_id, &ann.token).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "alert.acknowledged").count(),
        1,
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_silence_rule_opens_after_its_duration_and_resolves_when_data_returns() {
    let Setup { app, ann, me, watch } = setup_with(|c| c.alert_due_interval_ms = 100).await;
    let rule = create_rule(
        &app,
        &ann,
        json!({"name": "Quiet", "subject_ids": [me],
            "condition": {"kind": "no_data", "for": "PT2S"}, "severity": "warning"}),
    )
    .await;
    // Poll (no timing assertion): the due loop opens it some time after 2 s.
    let mut opened = Vec::new();
    for _ in 0..300 {
        opened = alerts(&app, &ann, "?status=open").await;
        if !opened.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(opened.len(), 1, "the silence alert opened");
    assert_eq!(opened[0]["rule_id"], rule.as_str());
    assert_eq!(opened[0]["trigger"]["kind"], "no_data");
    assert_eq!(opened[0]["trigger"]["for"], "PT2S");
    assert!(opened[0]["metric"].is_null());
    assert_eq!(events_of(&app, ann.membership_id, "alert.opened").await.len(), 1);

    app.ingest(
        &watch,
        json!([{"metric": "heart_rate", "ts": ts(Utc::now() - Duration::milliseconds(10)), "value": 70.0}]),
    )
    .await;
    let items = alerts(&app, &ann, "").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "resolved");
    assert_eq!(events_of(&app, ann.membership_id, "alert.resolved").await.len(), 1);
}

#[tokio::test]
async fn a_company_rule_over_a_consented_subject_fires_until_the_consent_is_revoked() {
    let Setup { app, ann, me, watch } = setup().await;
    let care = app.company("care@acme.example").await;

    // Not shared yet: the subject cannot be named.
    let mut body = high_systolic();
    body["subject_ids"] = json!([me]);
    let res = app.post(&rules_url(&care), Some(&care.token), body.clone()).await;
    res.problem(422, "validation-failed");
    assert_eq!(res.fields(), ["subject_ids[0]"]);

    let consent = app
        .grant_consent(&ann, &care, &[&me], &["blood_pressure"], "care")
        .await;
    // A rule on a metric the consent does not cover is refused.
    let res = app
        .post(
            &rules_url(&care),
            Some(&care.token),
            json!({"name": "HR", "metric": "heart_rate", "subject_ids": [me],
                "condition": {"kind": "threshold", "op": "gt", "value": 150}, "severity": "info"}),
        )
        .await;
    assert_eq!(res.fields(), ["subject_ids[0]"], "{}", res.text);
    let rule = create_rule(&app, &care, body).await;

    let t0 = Utc::now() - Duration::minutes(20);
    app.ingest(&watch, json!([bp(t0, 200.0)])).await;
    let items = alerts(&app, &care, "").await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["rule_id"], rule.as_str());
    assert_eq!(items[0]["membership_id"], care.membership_id.to_string());
    assert_eq!(items[0]["subject_id"], me.as_str());
    assert!(alerts(&app, &ann, "").await.is_empty(), "the rule is the company's");
    assert_eq!(events_of(&app, care.membership_id, "alert.opened").await.len(), 1);
    assert!(events_of(&app, ann.membership_id, "alert.opened").await.is_empty());
    app.ingest(&watch, json!([bp(t0 + Duration::minutes(1), 120.0)])).await;
    assert_eq!(alerts(&app, &care, "").await[0]["status"], "resolved");

    let res = app
        .call(
            Method::DELETE,
            &format!("/v1/consents/{consent}"),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    app.ingest(&watch, json!([bp(t0 + Duration::minutes(2), 210.0)])).await;
    let items = alerts(&app, &care, "").await;
    assert_eq!(items.len(), 1, "no alert after revocation: {items:?}");
    assert_eq!(items[0]["status"], "resolved");

    // Erasing Ann takes her rules and the company's alerts about her.
    create_rule(&app, &ann, high_systolic()).await;
    app.ingest(&watch, json!([bp(t0 + Duration::minutes(3), 220.0)])).await;
    assert_eq!(alerts(&app, &ann, "").await.len(), 1);
    let res = app
        .call(
            Method::DELETE,
            &format!("/v1/memberships/{}", ann.membership_id),
            Some(&ann.token),
            Some(json!({"password": vitalfarm_tests::PASSWORD, "confirm": "ann@example.org's individual"})),
        )
        .await;
    assert!(res.status.is_success(), "{}", res.text);
    assert!(alerts(&app, &care, "").await.is_empty());
    let rows = vitalfarm_storage::entity::alert::Entity::find()
        .all(app.db().conn())
        .await
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    let rules = vitalfarm_storage::entity::alert_rule::Entity::find()
        .filter(vitalfarm_storage::entity::alert_rule::Column::MembershipId.eq(ann.membership_id))
        .all(app.db().conn())
        .await
        .unwrap();
    assert!(rules.is_empty(), "{rules:?}");
}

#[tokio::test]
async fn other_memberships_see_neither_rules_nor_alerts() {
    let Setup { app, ann, watch, .. } = setup().await;
    let rule = create_rule(&app, &ann, high_systolic()).await;
    app.ingest(&watch, json!([bp(Utc::now() - Duration::minutes(1), 200.0)]))
        .await;
    let alert = alerts(&app, &ann, "").await[0]["id"].as_str().unwrap().to_owned();
    let rival = app.company("owner@rival.example").await;
    let key = app.api_key(&rival, "admin").await;
    for token in [&rival.token, &key] {
        app.get(&rules_url(&ann), token).await.problem(404, "not-found");
        app.get(&format!("{}/{rule}", rules_url(&ann)), token)
            .await
            .problem(404, "not-found");
        app.delete(&format!("{}/{rule}", rules_url(&ann)), token)
            .await
            .problem(404, "not-found");
        app.get(&alerts_url(&ann, ""), token).await.problem(404, "not-found");
        app.post(&rules_url(&ann), Some(token), high_systolic())
            .await
            .problem(404, "not-found");
        ack(&app, &alert, token).await.problem(404, "not-found");
        // Their own lists do not show Ann's.
        let res = app
            .get(&format!("/v1/memberships/{}/alerts", rival.membership_id), token)
            .await;
        assert_eq!(res.body["items"], json!([]), "{}", res.text);
    }
    assert_eq!(alerts(&app, &ann, "").await[0]["status"], "open");
}

#[tokio::test]
async fn bad_rules_are_refused_naming_the_field() {
    let Setup { app, ann, .. } = setup().await;
    let cases = [
        (
            json!({"name": "", "metric": "blood_pressure", "component": "systolic",
                "condition": {"kind": "threshold", "op": "gt", "value": 180}, "severity": "loud"}),
            vec!["name", "severity"],
        ),
        (
            json!({"name": "x", "metric": "blood_pressure",
                "condition": {"kind": "threshold", "op": "over", "value": 180}, "severity": "info"}),
            vec!["condition.op", "component"],
        ),
        (
            json!({"name": "x", "metric": "no_such_metric",
                "condition": {"kind": "range", "min": 3, "max": 1}, "severity": "info"}),
            vec!["condition.max", "metric"],
        ),
        (
            json!({"name": "x", "condition": {"kind": "no_data", "for": "forever"}, "severity": "info"}),
            vec!["condition.for"],
        ),
        (
            json!({"name": "x", "metric": "heart_rate",
                "condition": {"kind": "rate_of_change", "delta": 0, "per": "PT1H"}, "severity": "info"}),
            vec!["condition.delta"],
        ),
        (
            json!({"name": "x", "metric": "heart_rate", "condition": {"kind": "often"}, "severity": "info"}),
            vec!["condition.kind"],
        ),
        (
            json!({"name": "x", "metric": "heart_rate", "subject_ids": [],
                "condition": {"kind": "threshold", "op": "gt", "value": 1}, "severity": "info"}),
            vec!["subject_ids"],
        ),
        (
            json!({"name": "x", "metric": "heart_rate", "subject_ids": [uuid::Uuid::now_v7()],
                "condition": {"kind": "threshold", "op": "gt", "value": 1}, "severity": "info"}),
            vec!["subject_ids[0]"],
        ),
    ];
    for (body, fields) in cases {
        let res = app.post(&rules_url(&ann), Some(&ann.token), body.clone()).await;
        res.problem(422, "validation-failed");
        assert_eq!(res.fields(), fields, "{body}: {}", res.text);
    }
    // The shape itself: a missing field or a wrong type.
    let res = app
        .post(
            &rules_url(&ann),
            Some(&ann.token),
            json!({"name": "x", "severity": "info"}),
        )
        .await;
    assert!(res.status.is_client_error(), "{}", res.text);
    assert!(res.text.contains("condition"), "{}", res.text);
    let res = app.get(&rules_url(&ann), &ann.token).await;
    assert_eq!(res.body["items"], json!([]), "nothing was stored");
}
