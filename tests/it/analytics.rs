//! Analytics and charts over a subject's readings: correlation of two
//! series paired by time window, SVG charts, both read through consents
//! exactly like raw readings (404 for a stranger, 403 for a metric no
//! consent covers, receipts when shared).

use chrono::{DateTime, Duration, DurationRound, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_tests::{Member, MonitoredDevice, TestApp, self_subject};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The start of a 5-minute window three hours ago: readings go one minute
/// into each of 20 windows from there.
fn base() -> DateTime<Utc> {
    (Utc::now() - Duration::hours(3))
        .duration_trunc(Duration::minutes(5))
        .unwrap()
}

/// Heart rate rising by 1 per window, systolic by 2 (r = 1 with it),
/// diastolic falling by 1 (r = -1); two heart rate readings per window
/// whose mean is the line.
async fn send_linear(app: &TestApp, device: &MonitoredDevice, base: DateTime<Utc>) {
    let mut readings = Vec::new();
    for i in 0..20i64 {
        let t = base + Duration::minutes(5 * i + 1);
        let f = i as f64;
        readings.push(json!({"metric": "heart_rate", "ts": ts(t), "value": 59.0 + f}));
        readings.push(json!({"metric": "heart_rate", "ts": ts(t + Duration::minutes(1)), "value": 61.0 + f}));
        readings.push(json!({"metric": "blood_pressure", "ts": ts(t),
            "components": {"systolic": 100.0 + 2.0 * f, "diastolic": 90.0 - f}}));
    }
    app.ingest(device, Value::Array(readings)).await;
}

fn correlation(sid: &str, x: &str, y: &str, extra: &str) -> String {
    format!("/v1/analytics/correlation?subject_id={sid}&x={x}&y={y}{extra}")
}

fn enc(t: DateTime<Utc>) -> String {
    ts(t).replace(':', "%3A")
}

#[tokio::test]
async fn correlation_of_own_series_pairs_windows_and_computes_r() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let me = self_subject(&app, &ann).await;
    let watch = app.claimed_device(&ann, &me, "W-1").await;
    let b = base();
    send_linear(&app, &watch, b).await;

    let res = app
        .get(
            &correlation(&me, "heart_rate", "blood_pressure.systolic", ""),
            &ann.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["n"], 20);
    assert_eq!(res.body["window"], "5m");
    assert_eq!(res.body["x"], "heart_rate");
    assert_eq!(res.body["y"], "blood_pressure.systolic");
    assert_eq!(res.body["subject_id"], me);
    let r = res.body["pearson_r"].as_f64().unwrap();
    assert!((r - 1.0).abs() < 1e-9, "{r}");
    // Each point is the window's mean.
    assert_eq!(res.body["points"][0]["x"], 60.0);
    assert_eq!(res.body["points"][0]["y"], 100.0);
    assert_eq!(res.body["points"][0]["t"], ts(b));
    assert_eq!(res.body["consents"], json!([]));
    assert_eq!(res.header("vitalfarm-consent"), None);

    let res = app
        .get(
            &correlation(&me, "heart_rate", "blood_pressure.diastolic", ""),
            &ann.token,
        )
        .await;
    let r = res.body["pearson_r"].as_f64().unwrap();
    assert!((r + 1.0).abs() < 1e-9, "{r}");

    // Hourly windows pair fewer, larger means; still a perfect line.
    let res = app
        .get(
            &correlation(&me, "blood_pressure.systolic", "blood_pressure.diastolic", "&window=1h"),
            &ann.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["window"], "1h");
    let n = res.body["n"].as_u64().unwrap();
    assert!((2..=3).contains(&n), "{n}");

    // Two windows are too few for r.
    let period = format!("&from={}&to={}", enc(b), enc(b + Duration::minutes(10)));
    let res = app
        .get(
            &correlation(&me, "heart_rate", "blood_pressure.systolic", &period),
            &ann.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["n"], 2);
    assert_eq!(res.body["pearson_r"], Value::Null);

    // A metric with itself over a constant stretch: no variance, no r.
    let flat = app.claimed_device(&ann, &me, "T-1").await;
    let readings: Vec<Value> = (0..5)
        .map(|i| json!({"metric": "spo2", "ts": ts(b + Duration::minutes(5 * i + 2)), "value": 97}))
        .collect();
    app.ingest(&flat, Value::Array(readings)).await;
    let res = app.get(&correlation(&me, "spo2", "heart_rate", ""), &ann.token).await;
    assert_eq!(res.body["n"], 5, "{}", res.text);
    assert_eq!(res.body["pearson_r"], Value::Null);
}

#[tokio::test]
async fn correlation_rejects_bad_parameters_by_name() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let me = self_subject(&app, &ann).await;
    let now = Utc::now();
    let cases = [
        (correlation(&me, "pulse", "heart_rate", ""), "x"),
        (correlation(&me, "heart_rate", "blood_pressure", ""), "y"),
        (correlation(&me, "heart_rate", "blood_pressure.mean", ""), "y"),
        (correlation(&me, "ecg", "heart_rate", ""), "x"),
        (correlation(&me, "heart_rate", "spo2", "&window=2h"), "window"),
        (
            correlation(
                &me,
                "heart_rate",
                "spo2",
                &format!("&from={}", enc(now - Duration::days(400))),
            ),
            "from",
        ),
        (
            correlation(
                &me,
                "heart_rate",
                "spo2",
                &format!("&from={}&to={}", enc(now), enc(now - Duration::hours(1))),
            ),
            "from",
        ),
        (
            correlation(
                &me,
                "heart_rate",
                "spo2",
                &format!("&from={}", enc(now - Duration::days(60))),
            ),
            "window",
        ),
        (correlation("not-a-uuid", "heart_rate", "spo2", ""), "subject_id"),
        ("/v1/analytics/correlation?x=heart_rate&y=spo2".to_owned(), "subject_id"),
    ];
    for (url, field) in cases {
        let res = app.get(&url, &ann.token).await;
        let body = res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), [field], "{url}: {body}");
    }
}

/// Ann's subject with readings, a company, and a stranger.
struct Shared {
    app: TestApp,
    ann: Member,
    care: Member,
    me: String,
}

async fn shared() -> Shared {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let care = app.company("care@acme.example").await;
    let me = self_subject(&app, &ann).await;
    let watch = app.claimed_device(&ann, &me, "W-1").await;
    send_linear(&app, &watch, base()).await;
    Shared { app, ann, care, me }
}

async fn grant(s: &Shared, metrics: &[&str]) -> String {
    let res = s
        .app
        .post(
            "/v1/consents",
            Some(&s.ann.token),
            json!({
                "grantee_membership_id": s.care.membership_id,
                "subject_ids": [s.me],
                "metrics": metrics,
                "purpose": "care",
                "access": "read",
                "expires_at": ts(Utc::now() + Duration::days(30)),
            }),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.str("/id")
}

#[tokio::test]
async fn correlation_of_shared_data_needs_a_consent_for_both_metrics() {
    let s = shared().await;
    let url = correlation(&s.me, "heart_rate", "blood_pressure.systolic", "");
    let stranger = s.app.individual("eve@example.org").await;
    s.app.get(&url, &stranger.token).await.problem(404, "not-found");
    s.app.get(&url, &s.care.token).await.problem(404, "not-found");

    let hr_only = grant(&s, &["heart_rate"]).await;
    s.app.get(&url, &s.care.token).await.problem(403, "forbidden");
    s.app
        .get(
            &correlation(&s.me, "blood_pressure.systolic", "heart_rate", ""),
            &s.care.token,
        )
        .await
        .problem(403, "forbidden");
    // Heart rate with itself is covered.
    let res = s
        .app
        .get(&correlation(&s.me, "heart_rate", "heart_rate", ""), &s.care.token)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["consents"], json!([hr_only]));
    assert_eq!(res.header("vitalfarm-consent"), Some(hr_only.as_str()));

    let bp = grant(&s, &["blood_pressure"]).await;
    let res = s.app.get(&url, &s.care.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["n"], 20);
    let r = res.body["pearson_r"].as_f64().unwrap();
    assert!((r - 1.0).abs() < 1e-9, "{r}");
    assert_eq!(res.body["consents"], json!([hr_only, bp]));
    assert_eq!(
        res.header("vitalfarm-consent"),
        Some(format!("{hr_only}, {bp}").as_str())
    );
    // The stranger still sees nothing.
    s.app.get(&url, &stranger.token).await.problem(404, "not-found");

    // Ann's log shows each metric read under its own consent, and the
    // refused attempt before blood pressure was shared.
    let log = s
        .app
        .audit(s.ann.membership_id, &s.ann.token, "action=data.read&")
        .await;
    let read = |metric: &str, consent: &str| {
        log.iter().any(|e| {
            e["resource"] == format!("subject/{}/readings/{metric}", s.me)
                && e["consent_id"] == consent
                && e["outcome"] == "allowed"
        })
    };
    assert!(read("heart_rate", &hr_only), "{log:?}");
    assert!(read("blood_pressure", &bp), "{log:?}");
    assert!(
        log.iter()
            .any(|e| e["resource"] == format!("subject/{}/readings/blood_pressure", s.me) && e["outcome"] == "denied"),
        "{log:?}"
    );
}

fn is_svg(res: &vitalfarm_tests::Resp) {
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.header("content-type"), Some("image/svg+xml"));
    assert!(res.text.starts_with("<?xml"), "{}", res.text);
    assert!(res.text.trim_end().ends_with("</svg>"));
}

/// Issue 16: a 48-day-old's heart-rate chart shaded the adult 60-100 /min,
/// so his normal 135-160 looked abnormal. The band is now his own (PALS,
/// awake infant 100-180), and an adult's is NEWS2's (51-90).
#[tokio::test]
async fn a_chart_shades_the_normal_range_of_the_subjects_age() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let born = (Utc::now() - Duration::days(48)).date_naive();
    let mut subjects = Vec::new();
    for (name, birth) in [("Baby", Some(born.to_string())), ("Grown-up", None)] {
        let res = app
            .post(
                &format!("/v1/memberships/{}/subjects", ann.membership_id),
                Some(&ann.token),
                json!({"kind": "dependent", "display_name": name, "birth_date": birth}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        subjects.push(res.str("/id"));
    }
    for (i, sid) in subjects.iter().enumerate() {
        let device = app.claimed_device(&ann, sid, &format!("B-{i}")).await;
        let t = base();
        app.ingest(
            &device,
            json!([
                {"metric": "heart_rate", "ts": ts(t), "value": 135.0},
                {"metric": "heart_rate", "ts": ts(t + Duration::minutes(5)), "value": 160.0},
            ]),
        )
        .await;
    }
    let band = |sid: &str| {
        let url = format!("/v1/subjects/{sid}/charts/heart_rate.svg");
        let app = &app;
        let token = ann.token.clone();
        async move {
            let res = app.get(&url, &token).await;
            is_svg(&res);
            res.text
        }
    };
    let baby = band(&subjects[0]).await;
    assert!(baby.contains("normal range 100.00–180.00 /min"), "{baby}");
    assert!(!baby.contains("normal range 60.00–100.00"));
    let adult = band(&subjects[1]).await;
    assert!(adult.contains("normal range 51.00–91.00 /min"), "{adult}");
}

/// An age no shipped source gives a norm for (SpO2 under 28 days: the
/// paediatric ranges start at 28 days) is not a bad request: the chart is
/// drawn, with no band, rather than failing or shading another age's band.
#[tokio::test]
async fn a_chart_at_an_age_without_a_norm_draws_no_band() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let born = (Utc::now() - Duration::days(10)).date_naive();
    let res = app
        .post(
            &format!("/v1/memberships/{}/subjects", ann.membership_id),
            Some(&ann.token),
            json!({"kind": "dependent", "display_name": "Newborn", "birth_date": born.to_string()}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let baby = res.str("/id");
    let oximeter = app.claimed_device(&ann, &baby, "N-1").await;
    let t = Utc::now() - Duration::hours(1);
    app.ingest(
        &oximeter,
        json!([
            {"metric": "spo2", "ts": ts(t), "value": 95.0},
            {"metric": "spo2", "ts": ts(t + Duration::minutes(5)), "value": 97.0},
        ]),
    )
    .await;
    let res = app
        .get(&format!("/v1/subjects/{baby}/charts/spo2.svg"), &ann.token)
        .await;
    is_svg(&res);
    assert_eq!(res.text.matches("<polyline").count(), 1);
    assert!(!res.text.contains(r#"class="normal-range""#), "{}", res.text);
    // From 28 days the paediatric range applies, and is shaded.
    let res = app
        .patch(
            &format!("/v1/subjects/{baby}"),
            &ann.token,
            json!({"birth_date": (Utc::now() - Duration::days(40)).date_naive().to_string()}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let res = app
        .get(&format!("/v1/subjects/{baby}/charts/spo2.svg"), &ann.token)
        .await;
    is_svg(&res);
    assert_eq!(res.text.matches(r#"class="normal-range""#).count(), 1, "{}", res.text);
}

#[tokio::test]
async fn charts_draw_series_band_and_escaped_titles() {
    let app = TestApp::spawn().await;
    let ann = app.individual("ann@example.org").await;
    let res = app
        .post(
            &format!("/v1/memberships/{}/subjects", ann.membership_id),
            Some(&ann.token),
            json!({"kind": "dependent", "display_name": "Bo <b>& \"Co\"", "birth_date": "2020-01-01"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let bo = res.str("/id");
    let watch = app.claimed_device(&ann, &bo, "W-1").await;
    send_linear(&app, &watch, base()).await;

    let res = app
        .get(&format!("/v1/subjects/{bo}/charts/heart_rate.svg"), &ann.token)
        .await;
    is_svg(&res);
    assert_eq!(res.text.matches("<polyline").count(), 1);
    assert_eq!(res.text.matches(r#"class="normal-range""#).count(), 1);
    assert!(res.text.contains("Bo &lt;b&gt;&amp; &quot;Co&quot;"), "{}", res.text);
    assert!(!res.text.contains("<b>"));
    assert!(res.text.contains("/min"));
    assert!(!res.text.contains("No readings"));
    assert_eq!(res.header("vitalfarm-consent"), None);

    let res = app
        .get(&format!("/v1/subjects/{bo}/charts/blood_pressure.svg"), &ann.token)
        .await;
    is_svg(&res);
    assert_eq!(res.text.matches("<polyline").count(), 2);
    // Bo is a child: ACC/AHA 2017 categorises adults only and no shipped
    // source gives a child's blood pressure, so no band is shaded (an
    // adult's band used to be).
    assert_eq!(res.text.matches(r#"class="normal-range""#).count(), 0);
    assert_eq!(res.text.matches(r#"class="legend""#).count(), 2);
    assert!(res.text.contains("systolic") && res.text.contains("diastolic"));

    // A period without readings: an empty chart that says so.
    let old = Utc::now() - Duration::days(30);
    let res = app
        .get(
            &format!(
                "/v1/subjects/{bo}/charts/spo2.svg?from={}&to={}",
                enc(old),
                enc(old + Duration::days(1))
            ),
            &ann.token,
        )
        .await;
    is_svg(&res);
    assert!(res.text.contains("No readings in this period"));
    assert!(!res.text.contains("<polyline"));

    for (url, field) in [
        (format!("/v1/subjects/{bo}/charts/pulse.svg"), "metric"),
        (format!("/v1/subjects/{bo}/charts/ecg.svg"), "metric"),
        (
            format!(
                "/v1/subjects/{bo}/charts/heart_rate.svg?from={}",
                enc(Utc::now() - Duration::days(400))
            ),
            "from",
        ),
        ("/v1/subjects/nope/charts/heart_rate.svg".to_owned(), "sid"),
    ] {
        let res = app.get(&url, &ann.token).await;
        res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), [field], "{url}");
    }
    // Without the suffix there is no such route.
    app.get(&format!("/v1/subjects/{bo}/charts/heart_rate"), &ann.token)
        .await
        .problem(404, "route-not-found");
}

#[tokio::test]
async fn charts_of_shared_data_follow_consents() {
    let s = shared().await;
    let url = format!("/v1/subjects/{}/charts/heart_rate.svg", s.me);
    let stranger = s.app.individual("eve@example.org").await;
    s.app.get(&url, &stranger.token).await.problem(404, "not-found");
    s.app.get(&url, &s.care.token).await.problem(404, "not-found");

    let hr = grant(&s, &["heart_rate"]).await;
    let res = s.app.get(&url, &s.care.token).await;
    is_svg(&res);
    assert!(res.text.contains("<polyline"));
    assert_eq!(res.header("vitalfarm-consent"), Some(hr.as_str()));
    s.app
        .get(
            &format!("/v1/subjects/{}/charts/blood_pressure.svg", s.me),
            &s.care.token,
        )
        .await
        .problem(403, "forbidden");
    s.app.get(&url, &stranger.token).await.problem(404, "not-found");
}
