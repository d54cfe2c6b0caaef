//! `vitalfarm bench analytics`: the read side on a large store. A company
//! with `--subjects` enrollees (birth dates from infancy to old age, both
//! sexes) and `--readings` readings over the last year, filled straight
//! into the store (`COPY` on PostgreSQL, batched inserts on SQLite), then,
//! over HTTP against the server running in this process, each several
//! times: a year of one subject in daily buckets and its year summary, the
//! elderly watch over every enrollee, and the cohort analysis when the
//! server has it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{DateTime, SecondsFormat, Utc};
use vitalfarm_domain::{DeviceId, MembershipId, Sex, SubjectId, SubjectKind};
use vitalfarm_storage::repo::readings::NewRow;
use vitalfarm_storage::repo::subjects;
use vitalfarm_storage::{Database, bulk};

use super::{Scratch, percentile_ms};
use vitalfarm_api::server;
use vitalfarm_app::config::Config;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Rows per fill batch.
const FILL_CHUNK: usize = 100_000;
/// The rows of one measurement of a subject: metric, component, unit, base
/// value. Blood pressure is one reading of two rows.
const TICK: [(&str, &str, &str, f64); 5] = [
    ("heart_rate", "", "/min", 72.0),
    ("spo2", "", "%", 97.0),
    ("body_temperature", "", "Cel", 36.8),
    ("blood_pressure", "systolic", "mm[Hg]", 125.0),
    ("blood_pressure", "diastolic", "mm[Hg]", 80.0),
];

// `vitalfarm bench analytics`: clap reads the field doc comments as its help.
#[derive(Debug, clap::Args)]
pub struct AnalyticsBench {
    /// A PostgreSQL server (`postgres://user@host:5432/postgres`): the
    /// bench creates a scratch database there and drops it afterwards.
    /// Without it: SQLite in a scratch directory.
    #[arg(long, value_name = "URL", env = "VITALFARM_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Readings in the store, over the last year.
    #[arg(long, default_value_t = 10_000_000)]
    pub readings: u64,
    /// Enrollees of the bench company.
    #[arg(long, default_value_t = 1000)]
    pub subjects: usize,
    /// Timed runs of each query.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Keep the scratch PostgreSQL database.
    #[arg(long)]
    pub keep: bool,
    /// Where the scratch directory goes (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

macro_rules! progress {
    ($($arg:tt)*) => { eprintln!("bench analytics: {}", format_args!($($arg)*)) };
}

fn rfc3339(ms: i64) -> anyhow::Result<String> {
    let t = DateTime::<Utc>::from_timestamp_millis(ms).with_context(|| format!("time {ms} out of range"))?;
    Ok(t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Runs the bench and returns its report.
pub async fn analytics(opts: AnalyticsBench) -> anyhow::Result<String> {
    ensure!(opts.subjects >= 1, "--subjects must be at least 1");
    ensure!(opts.runs >= 1, "--runs must be at least 1");
    ensure!(
        opts.readings >= opts.subjects as u64 * TICK.len() as u64,
        "--readings must give every subject at least one measurement"
    );
    let scratch = Scratch::create(opts.dir.as_deref(), opts.database_url.as_deref()).await?;
    let config = Config {
        data_dir: scratch.data_dir(),
        database_url: scratch.database_url(),
        bind: "127.0.0.1:0".into(),
        no_mqtt: true,
        log_level: "warn".into(),
        // The enrollees range from infancy to old age and the watch judges
        // every one of them.
        elderly_watch_min_age_years: 0,
        ..Config::default()
    };
    let result = run(&opts, config, &scratch.tag).await;
    scratch.finish(opts.keep).await;
    result
}

/// Median and p95 of `runs` calls of `call`, each of which must succeed.
async fn timed<F, Fut>(runs: usize, mut call: F) -> anyhow::Result<(f64, f64, serde_json::Value)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(reqwest::StatusCode, serde_json::Value)>>,
{
    // One untimed call warms the caches, as a running service's are.
    let (status, mut last) = call().await?;
    ensure!(status.is_success(), "{status}: {last}");
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let (status, body) = call().await?;
        times.push(t.elapsed());
        ensure!(status.is_success(), "{status}: {body}");
        last = body;
    }
    times.sort();
    Ok((percentile_ms(&times, 0.5), percentile_ms(&times, 0.95), last))
}

async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<(reqwest::StatusCode, serde_json::Value)> {
    let resp = req.send().await?;
    let status = resp.status();
    Ok((status, resp.json().await.unwrap_or_default()))
}

async fn run(opts: &AnalyticsBench, config: Config, tag: &str) -> anyhow::Result<String> {
    let state = vitalfarm_app::AppState::prepare(config).await?;
    let running = server::start(state, TcpListener::bind("127.0.0.1:0")?, false).await?;
    let db = running.state.db.clone();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let password = vitalfarm_app::auth::secrets::generate("bench_")?;
    let email = format!("bench-{tag}@example.com");
    let (status, signup) = send(client.post(format!("{base}/v1/auth/signup")).json(&serde_json::json!({
        "email": email, "password": password, "display_name": "Bench",
        "membership": {"kind": "company", "name": format!("Bench {tag}")}
    })))
    .await?;
    ensure!(status.is_success(), "signing up: {status}: {signup}");
    let mid: uuid::Uuid = signup["membership"]["id"].as_str().context("no membership")?.parse()?;

    let now_ms = Utc::now().timestamp_millis();
    progress!("{} enrollees, {} readings", opts.subjects, opts.readings);
    let (subject_ids, fill_secs) = fill(&db, MembershipId::from_uuid(mid), opts, now_ms).await?;
    bulk::settle(&db).await?;

    // The token may have expired during a long fill.
    let (status, tokens) = send(
        client
            .post(format!("{base}/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password})),
    )
    .await?;
    ensure!(status.is_success(), "logging in: {status}: {tokens}");
    let token = tokens["access_token"].as_str().context("no access token")?.to_owned();

    let sid = subject_ids[subject_ids.len() / 2];
    let (from, to) = (rfc3339(now_ms - 365 * DAY_MS)?, rfc3339(now_ms + 1000)?);
    progress!("year of one subject");
    let period = format!("from={}&to={}", from.replace(':', "%3A"), to.replace(':', "%3A"));
    let aggregate_url = format!("{base}/v1/subjects/{sid}/readings/aggregate?metric=heart_rate&bucket=1d&{period}");
    let (agg_p50, agg_p95, agg) = timed(opts.runs, || send(client.get(&aggregate_url).bearer_auth(&token)))
        .await
        .context("aggregate")?;
    let buckets = agg["buckets"].as_array().map_or(0, Vec::len);
    let summary_url = format!("{base}/v1/subjects/{sid}/summary?{period}");
    let (sum_p50, sum_p95, _) = timed(opts.runs, || send(client.get(&summary_url).bearer_auth(&token)))
        .await
        .context("summary")?;

    progress!("elderly watch over {} subjects", subject_ids.len());
    let watch_url = format!("{base}/v1/mashups/elderly-watch/run");
    let (watch_p50, watch_p95, board) = timed(opts.runs, || {
        send(
            client
                .post(&watch_url)
                .bearer_auth(&token)
                .json(&serde_json::json!({"membership_id": mid})),
        )
    })
    .await
    .context("elderly watch")?;
    let judged = board["subjects"].as_array().map_or(0, Vec::len);
    ensure!(
        judged == subject_ids.len(),
        "the watch judged {judged} of {} subjects",
        subject_ids.len()
    );

    progress!("cohort");
    let cohort_url = format!("{base}/v1/analytics/cohort");
    let cohort_body = serde_json::json!({"metric": "heart_rate", "from": from, "to": to});
    let probe = send(client.post(&cohort_url).bearer_auth(&token).json(&cohort_body)).await?;
    let cohort = if probe.0.is_success() {
        let (p50, p95, _) = timed(opts.runs, || {
            send(client.post(&cohort_url).bearer_auth(&token).json(&cohort_body))
        })
        .await
        .context("cohort")?;
        format!(
            "cohort, heart rate of {} subjects over 365 days: median {p50:.1} ms, p95 {p95:.1} ms\n",
            subject_ids.len()
        )
    } else {
        format!("cohort: not available (HTTP {})\n", probe.0.as_u16())
    };
    running.handle.stop(true).await;
    db.close().await?;

    let database = if opts.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut out = format!(
        "vitalfarm bench analytics: {database}, {} subjects, {} runs each\n",
        subject_ids.len(),
        opts.runs
    );
    out.push_str(&format!(
        "store: {} readings over 365 days, filled in {fill_secs:.1} s ({})\n",
        opts.readings,
        if opts.database_url.is_some() {
            "COPY"
        } else {
            "batched INSERT"
        }
    ));
    out.push_str(&format!(
        "year of one subject, heart rate in daily buckets ({buckets} buckets): median {agg_p50:.1} ms, p95 {agg_p95:.1} ms\n"
    ));
    out.push_str(&format!(
        "year summary of one subject, every metric: median {sum_p50:.1} ms, p95 {sum_p95:.1} ms\n"
    ));
    out.push_str(&format!(
        "elderly watch, {judged} subjects: median {watch_p50:.1} ms, p95 {watch_p95:.1} ms ({} emergency, {} attention, {} ok)\n",
        board["summary"]["emergency"], board["summary"]["attention"], board["summary"]["ok"]
    ));
    out.push_str(&cohort);
    Ok(out)
}

/// Creates the enrollees and their readings, one measurement (every row of
/// [`TICK`]) at a time, evenly over the year before `now_ms`, the last one
/// a few minutes before it. Returns the subjects and the fill's seconds.
async fn fill(
    db: &Database,
    membership: MembershipId,
    opts: &AnalyticsBench,
    now_ms: i64,
) -> anyhow::Result<(Vec<uuid::Uuid>, f64)> {
    let t = Instant::now();
    let today = Utc::now().date_naive();
    let mut ids = Vec::with_capacity(opts.subjects);
    for i in 0..opts.subjects {
        // Ages from a few months to about 95 years, both sexes.
        let age_days = 100 + (i as i64 * 7919) % (95 * 365);
        let s = subjects::create(
            db,
            membership,
            subjects::NewSubject {
                kind: SubjectKind::Enrollee,
                display_name: &format!("Enrollee {i}"),
                birth_date: Some(today - chrono::Duration::days(age_days)),
                sex: Some(if i % 2 == 0 { Sex::Female } else { Sex::Male }),
                external_ref: None,
            },
        )
        .await?;
        ids.push(s.id);
    }
    let ticks = opts.readings / (opts.subjects as u64 * TICK.len() as u64);
    let step = (365 * DAY_MS) / i64::try_from(ticks.max(1)).unwrap_or(1);
    let mut chunk = Vec::with_capacity(FILL_CHUNK);
    let mut written = 0u64;
    for (i, sid) in ids.iter().enumerate() {
        let device = uuid::Uuid::now_v7();
        // Most end a few minutes ago; every tenth went silent a day ago,
        // every fiftieth has a hypertensive last measurement.
        let end = if i % 10 == 9 {
            now_ms - DAY_MS
        } else {
            now_ms - 5 * 60_000
        };
        for k in 0..ticks {
            let ts_ms = end - i64::try_from(ticks - 1 - k).unwrap_or(0) * step;
            let wave = ((k as usize + i * 13) % 97) as f64 / 97.0;
            for (metric, component, unit, v) in TICK {
                let mut value = v * (1.0 + 0.04 * (wave * std::f64::consts::TAU).sin());
                if k == ticks - 1 && i % 50 == 7 && metric == "blood_pressure" {
                    value += 70.0;
                }
                chunk.push(NewRow {
                    membership_id: membership,
                    subject_id: SubjectId::from_uuid(*sid),
                    device_id: Some(DeviceId::from_uuid(device)),
                    metric,
                    component,
                    ts_ms,
                    value: (value * 10.0).round() / 10.0,
                    unit,
                    source: "device",
                    seq: None,
                });
            }
            if chunk.len() >= FILL_CHUNK {
                written += store(db, std::mem::take(&mut chunk)).await?;
                progress!("filled {written} of {}", opts.readings);
            }
        }
    }
    if !chunk.is_empty() {
        store(db, chunk).await?;
    }
    Ok((ids, t.elapsed().as_secs_f64()))
}

/// Writes `rows`: `COPY` on PostgreSQL; on SQLite the write path's batched
/// inserts, whose returned identities leave out the component (a blood
/// pressure's two rows count once), so the rows sent are counted.
async fn store(db: &Database, rows: Vec<NewRow>) -> anyhow::Result<u64> {
    let n = rows.len() as u64;
    match db.kind() {
        vitalfarm_storage::DatabaseKind::Postgres => Ok(bulk::fill(db, rows).await?),
        vitalfarm_storage::DatabaseKind::Sqlite => {
            vitalfarm_storage::repo::readings::insert_new(db, rows).await?;
            Ok(n)
        }
    }
}
