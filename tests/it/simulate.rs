//! `vitalfarm simulate` in HTTP mode, run in-process against a real server:
//! what it says it delivered is what the server stored.

use std::time::Duration;

use reqwest::StatusCode;
use vitalfarm_domain::vitals::Vital;
use vitalfarm_tests::TestApp;
use vitalfarm_tools::simulate::{self, SimOptions};

/// Every reading of `metric` stored for `subject`, following the cursor.
async fn stored(app: &TestApp, token: &str, subject: uuid::Uuid, metric: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/subjects/{subject}/readings?metric={metric}&limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let res = app.get(&path, token).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        items.extend(res.body["items"].as_array().unwrap().iter().cloned());
        match res.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_fleet_readings_are_stored_as_counted() {
    let app = TestApp::spawn().await;
    let metrics = [Vital::HeartRate, Vital::BloodPressure, Vital::Spo2];
    let mut opts = SimOptions::http(app.base.clone(), 5, 10.0);
    opts.duration = Some(Duration::from_secs(3));
    opts.batch = 2;
    opts.metrics = metrics.to_vec();
    opts.seed = 42;
    let out = simulate::run(opts, std::future::pending()).await.unwrap();
    let t = &out.totals;

    // About 5 devices x 10 readings/s x 3 s, all delivered exactly once.
    assert!(t.sent >= 60 && t.sent <= 160, "{t:?}");
    assert_eq!(
        (t.duplicates, t.rejected, t.errors, t.unconfirmed),
        (0, 0, 0, 0),
        "{t:?}"
    );
    assert_eq!(t.acked, t.sent, "{t:?}");
    assert!(t.latency_p50.is_some() && t.latency_p99 >= t.latency_p50, "{t:?}");
    assert_eq!(out.fleet.devices.len(), 5);
    assert_eq!(out.acked_per_device.iter().sum::<u64>(), t.acked);

    let token = &out.fleet.token;
    let mut total = 0;
    for (device, acked) in out.fleet.devices.iter().zip(&out.acked_per_device) {
        // Each device's own enrollee, and only its readings there.
        let mut mine = 0;
        for metric in metrics {
            let items = stored(&app, token, device.subject_id, metric.code()).await;
            for r in &items {
                assert_eq!(r["device_id"], device.id.to_string(), "{r}");
                assert_eq!(r["source"], "device");
            }
            mine += items.len() as u64;
        }
        assert_eq!(mine, *acked, "device {}", device.id);
        assert!(mine > 0);
        total += mine;
    }
    assert_eq!(total, t.acked);

    // The readings are the simulated physiology, in canonical units.
    let hr = stored(&app, token, out.fleet.devices[0].subject_id, "heart_rate").await;
    assert!(!hr.is_empty());
    for r in &hr {
        let v = r["value"].as_f64().unwrap();
        assert!((30.0..=230.0).contains(&v), "{r}");
        assert_eq!(r["unit"], "/min");
    }
    let bp = stored(&app, token, out.fleet.devices[1].subject_id, "blood_pressure").await;
    for r in &bp {
        assert!(
            r["components"]["diastolic"].as_f64() < r["components"]["systolic"].as_f64(),
            "{r}"
        );
    }

    // Setup went through the public API: a device model, the devices
    // active and assigned to enrollees.
    let devices = app
        .get(&format!("/v1/memberships/{}/devices", out.fleet.membership_id), token)
        .await;
    let items = devices.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    for d in items {
        assert_eq!(d["status"], "active", "{d}");
        assert!(d["last_seen_at"].is_string(), "{d}");
        assert!(d["model_id"].is_string(), "{d}");
    }
    let subject = app
        .get(&format!("/v1/subjects/{}", out.fleet.devices[0].subject_id), token)
        .await;
    assert_eq!(subject.body["kind"], "enrollee");
    assert!(subject.body["birth_date"].is_string());
}

#[tokio::test]
async fn an_existing_company_can_host_the_fleet() {
    let app = TestApp::spawn().await;
    let care = app.company("care@sim.example").await;
    let mut opts = SimOptions::http(app.base.clone(), 2, 5.0);
    opts.duration = Some(Duration::from_millis(1500));
    opts.owner = Some(simulate::Owner {
        email: care.email.clone(),
        password: vitalfarm_tests::PASSWORD.into(),
    });
    let out = simulate::run(opts, std::future::pending()).await.unwrap();
    assert_eq!(out.fleet.membership_id, care.membership_id);
    assert!(
        out.totals.acked > 0 && out.totals.acked == out.totals.sent,
        "{:?}",
        out.totals
    );

    // A wrong password stops the run before any device is made.
    let mut opts = SimOptions::http(app.base.clone(), 2, 5.0);
    opts.owner = Some(simulate::Owner {
        email: care.email.clone(),
        password: "not the password".into(),
    });
    let err = simulate::run(opts, std::future::pending()).await.unwrap_err();
    assert!(err.to_string().contains("logging in"), "{err:#}");
}
