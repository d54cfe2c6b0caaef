//! Mashups: the catalog, the elderly watch of a company's enrollees and
//! consenting individuals, and the infant monitor, all through the
//! consent-aware read path (404 for a stranger, receipts when shared,
//! data.read in the grantor's audit log).

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_tests::{Member, MonitoredDevice, TestApp, self_subject};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn enc(t: DateTime<Utc>) -> String {
    ts(t).replace(':', "%3A").replace('+', "%2B")
}

/// Heart rate every 10 minutes over `[from, to]`.
async fn regular(app: &TestApp, device: &MonitoredDevice, from: DateTime<Utc>, to: DateTime<Utc>, bpm: f64) {
    let mut readings = Vec::new();
    let mut t = from;
    while t <= to {
        readings.push(json!({"metric": "heart_rate", "ts": ts(t), "value": bpm}));
        t += Duration::minutes(10);
    }
    app.ingest(device, Value::Array(readings)).await;
}

async fn bp(app: &TestApp, device: &MonitoredDevice, at: DateTime<Utc>, systolic: f64, diastolic: f64) {
    app.ingest(
        device,
        json!([{"metric": "blood_pressure", "ts": ts(at), "components": {"systolic": systolic, "diastolic": diastolic}}]),
    )
    .await;
}

async fn consent(app: &TestApp, grantor: &Member, grantee: &Member, subject: &str, purpose: &str) -> String {
    app.grant_consent(grantor, grantee, &[subject], &["heart_rate", "blood_pressure"], purpose)
        .await
}

fn line<'a>(board: &'a Value, subject: &str) -> &'a Value {
    board["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject_id"] == subject)
        .unwrap_or_else(|| panic!("{subject} not on the board: {board}"))
}

fn on_board(board: &Value, subject: &str) -> bool {
    board["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["subject_id"] == subject)
}

#[tokio::test]
async fn the_catalog_lists_every_mashup() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let res = app.get("/v1/mashups", &ann.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let names: Vec<&str> = res.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["elderly-watch", "infant-monitor", "ecg", "correlation", "cohort"]
    );
    let watch = &res.body["items"][0];
    assert_eq!(watch["method"], "POST");
    assert_eq!(watch["path"], "/v1/mashups/elderly-watch/run");
    assert_eq!(watch["scope"], "analytics.read");
    assert!(
        watch["datasets"]
            .as_array()
            .unwrap()
            .contains(&json!("blood-pressure-categories"))
    );
    assert_eq!(res.body["items"][2]["path"], "/v1/subjects/{sid}/ecg/analyze");
    let anonymous = app.call(reqwest::Method::GET, "/v1/mashups", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn elderly_watch_judges_enrollees_and_care_consents_with_reasons() {
    let app = TestApp::spawn().await;
    let home = app.company("home@care.example").await;
    let now = Utc::now();
    let url = "/v1/mashups/elderly-watch/run";

    // Crisis: regular heart rate, then a blood pressure above 180.
    let crisis = app.monitored_device(&home, "E-1").await;
    regular(
        &app,
        &crisis,
        now - Duration::hours(3),
        now - Duration::minutes(5),
        72.0,
    )
    .await;
    let crisis_at = now - Duration::minutes(4);
    bp(&app, &crisis, crisis_at, 192.0, 104.0).await;
    // Silent: every 10 minutes for hours, nothing for the last five.
    let silent = app.monitored_device(&home, "E-2").await;
    regular(&app, &silent, now - Duration::hours(10), now - Duration::hours(5), 70.0).await;
    // Fine.
    let fine = app.monitored_device(&home, "E-3").await;
    regular(&app, &fine, now - Duration::hours(3), now - Duration::minutes(2), 68.0).await;
    bp(&app, &fine, now - Duration::minutes(3), 118.0, 76.0).await;

    // Dan shares for care, Eve for research only.
    let dan = app.individual("dan@example.org").await;
    let dan_self = self_subject(&app, &dan).await;
    let dan_watch = app.claimed_device(&dan, &dan_self, "D-1").await;
    regular(
        &app,
        &dan_watch,
        now - Duration::hours(2),
        now - Duration::minutes(1),
        66.0,
    )
    .await;
    let care = consent(&app, &dan, &home, &dan_self, "care").await;
    let eve = app.individual("eve@example.org").await;
    let eve_self = self_subject(&app, &eve).await;
    let eve_watch = app.claimed_device(&eve, &eve_self, "V-1").await;
    regular(
        &app,
        &eve_watch,
        now - Duration::hours(2),
        now - Duration::minutes(1),
        66.0,
    )
    .await;
    consent(&app, &eve, &home, &eve_self, "research").await;

    // No body at all: every watched subject, judged now.
    let res = app.call(reqwest::Method::POST, url, Some(&home.token), None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let board = &res.body;
    assert_eq!(
        board["summary"],
        json!({"ok": 2, "attention": 0, "emergency": 2}),
        "{board}"
    );
    assert_eq!(board["membership_id"], home.membership_id.to_string());
    assert_eq!(board["lookback"], "PT24H");
    let statuses: Vec<&str> = board["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["emergency", "emergency", "ok", "ok"], "emergencies first");

    let c = line(board, &crisis.subject);
    assert_eq!(c["status"], "emergency");
    assert_eq!(c["display_name"], "Wearer of E-1");
    let reason = &c["reasons"][0];
    assert_eq!(reason["rule"], "bp_category");
    assert_eq!(reason["status"], "emergency");
    assert_eq!(reason["category"], "hypertensive_crisis");
    assert_eq!(reason["values"], json!({"systolic": 192.0, "diastolic": 104.0}));
    assert_eq!(reason["at"], ts(crisis_at));
    assert_eq!(reason["dataset"]["name"], "blood-pressure-categories");
    assert_eq!(reason["dataset"]["source"], "acc-aha-2017");
    assert_eq!(c["reasons"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(c["inputs"]["blood_pressure"]["systolic"], 192.0);
    assert_eq!(c["inputs"]["heart_rate"]["value"], 72.0);
    assert_eq!(c["inputs"]["expected_gap_seconds"], 600);

    let s = line(board, &silent.subject);
    let reason = &s["reasons"][0];
    assert_eq!(reason["rule"], "inactivity", "{s}");
    assert_eq!(reason["status"], "emergency");
    assert_eq!(reason["values"]["threshold_seconds"], 3600.0);
    assert!(reason["values"]["silent_seconds"].as_f64().unwrap() >= 5.0 * 3600.0 - 1.0);
    assert_eq!(s["inputs"]["last_reading_at"], ts(now - Duration::hours(5)));
    assert_eq!(s["inputs"]["expected_gap_seconds"], 600);

    let f = line(board, &fine.subject);
    assert_eq!(
        (f["status"].as_str(), f["reasons"].as_array().unwrap().len()),
        (Some("ok"), 0)
    );
    let d = line(board, &dan_self);
    assert_eq!(d["status"], "ok");
    assert_eq!(d["membership_id"], dan.membership_id.to_string());
    assert!(
        !on_board(board, &eve_self),
        "a research consent does not put Eve on the board"
    );
    assert_eq!(board["consents"], json!([care]));
    assert_eq!(res.header("vitalfarm-consent"), Some(care.as_str()));
    assert!(
        app.audit_actions(dan.membership_id, &dan.token)
            .await
            .contains(&"data.read".to_owned())
    );

    // Three hours later the fine one has gone silent too (attention: more
    // than an hour, at most two).
    let later = now + Duration::minutes(90);
    let res = app
        .post(
            url,
            Some(&home.token),
            json!({"at": ts(later), "subject_ids": [fine.subject], "lookback": "PT6H"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["subjects"].as_array().unwrap().len(), 1);
    let f = &res.body["subjects"][0];
    assert_eq!(f["status"], "attention", "{f}");
    assert_eq!(f["reasons"][0]["rule"], "inactivity");
    assert_eq!(res.body["consents"], json!([]));
    assert!(res.header("vitalfarm-consent").is_none());

    // Revoked: Dan is no longer watched.
    let res = app.delete(&format!("/v1/consents/{care}"), &dan.token).await;
    assert!(res.status.is_success(), "{}", res.text);
    let res = app.post(url, Some(&home.token), json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert!(!on_board(&res.body, &dan_self));
    assert_eq!(res.body["subjects"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn elderly_watch_refuses_bad_input_and_strangers() {
    let app = TestApp::spawn().await;
    let home = app.company("home@care.example").await;
    let other = app.company("other@care.example").await;
    let theirs = app.monitored_device(&other, "O-1").await;
    let url = "/v1/mashups/elderly-watch/run";
    for (body, field) in [
        (json!({"lookback": "24 hours"}), "lookback"),
        (json!({"lookback": "PT9000H"}), "lookback"),
        (json!({"subject_ids": []}), "subject_ids"),
        (json!({"at": "yesterday"}), "at"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let res = app.post(url, Some(&home.token), body.clone()).await;
        assert!(res.status.is_client_error(), "{body}: {}", res.text);
        assert_eq!(res.fields(), [field], "{body}: {}", res.text);
    }
    // Another company's membership or subject: 404, as if absent.
    let res = app
        .post(url, Some(&home.token), json!({"membership_id": other.membership_id}))
        .await;
    res.problem(404, "not-found");
    let res = app
        .post(url, Some(&home.token), json!({"subject_ids": [theirs.subject]}))
        .await;
    res.problem(404, "not-found");
    // An individual watches nobody.
    let ann = app.individual("ann@example.org").await;
    app.post(url, Some(&ann.token), json!({}))
        .await
        .problem(403, "forbidden");
    // An empty company: an empty board.
    let res = app.post(url, Some(&home.token), json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["summary"], json!({"ok": 0, "attention": 0, "emergency": 0}));
}

/// A parent with a baby of 200 days, its temperature monitor and pulse
/// oximeter, and a fever between two normal temperatures.
struct Nursery {
    app: TestApp,
    parent: Member,
    baby: String,
    fever_start: DateTime<Utc>,
}

async fn nursery() -> Nursery {
    let app = TestApp::spawn().await;
    let parent = app.individual("pat@example.org").await;
    let born = (Utc::now() - Duration::days(200)).date_naive();
    let res = app
        .post(
            &format!("/v1/memberships/{}/subjects", parent.membership_id),
            Some(&parent.token),
            json!({"kind": "dependent", "display_name": "Baby", "birth_date": born.to_string()}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let baby = res.str("/id");
    let monitor = app.claimed_device(&parent, &baby, "B-1").await;
    let t0 = Utc::now() - Duration::hours(3);
    let temps = [37.0, 38.2, 39.4, 38.6, 37.1, 36.9];
    let mut readings: Vec<Value> = temps
        .iter()
        .enumerate()
        .map(
            |(i, c)| json!({"metric": "body_temperature", "ts": ts(t0 + Duration::minutes(10 * i as i64)), "value": c}),
        )
        .collect();
    for (i, s) in [97.0, 99.0, 98.0, 96.0].iter().enumerate() {
        readings.push(json!({"metric": "spo2", "ts": ts(t0 + Duration::minutes(10 * i as i64 + 1)), "value": s}));
    }
    readings.push(json!({"metric": "heart_rate", "ts": ts(t0 + Duration::minutes(2)), "value": 130}));
    app.ingest(&monitor, Value::Array(readings)).await;
    Nursery {
        app,
        parent,
        baby,
        fever_start: t0 + Duration::minutes(10),
    }
}

#[tokio::test]
async fn infant_monitor_finds_fever_episodes_and_spo2_statistics() {
    let n = nursery().await;
    let res = n
        .app
        .get(&format!("/v1/mashups/infant-monitor/{}", n.baby), &n.parent.token)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let b = &res.body;
    assert_eq!(b["age_days"], 200);
    assert_eq!(b["episodes"].as_array().unwrap().len(), 1, "{b}");
    let e = &b["episodes"][0];
    assert_eq!(e["metric"], "temperature");
    assert_eq!(e["kind"], "fever");
    assert_eq!(e["start"], ts(n.fever_start));
    assert_eq!(e["end"], ts(n.fever_start + Duration::minutes(20)));
    assert_eq!(
        e["worst"],
        json!({"value": 39.4, "at": ts(n.fever_start + Duration::minutes(10))})
    );
    assert_eq!(e["readings"], 3);
    let spo2 = &b["metrics"]["spo2"];
    assert_eq!(spo2["count"], 4);
    assert_eq!((spo2["min"].as_f64(), spo2["max"].as_f64()), (Some(96.0), Some(99.0)));
    assert_eq!(spo2["mean"], 97.5);
    assert_eq!(spo2["p50"], 97.0);
    assert_eq!(spo2["out_of_range_share"], 0.0);
    assert_eq!(spo2["norm"]["low"], 90.0);
    assert_eq!(spo2["norm"]["band"], "child");
    assert_eq!(spo2["norm"]["dataset"], "vital-sign-ranges");
    let temp = &b["metrics"]["temperature"];
    assert_eq!(temp["metric"], "body_temperature");
    assert_eq!(temp["out_of_range_share"], 0.5);
    assert_eq!(temp["norm"]["dataset"], "temperature-thresholds");
    let hr = &b["metrics"]["heart_rate"];
    assert_eq!(
        (hr["count"].as_u64(), hr["norm"]["band"].as_str()),
        (Some(1), Some("infant"))
    );
    assert_eq!(b["consents"], json!([]));

    // A period before the fever: no episode.
    let to = n.fever_start - Duration::minutes(5);
    let res = n
        .app
        .get(
            &format!("/v1/mashups/infant-monitor/{}?to={}", n.baby, enc(to)),
            &n.parent.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["episodes"], json!([]));
    assert_eq!(res.body["metrics"]["temperature"]["count"], 1);
}

#[tokio::test]
async fn infant_monitor_is_shared_by_consent_and_hidden_from_strangers() {
    let n = nursery().await;
    let url = format!("/v1/mashups/infant-monitor/{}", n.baby);
    let clinic = n.app.company("clinic@example.org").await;
    n.app.get(&url, &clinic.token).await.problem(404, "not-found");
    let consent = n
        .app
        .grant_consent(&n.parent, &clinic, &[&n.baby], &["body_temperature"], "care")
        .await;
    let res = n.app.get(&url, &clinic.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["consents"], json!([consent]));
    assert_eq!(res.header("vitalfarm-consent"), Some(consent.as_str()));
    assert_eq!(res.body["metrics"]["temperature"]["shared"], true);
    assert_eq!(res.body["metrics"]["spo2"]["shared"], false);
    assert_eq!(res.body["metrics"]["spo2"]["count"], 0);
    assert_eq!(res.body["episodes"][0]["kind"], "fever");
    let actions = n.app.audit_actions(n.parent.membership_id, &n.parent.token).await;
    assert!(actions.contains(&"data.read".to_owned()), "{actions:?}");
}

#[tokio::test]
async fn infant_monitor_rejects_bad_parameters_by_name() {
    let n = nursery().await;
    let now = Utc::now();
    let me = self_subject(&n.app, &n.parent).await;
    let base = format!("/v1/mashups/infant-monitor/{}", n.baby);
    let cases = [
        (
            format!("{base}?from={}&to={}", enc(now), enc(now - Duration::hours(1))),
            "from",
        ),
        (format!("{base}?from={}", enc(now - Duration::days(40))), "from"),
        (format!("{base}?to=tomorrow"), "to"),
        ("/v1/mashups/infant-monitor/not-a-uuid".to_owned(), "sid"),
        // The parent has no birth date.
        (format!("/v1/mashups/infant-monitor/{me}"), "sid"),
    ];
    for (url, field) in cases {
        let res = n.app.get(&url, &n.parent.token).await;
        let body = res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), [field], "{url}: {body}");
    }
    // An adult is refused, naming the age.
    let res = n
        .app
        .patch(
            &format!("/v1/subjects/{me}"),
            &n.parent.token,
            json!({"birth_date": "1980-01-01"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let res = n
        .app
        .get(&format!("/v1/mashups/infant-monitor/{me}"), &n.parent.token)
        .await;
    let body = res.problem(400, "invalid-parameter");
    assert!(
        body["detail"].as_str().unwrap_or_default().contains("days old"),
        "{body}"
    );
}

/// `vitalfarm bench analytics` at a small size, on the suite's database:
/// it gets through every phase and reports every figure (the figures
/// themselves are not judged here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_analytics_runs_every_phase_and_reports_its_figures() {
    use vitalfarm_tools::bench::{AnalyticsBench, analytics};
    let dir = tempfile::tempdir().unwrap();
    let report = analytics(AnalyticsBench {
        database_url: vitalfarm_tests::postgres_url(),
        readings: 20 * 5 * 30,
        subjects: 20,
        runs: 2,
        keep: false,
        dir: Some(dir.path().to_path_buf()),
    })
    .await
    .unwrap();
    assert!(report.contains("20 subjects, 2 runs each"), "{report}");
    assert!(report.contains("store: 3000 readings over 365 days"), "{report}");
    assert!(
        report.contains("heart rate in daily buckets (30 buckets): median"),
        "{report}"
    );
    assert!(
        report.contains("year summary of one subject, every metric: median"),
        "{report}"
    );
    let watch = report
        .lines()
        .find(|l| l.starts_with("elderly watch, 20 subjects: median"))
        .unwrap_or_else(|| panic!("{report}"));
    // "(E emergency, A attention, O ok)": every subject counted once, and
    // subject 7's last blood pressure is a crisis.
    let counts: Vec<u64> = watch[watch.rfind('(').unwrap() + 1..]
        .split(", ")
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 20, "{report}");
    assert!(counts[0] >= 1, "{report}");
    assert!(report.contains("cohort"), "{report}");
}

#[tokio::test]
async fn elderly_watch_judges_a_heart_rate_from_an_ecg_apart() {
    let app = TestApp::spawn().await;
    let home = app.company("home@care.example").await;
    let now = Utc::now();
    let wearer = app.monitored_device(&home, "E-9").await;
    regular(
        &app,
        &wearer,
        now - Duration::hours(2),
        now - Duration::minutes(1),
        70.0,
    )
    .await;
    // What `POST /v1/subjects/{sid}/ecg/analyze` stores: no device, source `ecg`.
    let subject: uuid::Uuid = wearer.subject.parse().unwrap();
    let ecg_at = DateTime::from_timestamp(now.timestamp() - 1800, 0).unwrap();
    vitalfarm_storage::repo::readings::insert_new(
        app.db(),
        vec![vitalfarm_storage::repo::readings::NewRow {
            membership_id: vitalfarm_domain::MembershipId::from_uuid(home.membership_id),
            subject_id: vitalfarm_domain::SubjectId::from_uuid(subject),
            device_id: None,
            metric: "heart_rate",
            component: "",
            ts_ms: ecg_at.timestamp_millis(),
            value: 142.0,
            unit: "/min",
            source: "ecg",
            seq: None,
        }],
    )
    .await
    .unwrap();
    let res = app
        .post("/v1/mashups/elderly-watch/run", Some(&home.token), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let l = line(&res.body, &wearer.subject);
    assert_eq!(l["status"], "emergency", "{l}");
    assert_eq!(
        l["inputs"]["heart_rate"]["value"], 70.0,
        "the device's latest, not the ECG's"
    );
    assert_eq!(l["inputs"]["ecg_heart_rate"], json!({"value": 142.0, "at": ts(ecg_at)}));
    let reasons = l["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{l}");
    assert_eq!(reasons[0]["rule"], "ecg_heart_rate");
    assert_eq!(reasons[0]["category"], "far_above_range");
    assert_eq!(reasons[0]["dataset"]["name"], "news2-chart-1");
}

/// Gives `subject` a birth date `years` ago.
async fn aged(app: &TestApp, who: &Member, subject: &str, years: i64) {
    let born = (Utc::now() - Duration::days(years * 365 + years / 4 + 30)).date_naive();
    let res = app
        .patch(
            &format!("/v1/subjects/{subject}"),
            &who.token,
            json!({"birth_date": born.to_string()}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
}

/// The reasons of `line` fired by `rule`.
fn reasons_of<'a>(line: &'a Value, rule: &str) -> Vec<&'a Value> {
    line["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rule"] == rule)
        .collect()
}

#[tokio::test]
async fn elderly_watch_judges_glucose_by_ada_and_spo2_by_news2() {
    let app = TestApp::spawn().await;
    let home = app.company("home@care.example").await;
    let now = Utc::now();
    let at = now - Duration::minutes(3);
    // Four residents of 70 and more, each wearing a watch that reports
    // every 10 minutes (so none is silent), with one glucose or SpO2.
    let mut residents = Vec::new();
    for (serial, metric, value) in [
        ("G-260", "blood_glucose", 260.0),
        ("G-200", "blood_glucose", 200.0),
        ("G-100", "blood_glucose", 100.0),
        ("S-88", "spo2", 88.0),
    ] {
        let device = app.monitored_device(&home, serial).await;
        aged(&app, &home, &device.subject, 72).await;
        regular(
            &app,
            &device,
            now - Duration::hours(2),
            now - Duration::minutes(1),
            70.0,
        )
        .await;
        app.ingest(&device, json!([{"metric": metric, "ts": ts(at), "value": value}]))
            .await;
        residents.push(device.subject);
    }
    let res = app
        .post("/v1/mashups/elderly-watch/run", Some(&home.token), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let board = &res.body;

    // 260 mg/dL: ADA level 2 hyperglycaemia (> 250), an emergency.
    let l = line(board, &residents[0]);
    assert_eq!(l["status"], "emergency", "{l}");
    assert!(l["inputs"]["age_days"].as_i64().unwrap() >= 70 * 365, "{l}");
    assert_eq!(l["inputs"]["blood_glucose"], json!({"value": 260.0, "at": ts(at)}));
    let g = reasons_of(l, "glucose");
    assert_eq!(g.len(), 1, "{l}");
    assert_eq!(g[0]["status"], "emergency");
    assert_eq!(g[0]["metric"], "blood_glucose");
    assert_eq!(g[0]["values"], json!({"value": 260.0}));
    assert_eq!(g[0]["at"], ts(at));
    assert_eq!(g[0]["category"], "hyperglycaemia_level_2");
    assert_eq!(g[0]["dataset"]["name"], "ada-glycaemic-thresholds");
    let threshold = g[0]["threshold"].as_str().unwrap();
    assert!(
        threshold.contains("Table 6.2") && threshold.contains("> 250 mg/dL"),
        "{threshold}"
    );
    assert_eq!(l["reasons"].as_array().unwrap().len(), 1, "{l}");

    // 200 mg/dL: level 1 (181-250), attention.
    let l = line(board, &residents[1]);
    assert_eq!(l["status"], "attention", "{l}");
    let g = reasons_of(l, "glucose");
    assert_eq!(g.len(), 1, "{l}");
    assert_eq!(g[0]["status"], "attention");
    assert_eq!(g[0]["category"], "hyperglycaemia_level_1");
    assert_eq!(g[0]["dataset"]["name"], "ada-glycaemic-thresholds");

    // 100 mg/dL: in range, nothing fires.
    let l = line(board, &residents[2]);
    assert_eq!(l["status"], "ok", "{l}");
    assert_eq!(l["reasons"], json!([]));
    assert_eq!(l["inputs"]["blood_glucose"]["value"], 100.0);

    // SpO2 88 %: NEWS2 scale 1, <= 91 scores 3, an emergency.
    let l = line(board, &residents[3]);
    assert_eq!(l["status"], "emergency", "{l}");
    assert_eq!(l["inputs"]["spo2"], json!({"value": 88.0, "at": ts(at)}));
    assert_eq!(l["inputs"]["blood_glucose"], Value::Null);
    let s = reasons_of(l, "spo2");
    assert_eq!(s.len(), 1, "{l}");
    assert_eq!(s[0]["status"], "emergency");
    assert_eq!(s[0]["metric"], "spo2");
    assert_eq!(s[0]["values"], json!({"value": 88.0}));
    assert_eq!(s[0]["category"], "far_below_range");
    assert_eq!(s[0]["dataset"]["name"], "news2-chart-1");
    assert!(s[0]["threshold"].as_str().unwrap().contains("SpO2 Scale 1"), "{l}");
}

#[tokio::test]
async fn elderly_watch_reads_glucose_only_when_the_care_consent_covers_it() {
    let app = TestApp::spawn().await;
    let home = app.company("home@care.example").await;
    let now = Utc::now();
    let at = now - Duration::minutes(3);
    let mut people = Vec::new();
    for (email, metrics) in [
        ("dan@example.org", vec!["heart_rate", "blood_pressure"]),
        ("gil@example.org", vec!["heart_rate", "blood_glucose"]),
    ] {
        let who = app.individual(email).await;
        let me = self_subject(&app, &who).await;
        aged(&app, &who, &me, 75).await;
        let serial = format!("W-{}", email.split('@').next().unwrap());
        let watch = app.claimed_device(&who, &me, &serial).await;
        regular(&app, &watch, now - Duration::hours(2), now - Duration::minutes(1), 70.0).await;
        app.ingest(
            &watch,
            json!([{"metric": "blood_glucose", "ts": ts(at), "value": 260.0}]),
        )
        .await;
        app.grant_consent(&who, &home, &[&me], &metrics, "care").await;
        people.push(me);
    }
    let res = app
        .post("/v1/mashups/elderly-watch/run", Some(&home.token), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);

    // Dan's consent does not cover glucose: not read, listed as not shared.
    let dan = line(&res.body, &people[0]);
    assert_eq!(dan["status"], "ok", "{dan}");
    assert_eq!(dan["inputs"]["blood_glucose"], Value::Null);
    let not_shared = dan["inputs"]["not_shared"].as_array().unwrap();
    assert!(not_shared.contains(&json!("blood_glucose")), "{dan}");
    assert!(not_shared.contains(&json!("spo2")), "{dan}");
    assert!(reasons_of(dan, "glucose").is_empty());

    // Gil's does: the same 260 mg/dL is an emergency.
    let gil = line(&res.body, &people[1]);
    assert_eq!(gil["status"], "emergency", "{gil}");
    assert_eq!(reasons_of(gil, "glucose")[0]["category"], "hyperglycaemia_level_2");
    assert!(
        !gil["inputs"]["not_shared"]
            .as_array()
            .unwrap()
            .contains(&json!("blood_glucose"))
    );
}

/// A hospital's FHIR import of one heart rate of `subject` at `at`.
async fn hospital_import(app: &TestApp, company: &Member, subject: &str, at: DateTime<Utc>) {
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:hr-1", "resource": {"resourceType": "Observation", "id": "hr-1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "effectiveDateTime": ts(at),
            "valueQuantity": {"value": 74.0, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}},
    ]});
    let res = app
        .client
        .post(app.url(&format!(
            "/v1/memberships/{}/imports/fhir?subject_id={subject}",
            company.membership_id
        )))
        .bearer_auth(&company.token)
        .header("content-type", "application/fhir+json")
        .body(serde_json::to_vec(&bundle).unwrap())
        .send()
        .await
        .expect("request is sent");
    let res = vitalfarm_tests::Resp::from(res).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["readings"]["imported"], 1, "{}", res.text);
}

#[tokio::test]
async fn a_hospital_import_never_clears_inactivity() {
    let app = TestApp::spawn().await;
    let home = app.company("home@care.example").await;
    let now = Utc::now();
    // Silent: every 10 minutes for hours, nothing for the last five.
    let silent = app.monitored_device(&home, "E-2").await;
    aged(&app, &home, &silent.subject, 80).await;
    regular(&app, &silent, now - Duration::hours(10), now - Duration::hours(5), 70.0).await;
    // Never measured at home at all.
    let unseen = app.monitored_device(&home, "E-4").await;
    aged(&app, &home, &unseen.subject, 80).await;
    // The hospital sends a heart rate of each from half an hour ago.
    let hospital_at = DateTime::from_timestamp(now.timestamp() - 1800, 0).unwrap();
    hospital_import(&app, &home, &silent.subject, hospital_at).await;
    hospital_import(&app, &home, &unseen.subject, hospital_at).await;

    let res = app
        .post("/v1/mashups/elderly-watch/run", Some(&home.token), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let s = line(&res.body, &silent.subject);
    assert_eq!(s["status"], "emergency", "{s}");
    let r = reasons_of(s, "inactivity");
    assert_eq!(r.len(), 1, "{s}");
    assert_eq!(r[0]["category"], "silent");
    assert!(
        r[0]["values"]["silent_seconds"].as_f64().unwrap() >= 5.0 * 3600.0 - 1.0,
        "{s}"
    );
    assert_eq!(s["inputs"]["last_reading_at"], ts(now - Duration::hours(5)));
    assert_eq!(s["inputs"]["expected_gap_seconds"], 600);
    // The hospital's value is still a value: judged, just not a sign of life.
    assert_eq!(s["inputs"]["heart_rate"], json!({"value": 74.0, "at": ts(hospital_at)}));

    let u = line(&res.body, &unseen.subject);
    assert_eq!(u["status"], "attention", "{u}");
    let r = reasons_of(u, "inactivity");
    assert_eq!(r.len(), 1, "{u}");
    assert_eq!(r[0]["category"], "no_data");
    assert_eq!(u["inputs"]["last_reading_at"], Value::Null);
}

/// Gives `subject` the birth date `born`.
async fn born_on(app: &TestApp, who: &Member, subject: &str, born: chrono::NaiveDate) {
    let res = app
        .patch(
            &format!("/v1/subjects/{subject}"),
            &who.token,
            json!({"birth_date": born.to_string()}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
}

#[tokio::test]
async fn elderly_watch_boards_from_the_configured_age_and_states_an_unknown_age() {
    let app = TestApp::spawn().await;
    let home = app.company("home@care.example").await;
    let now = Utc::now();
    let url = "/v1/mashups/elderly-watch/run";
    let today = now.date_naive();
    let years_ago = |y: i32| {
        today
            .with_year(today.year() - y)
            .unwrap_or(today - Duration::days(365 * y as i64))
    };
    use chrono::Datelike;
    // 80 years old; 65 today (on the board); 64 and a day short of 65
    // (off); 40 (off); no birth date (on, adult ranges, said so).
    let mut people = Vec::new();
    for (serial, born) in [
        ("A-80", Some(years_ago(80))),
        ("A-65", Some(years_ago(65))),
        ("A-64", Some(years_ago(65) + Duration::days(1))),
        ("A-40", Some(years_ago(40))),
        ("A-NA", None),
    ] {
        let device = app.monitored_device(&home, serial).await;
        if let Some(b) = born {
            born_on(&app, &home, &device.subject, b).await;
        }
        regular(
            &app,
            &device,
            now - Duration::hours(2),
            now - Duration::minutes(1),
            70.0,
        )
        .await;
        // A temperature of 39.5 °C: attention by NEWS2 for an adult.
        app.ingest(
            &device,
            json!([{"metric": "body_temperature", "ts": ts(now - Duration::minutes(2)), "value": 39.5}]),
        )
        .await;
        people.push(device.subject);
    }
    let res = app.post(url, Some(&home.token), json!({"at": ts(now)})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let board = &res.body;
    assert!(on_board(board, &people[0]), "{board}");
    assert!(on_board(board, &people[1]), "65 today is on the board: {board}");
    assert!(!on_board(board, &people[2]), "64 is not: {board}");
    assert!(!on_board(board, &people[3]), "40 is not: {board}");
    assert_eq!(board["subjects"].as_array().unwrap().len(), 3, "{board}");
    assert_eq!(board["summary"]["attention"], 3, "{board}");

    let known = line(board, &people[0]);
    assert_eq!(known["inputs"]["age_known"], true);
    assert_eq!(known["inputs"]["age_note"], Value::Null);
    let unknown = line(board, &people[4]);
    assert_eq!(unknown["status"], "attention", "{unknown}");
    assert_eq!(unknown["inputs"]["age_days"], Value::Null);
    assert_eq!(unknown["inputs"]["age_known"], false);
    assert_eq!(
        unknown["inputs"]["age_note"],
        "age unknown: no birth date, adult ranges used"
    );
    let t = reasons_of(unknown, "temperature");
    assert_eq!(t.len(), 1, "{unknown}");
    assert!(
        t[0]["threshold"]
            .as_str()
            .unwrap()
            .starts_with("age unknown, adult norms used"),
        "{unknown}"
    );

    // Named explicitly, the 40-year-old is still off the board, and
    // nothing of theirs is read.
    let res = app
        .post(url, Some(&home.token), json!({"subject_ids": [people[3]]}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["subjects"], json!([]));

    // A watch configured from 30 years boards the 40-year-old too.
    let app = app.restart(|c| c.elderly_watch_min_age_years = 30).await;
    let res = app.post(url, Some(&home.token), json!({"at": ts(now)})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert!(on_board(&res.body, &people[3]), "{}", res.body);
    assert!(on_board(&res.body, &people[2]), "{}", res.body);

    // From 0 years a child is watched too: its blood pressure, which no
    // shipped source judges before 18, is named as not judged.
    let app = app.restart(|c| c.elderly_watch_min_age_years = 0).await;
    let child = app.monitored_device(&home, "A-10").await;
    born_on(&app, &home, &child.subject, years_ago(10)).await;
    regular(&app, &child, now - Duration::hours(2), now - Duration::minutes(1), 90.0).await;
    bp(&app, &child, now - Duration::minutes(2), 190.0, 125.0).await;
    let res = app
        .post(
            url,
            Some(&home.token),
            json!({"at": ts(now), "subject_ids": [child.subject]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let c = line(&res.body, &child.subject);
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["reasons"], json!([]));
    assert_eq!(c["inputs"]["blood_pressure"]["systolic"], 190.0);
    let why = c["inputs"]["not_judged"]["blood_pressure"].as_str().unwrap_or_default();
    assert!(why.contains("no shipped source gives norms of blood_pressure"), "{c}");
    assert_eq!(line(board, &people[0])["inputs"]["not_judged"], json!({}));
}

#[tokio::test]
async fn elderly_watch_reads_only_the_metrics_a_care_consent_covers() {
    let app = TestApp::spawn().await;
    let home = app.company("home@care.example").await;
    let now = Utc::now();
    let dan = app.individual("dan@example.org").await;
    let me = self_subject(&app, &dan).await;
    aged(&app, &dan, &me, 78).await;
    let watch = app.claimed_device(&dan, &me, "W-dan").await;
    let last_heart_rate = now - Duration::minutes(10);
    regular(&app, &watch, now - Duration::hours(2), last_heart_rate, 70.0).await;
    // A hypertensive crisis after the last heart rate: outside the consent.
    bp(&app, &watch, now - Duration::minutes(2), 201.0, 131.0).await;
    let consent = app.grant_consent(&dan, &home, &[&me], &["heart_rate"], "care").await;

    let res = app
        .post("/v1/mashups/elderly-watch/run", Some(&home.token), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let l = line(&res.body, &me);
    assert_eq!(l["status"], "ok", "the crisis is not judged: {l}");
    assert_eq!(l["reasons"], json!([]));
    assert_eq!(l["inputs"]["blood_pressure"], Value::Null);
    assert_eq!(l["inputs"]["heart_rate"]["value"], 70.0);
    // Nor does it count as a sign of life: the last reading is the heart rate.
    assert_eq!(l["inputs"]["last_reading_at"], ts(last_heart_rate));
    let text = l.to_string();
    assert!(
        !text.contains("201") && !text.contains("131") && !text.contains("systolic"),
        "{l}"
    );
    assert!(
        l["inputs"]["not_shared"]
            .as_array()
            .unwrap()
            .contains(&json!("blood_pressure")),
        "only listed as not shared: {l}"
    );
    assert_eq!(res.body["consents"], json!([consent]));
}

#[tokio::test]
async fn elderly_watch_reasons_name_their_source() {
    let app = TestApp::spawn().await;
    let home = app.company("home@care.example").await;
    let now = Utc::now();
    let crisis = app.monitored_device(&home, "C-1").await;
    aged(&app, &home, &crisis.subject, 81).await;
    regular(
        &app,
        &crisis,
        now - Duration::hours(2),
        now - Duration::minutes(1),
        72.0,
    )
    .await;
    bp(&app, &crisis, now - Duration::minutes(3), 192.0, 104.0).await;
    let unseen = app.monitored_device(&home, "C-2").await;
    aged(&app, &home, &unseen.subject, 81).await;

    let res = app
        .post("/v1/mashups/elderly-watch/run", Some(&home.token), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let c = line(&res.body, &crisis.subject);
    let r = reasons_of(c, "bp_category");
    assert_eq!(r.len(), 1, "{c}");
    assert_eq!(r[0]["values"], json!({"systolic": 192.0, "diastolic": 104.0}));
    assert_eq!(r[0]["category"], "hypertensive_crisis");
    assert!(r[0]["threshold"].as_str().unwrap().contains("> 180"), "{c}");
    assert_eq!(r[0]["dataset"]["name"], "blood-pressure-categories");
    assert_eq!(r[0]["dataset"]["source"], "acc-aha-2017");
    let citation = r[0]["dataset"]["citation"].as_str().unwrap();
    assert!(citation.contains("Hypertension. 2018"), "{c}");
    assert_eq!(r[0]["source"], citation);

    let u = line(&res.body, &unseen.subject);
    let r = reasons_of(u, "inactivity");
    assert_eq!(r.len(), 1, "{u}");
    assert_eq!(r[0]["category"], "no_data");
    assert_eq!(
        r[0]["values"],
        json!({"history_seconds": 1_209_600.0, "threshold_seconds": 3600.0})
    );
    assert_eq!(r[0]["dataset"], Value::Null);
    assert!(r[0]["source"].as_str().unwrap().contains("own rhythm"), "{u}");
}
