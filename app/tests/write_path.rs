//! The one write path of readings, exercised without an HTTP server: the
//! application layer on a fresh SQLite database in a temporary directory.

// Set-up helpers may fail loudly too: a panic here is a failed test.
#![allow(clippy::expect_used)]

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::json;
use vitalfarm_app::AppState;
use vitalfarm_app::config::Config;
use vitalfarm_app::readings::{Origin, Source, Valid, store, validate};
use vitalfarm_domain::{Email, MembershipKind};
use vitalfarm_storage::entity::subject;
use vitalfarm_storage::repo::accounts::{self, NewSignup};

async fn state_with_subject(dir: &std::path::Path) -> (AppState, subject::Model) {
    vitalfarm_app::install_crypto_provider();
    let config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    let state = AppState::prepare(config).await.expect("the state is prepared");
    let email = Email::parse("ann@example.org").expect("a valid address");
    let signup = accounts::signup(
        &state.db,
        NewSignup {
            email: &email,
            password_hash: "not used here".into(),
            display_name: "Ann",
            kind: MembershipKind::Individual,
            membership_name: "Ann",
            farm_quota_bytes: 1 << 20,
        },
    )
    .await
    .expect("the sign-up is stored");
    let subject = signup.subject.expect("an individual has a self subject");
    (state, subject)
}

fn heart_rate(minutes_ago: i64, bpm: f64) -> Valid {
    let ts = (Utc::now() - Duration::minutes(minutes_ago)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let raw = json!({"metric": "heart_rate", "ts": ts, "value": bpm});
    validate(0, &raw, Utc::now().timestamp_millis()).unwrap_or_else(|r| panic!("{r:?}"))
}

#[tokio::test]
async fn readings_without_a_device_are_stored_once_whatever_the_source_or_the_race() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (state, subject) = state_with_subject(dir.path()).await;
    let hospital = Origin::Elsewhere {
        subject: &subject,
        source: Source::Hospital,
    };
    // Eight writers race to store the same two readings: each is new once.
    let writes = (0..8).map(|_| store(&state, hospital, vec![heart_rate(30, 72.0), heart_rate(20, 75.0)]));
    let answers = futures_util::future::join_all(writes).await;
    let mut new = [0, 0];
    for answer in answers {
        let flags = answer.expect("the write succeeds");
        assert_eq!(flags.len(), 2);
        for (count, flag) in new.iter_mut().zip(flags) {
            *count += usize::from(flag);
        }
    }
    assert_eq!(new, [1, 1]);
    // The same moment from another source without a device is the same
    // reading; a new moment is new; a repeat within one call counts once.
    let ecg = Origin::Elsewhere {
        subject: &subject,
        source: Source::Ecg,
    };
    let flags = store(
        &state,
        ecg,
        vec![heart_rate(30, 90.0), heart_rate(10, 80.0), heart_rate(10, 80.0)],
    )
    .await
    .expect("the write succeeds");
    assert_eq!(flags, [false, true, false]);
}
