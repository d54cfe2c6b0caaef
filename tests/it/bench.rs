//! `vitalfarm bench ingest` end to end at a small size, on the suite's
//! database and broker. The bench checks for itself that every phase
//! stored exactly what it sent (and fails otherwise); this test checks that
//! it gets through every phase and reports every figure, so the command
//! keeps working. The figures themselves are not judged here.

use vitalfarm_tests::{external_mqtt_url, postgres_url};
use vitalfarm_tools::bench::{IngestBench, ingest};

fn figures_of<'a>(report: &'a str, label: &str) -> Vec<&'a str> {
    let line = report
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no line {label:?} in\n{report}"));
    line[label.len()..].split_whitespace().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_ingest_runs_every_phase_and_reports_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let on_postgres = postgres_url().is_some();
    let before = scratch_databases().await;
    let report = ingest(IngestBench {
        database_url: postgres_url(),
        mqtt_url: external_mqtt_url(),
        devices: 3,
        http_readings: 3000,
        http_batch: 500,
        http_clients: 2,
        mqtt_readings: 2000,
        mqtt_batch: 5,
        writers: None,
        store: 20_000,
        queries: 5,
        keep: false,
        dir: Some(dir.path().to_path_buf()),
    })
    .await
    .unwrap();

    let http = figures_of(&report, "HTTP, 500 per request, 2 conns");
    assert_eq!(http[0], "3000", "{report}");
    let rate: f64 = http[1].parse().unwrap();
    assert!(rate > 0.0, "{report}");
    let p99: f64 = http[3].parse().unwrap();
    assert!(p99 >= http[2].parse::<f64>().unwrap(), "{report}");
    if on_postgres {
        assert!(http.contains(&"COPY,"), "{report}");
        let copy_rate: f64 = http[http.len() - 2].parse().unwrap();
        assert!(copy_rate > 0.0, "{report}");
    } else {
        assert!(report.contains("SQLite has no COPY"), "{report}");
    }

    let mqtt = figures_of(&report, "MQTT QoS 1, 5 per message");
    assert_eq!(mqtt[0], "2000", "{report}");
    assert!(mqtt[1].parse::<f64>().unwrap() > 0.0, "{report}");
    assert!(mqtt.iter().any(|t| t.starts_with("publish→subscribe")), "{report}");
    assert!(!report.contains("dropped"), "{report}");

    assert!(report.contains("store: 20000 readings (15000 added"), "{report}");
    let raw = figures_of(&report, "raw readings, every page (1,000 a page)");
    assert_eq!(raw[0], "5", "{report}");
    // 15,000 filler rows over 3 subjects and 4 metrics: 1,250 minutes, so
    // a day's window holds about that many heart rates of one subject.
    let rows: f64 = raw[1].parse().unwrap();
    assert!((1.0..=1440.0).contains(&rows), "{report}");
    let buckets = figures_of(&report, "hourly buckets");
    assert!(buckets[1].parse::<f64>().unwrap() >= 1.0, "{report}");

    // The scratch database is dropped at the end.
    assert_eq!(scratch_databases().await, before);
}

/// The bench's scratch databases on the suite's PostgreSQL server.
async fn scratch_databases() -> Vec<String> {
    use sea_orm::ConnectionTrait;
    let Some(server) = postgres_url() else {
        return Vec::new();
    };
    let admin = sea_orm::Database::connect(&server).await.unwrap();
    let rows = admin
        .query_all_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            "SELECT datname FROM pg_database WHERE datname LIKE 'vitalfarm\\_bench\\_%' ORDER BY datname".to_owned(),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "datname").unwrap())
        .collect()
}

/// The pool's PostgreSQL connections have Nagle's algorithm off (sqlx
/// 0.9.0 left it on; `storage/src/nodelay.rs`), so a large statement is not
/// held back 40 ms waiting for the server's delayed ACK.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn postgres_connections_have_tcp_nodelay() {
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};
    let Some(server) = postgres_url() else {
        // Only PostgreSQL connections are TCP.
        return;
    };
    let port = server
        .parse::<sea_orm::sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .get_port();
    let db = vitalfarm_storage::Database::connect(&server).await.unwrap();
    // The port of our end of a pool connection, as the server sees it
    // (other tests' connections are not ours to judge).
    use sea_orm::ConnectionTrait;
    let row = db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            db.backend(),
            "SELECT inet_client_port() AS p".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let ours = u16::try_from(row.try_get::<i32>("", "p").unwrap()).unwrap();
    let pidfd = pidfd_open(getpid(), PidfdFlags::empty()).unwrap();
    let mut found = None;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(number) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fd) = pidfd_getfd(&pidfd, number, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let addr = |a: Option<rustix::net::SocketAddrAny>| a.and_then(|a| std::net::SocketAddr::try_from(a).ok());
        let peer = addr(rustix::net::getpeername(&fd).ok().flatten());
        let local = addr(rustix::net::getsockname(&fd).ok());
        if peer.is_some_and(|p| p.port() == port) && local.is_some_and(|l| l.port() == ours) {
            found = Some(rustix::net::sockopt::tcp_nodelay(&fd).unwrap());
        }
    }
    db.close().await.unwrap();
    assert_eq!(found, Some(true), "TCP_NODELAY on the connection from port {ours}");
}
