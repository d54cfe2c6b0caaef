//! `vitalfarm bench export`: a membership export of N readings (default one
//! million) through the real job worker, printing readings per second and
//! the process's peak resident memory during the export, which stays flat
//! whatever N is: readings are paged, the archive is streamed into a
//! multipart upload.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use vitalfarm_domain::{DeviceId, MembershipId, SubjectId, SubjectKind};
use vitalfarm_storage::repo::{readings, subjects};

use vitalfarm_api::server;
use vitalfarm_app::config::Config;

// `vitalfarm bench export`: clap reads the field doc comments as its help.
#[derive(Debug, clap::Args)]
pub struct ExportBench {
    #[arg(long, default_value_t = 1_000_000)]
    pub readings: u64,
    #[arg(long, default_value_t = 10)]
    pub subjects: u64,
    /// Where the scratch directory goes (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// A `/proc/self/status` field in KiB (Linux); `None` elsewhere.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[allow(clippy::print_stdout, reason = "printing the figures is what a benchmark is for")]
pub async fn export(opts: ExportBench) -> anyhow::Result<()> {
    vitalfarm_app::install_crypto_provider();
    let scratch = match &opts.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir_in(".")?,
    };
    let config = Config {
        data_dir: scratch.path().join("data"),
        bind: "127.0.0.1:0".into(),
        no_mqtt: true,
        log_level: "warn".into(),
        job_poll_interval_ms: 100,
        ..Config::default()
    };
    let state = vitalfarm_app::AppState::prepare(config).await?;
    let running = server::start(state, TcpListener::bind("127.0.0.1:0")?, false).await?;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let signup: serde_json::Value = client
        .post(format!("{base}/v1/auth/signup"))
        .json(&serde_json::json!({
            "email": "bench@example.org", "password": "benchmark passphrase",
            "display_name": "Bench", "membership": {"kind": "company", "name": "Bench"}
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = signup["tokens"]["access_token"]
        .as_str()
        .context("no token")?
        .to_owned();
    let mid: uuid::Uuid = signup["membership"]["id"].as_str().context("no membership")?.parse()?;
    let membership = MembershipId::from_uuid(mid);

    // The fill goes straight to the store, one heart rate a second per
    // subject: the bench measures the export, not the ingest.
    let db = &running.state.db;
    let subjects_n = opts.subjects.max(1);
    let per_subject = opts.readings.div_ceil(subjects_n);
    let start_ms = 1_763_683_200_000i64;
    let mut written = 0u64;
    let fill = Instant::now();
    for i in 0..subjects_n {
        let s = subjects::create(
            db,
            membership,
            subjects::NewSubject {
                kind: SubjectKind::Enrollee,
                display_name: &format!("Subject {i}"),
                birth_date: None,
                sex: None,
                external_ref: None,
            },
        )
        .await?;
        let device = uuid::Uuid::now_v7();
        let mut k = 0;
        while k < per_subject && written < opts.readings {
            let n = (per_subject - k).min(20_000).min(opts.readings - written);
            let rows = (k..k + n)
                .map(|j| readings::NewRow {
                    membership_id: MembershipId::from_uuid(mid),
                    subject_id: SubjectId::from_uuid(s.id),
                    device_id: Some(DeviceId::from_uuid(device)),
                    metric: "heart_rate",
                    component: "",
                    ts_ms: start_ms + i64::try_from(j).unwrap_or(0) * 1000,
                    value: 60.0 + (j % 40) as f64,
                    unit: "/min",
                    source: "device",
                    seq: None,
                })
                .collect();
            readings::insert_new(db, rows).await?;
            k += n;
            written += n;
        }
    }
    let fill_secs = fill.elapsed().as_secs_f64();
    let rss_before = status_kib("VmRSS:");
    // Resets the peak, so the figure below is the export's alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");

    let t = Instant::now();
    let created: serde_json::Value = client
        .post(format!("{base}/v1/memberships/{mid}/exports"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = created["id"].as_str().context("no export id")?.to_owned();
    let done = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let e: serde_json::Value = client
            .get(format!("{base}/v1/memberships/{mid}/exports/{id}"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match e["status"].as_str() {
            Some("queued" | "running") => continue,
            Some("succeeded") => break e,
            other => anyhow::bail!("export ended {other:?}"),
        }
    };
    let secs = t.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");
    running.handle.stop(true).await;

    let exported = done["counts"]["readings"].as_u64().unwrap_or(0);
    let size = done["size"].as_u64().unwrap_or(0);
    println!("vitalfarm bench export: SQLite, local store, {subjects_n} subjects");
    println!("fill: {written} readings in {fill_secs:.1} s (straight to the store)");
    println!(
        "export: {exported} readings, {:.1} MiB ZIP in {secs:.1} s = {:.0} readings/s",
        size as f64 / 1024.0 / 1024.0,
        exported as f64 / secs.max(1e-9)
    );
    let mib = |k: Option<u64>| k.map_or("n/a".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!(
        "resident memory: {} before the export, peak {} during it",
        mib(rss_before),
        mib(peak)
    );
    Ok(())
}
