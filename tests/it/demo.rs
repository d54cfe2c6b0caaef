//! `vitalfarm demo` end to end against the suite's server: the board flags
//! the crisis and the silence, the infant report has its fever episode, the
//! cohort suppresses small groups, the webhook deliveries verify and the
//! stream shows the live readings (the consented grandmother's included).

use serde_json::json;
use vitalfarm_tests::TestApp;
use vitalfarm_tools::demo::{DemoOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_shows_every_mashup_working_together() {
    let app = TestApp::spawn().await;
    let report = run(DemoOptions {
        url: Some(app.base.clone()),
    })
    .await
    .unwrap();
    let text = report.render();

    let crisis = report
        .status_of(report.crisis_subject)
        .expect("crisis subject on the board");
    assert_eq!(crisis["status"], "emergency", "{text}");
    assert!(
        crisis["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "bp_category"),
        "{crisis}"
    );
    let silent = report
        .status_of(report.silent_subject)
        .expect("silent subject on the board");
    assert_ne!(silent["status"], "ok", "{text}");
    assert!(
        silent["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "inactivity"),
        "{silent}"
    );
    assert!(
        report.status_of(report.consented_subject).is_some(),
        "the consented subject is watched: {text}"
    );

    let episodes = report.infant_monitor["episodes"].as_array().unwrap();
    assert!(
        episodes
            .iter()
            // Leo is 40 days old: NICE NG143 makes 38 C or more a high-risk
            // fever under 3 months, no longer plain `fever` (issue 16).
            .any(|e| e["metric"] == "temperature" && e["kind"] == "fever_under_3_months"),
        "{}",
        report.infant_monitor
    );

    let groups = report.cohort["groups"].as_array().unwrap();
    assert!(!groups.is_empty(), "{}", report.cohort);
    assert!(
        groups.iter().all(|g| g["subjects"].as_u64().unwrap() >= 5),
        "{}",
        report.cohort
    );
    assert!(
        !report.cohort["suppressed"].as_array().unwrap().is_empty(),
        "{}",
        report.cohort
    );

    assert!(
        report
            .webhooks
            .iter()
            .any(|w| w.event_type == "alert.opened" && w.signature_valid),
        "{text}"
    );
    assert!(report.webhooks.iter().all(|w| w.signature_valid), "{text}");

    for subject in [report.crisis_subject, report.consented_subject] {
        assert!(
            report
                .stream
                .iter()
                .any(|s| s.event == "reading" && s.data["subject_id"] == json!(subject)),
            "{text}"
        );
    }
    assert!(report.stream.iter().any(|s| s.event == "alert"), "{text}");
    for section in [
        "Elderly-watch board",
        "Infant monitor",
        "Cohort",
        "Webhook receiver",
        "Live stream",
    ] {
        assert!(text.contains(section), "{text}");
    }
}
