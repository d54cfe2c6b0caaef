//! Erasure as crypto-shredding, the audit chain's recorded head, and the
//! SQLite durability settings: what stays on disk after `DELETE
//! /v1/memberships/{mid}`, searched for byte by byte in the data directory
//! and (on PostgreSQL) in the database's own relation files.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, Statement};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;
use vitalfarm_app::config::Config;
use vitalfarm_storage::DatabaseKind;
use vitalfarm_storage::entity::{erasure_scrub, farm};
use vitalfarm_tests::{Member, PASSWORD, Resp, TestApp};

// ---- Markers: text that appears nowhere else, and numbers whose stored
// forms (text, and IEEE-754 doubles in either byte order) can be found. ----

const EMAIL: &str = "qzmark-email-4417@example.org";
const DISPLAY_NAME: &str = "Qzmark Display 4417";
const MEMBERSHIP_NAME: &str = "Qzmark Company 4417";
const SERIAL: &str = "QZMARK-SERIAL-4417";
const SUBJECT_NAME: &str = "Qzmark Subject 4417";
const NOTE_PATH: &str = "qzmark-folder-4417/qzmark-notes-4417.txt";
const BIG_PATH: &str = "qzmark-big-4417.bin";
const CRASH_PATH: &str = "qzmark-crash-4417.bin";
/// Every stored text marker contains this.
const STEM: &str = "qzmark";

/// Heart rates with a fractional part that is exact in binary (k/64), so
/// neither database stores them as integers and their bytes are known.
fn marker_values() -> Vec<f64> {
    (0..24).map(|i| 61.171875 + f64::from(i) * 1.5).collect()
}

/// Bytes that must not be found anywhere, with a name for the report.
fn needles(values: &[f64], wrapped_key: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = [
        EMAIL,
        DISPLAY_NAME,
        MEMBERSHIP_NAME,
        SERIAL,
        SUBJECT_NAME,
        NOTE_PATH,
        "qzmark-notes-4417.txt",
        BIG_PATH,
        CRASH_PATH,
        STEM,
        &STEM.to_uppercase(),
        "Qzmark",
    ]
    .iter()
    .map(|s| (format!("text {s:?}"), s.as_bytes().to_vec()))
    .collect();
    for v in values {
        out.push((format!("value {v} as text"), v.to_string().into_bytes()));
        out.push((format!("value {v} as big-endian double"), v.to_be_bytes().to_vec()));
        out.push((format!("value {v} as little-endian double"), v.to_le_bytes().to_vec()));
    }
    out.push(("wrapped farm key".into(), wrapped_key.as_bytes().to_vec()));
    {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(wrapped_key)
            .expect("wrapped key is base64");
        out.push(("wrapped farm key, decoded".into(), raw));
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || haystack.len() < needle.len() {
        return false;
    }
    // Anchored on a byte that is rare in database pages (not 0x00 or
    // 0xff), so the scan of a mostly-zero file stays quick.
    let k = needle.iter().position(|&b| b != 0 && b != 0xff).unwrap_or(0);
    let anchor = needle[k];
    let last_start = haystack.len() - needle.len();
    let mut at = k;
    while at <= last_start + k {
        match haystack[at..=last_start + k].iter().position(|&b| b == anchor) {
            None => return false,
            Some(p) => {
                let start = at + p - k;
                if &haystack[start..start + needle.len()] == needle {
                    return true;
                }
                at += p + 1;
            }
        }
    }
    false
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files_under(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// Every (needle, file) pair where the needle occurs.
fn scan(dirs: &[PathBuf], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut files = Vec::new();
    for dir in dirs {
        files_under(dir, &mut files);
    }
    let mut hits = Vec::new();
    for file in files {
        // A file removed between listing and reading is not a hit.
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for (name, needle) in needles {
            if find(&bytes, needle) {
                hits.push(format!("{name} in {}", file.display()));
            }
        }
    }
    hits
}

/// On PostgreSQL: the directory holding this database's relation files
/// (readable when the tests run as root or as the cluster's owner), after a
/// checkpoint has written every dirty page to it.
async fn pg_relation_dir(app: &TestApp) -> Option<PathBuf> {
    let db = app.db();
    if db.kind() != DatabaseKind::Postgres {
        return None;
    }
    db.conn().execute_unprepared("CHECKPOINT").await.expect("CHECKPOINT");
    let row = db
        .conn()
        .query_one_raw(Statement::from_string(
            db.backend(),
            "SELECT current_setting('data_directory') AS dir, \
             (SELECT oid::bigint FROM pg_database WHERE datname = current_database()) AS oid",
        ))
        .await
        .unwrap()
        .unwrap();
    let dir: String = row.try_get("", "dir").unwrap();
    let oid: i64 = row.try_get("", "oid").unwrap();
    let path = PathBuf::from(dir).join("base").join(oid.to_string());
    assert!(
        std::fs::read_dir(&path).is_ok(),
        "the database's files at {} must be readable by the test",
        path.display()
    );
    Some(path)
}

// ---- A server in a child process, to be killed with SIGKILL. ----

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `vitalfarm serve` in a child process (this test binary, re-entered
/// through `faults::child_server`), on the configuration of a stopped
/// in-process server.
struct ChildServer {
    process: Child,
    base: String,
}

impl ChildServer {
    async fn start(config: &Config) -> Self {
        let port = free_port();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "faults::child_server",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VITALFARM_CHILD", "1")
        .env("VITALFARM_BIND", format!("127.0.0.1:{port}"))
        .env("VITALFARM_DATA_DIR", &config.data_dir)
        .env("VITALFARM_DATABASE_URL", config.database_url.as_deref().unwrap())
        .env("VITALFARM_NO_MQTT", "true")
        .env("VITALFARM_PUBLIC_URL", config.public_url.as_deref().unwrap())
        .env("VITALFARM_JOB_POLL_INTERVAL_MS", "50")
        .env("VITALFARM_LOG_LEVEL", "warn");
        if let Some(url) = &config.object_store_url {
            cmd.env("VITALFARM_OBJECT_STORE_URL", url);
        }
        if std::env::var_os("VITALFARM_TEST_LOG").is_none() {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        // Killed on drop, whatever happens from here on.
        let server = Self {
            process: cmd.spawn().expect("child server starts"),
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..600 {
            if let Ok(r) = reqwest::get(format!("{}/readyz", server.base)).await
                && r.status() == StatusCode::OK
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the child server did not become ready");
    }

    /// SIGKILL: no shutdown, no clean-up, as in a crash.
    fn kill(self) {
        drop(self);
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn staging_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(dir, &mut files);
    files
        .into_iter()
        .filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.rsplit_once('#'))
                .is_some_and(|(_, d)| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// Random-looking bytes (nothing to compress, nothing to find).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Starts an upload of `total` bytes with a raw connection, sends `sent`
/// of them and stalls: the server is mid-upload until it is killed.
async fn stalled_upload(
    base: &str,
    token: &str,
    farm: Uuid,
    path: &str,
    total: usize,
    sent: usize,
) -> tokio::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /v1/farms/{farm}/files/{path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let body = noise(sent, 77);
    stream.write_all(&body).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

async fn wait_for_staging(dir: &Path, what: &str) -> Vec<PathBuf> {
    for _ in 0..30_000 {
        let found = staging_files(dir);
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("no staging file of the {what} appeared under {}", dir.display());
}

async fn signup_with_markers(app: &TestApp) -> Member {
    let res = app
        .post(
            "/v1/auth/signup",
            None,
            json!({
                "email": EMAIL,
                "password": PASSWORD,
                "display_name": DISPLAY_NAME,
                "membership": {"kind": "company", "name": MEMBERSHIP_NAME}
            }),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    Member {
        email: EMAIL.to_owned(),
        user_id: res.id("/user/id"),
        membership_id: res.id("/membership/id"),
        farm_id: res.id("/membership/farm_id"),
        token: res.str("/tokens/access_token"),
        refresh_token: res.str("/tokens/refresh_token"),
    }
}

async fn ingest_markers(app: &TestApp, credential: &str, values: &[f64]) {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").unwrap();
    let readings: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let ts = start + chrono::Duration::minutes(i as i64);
            json!({"metric": "heart_rate", "ts": ts.to_rfc3339(), "value": v})
        })
        .collect();
    let res = app
        .client
        .post(app.url("/v1/ingest/readings"))
        .header("authorization", credential)
        .json(&json!({ "readings": readings }))
        .send()
        .await
        .unwrap();
    let res = Resp::from(res).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["rejected"], json!([]), "{}", res.text);
}

/// Runs the erasures' scrub until none is owed (the erasure's own
/// background run may hold it meanwhile).
async fn scrub_until_done(app: &TestApp) {
    for _ in 0..200 {
        vitalfarm_app::erasure::scrub(app.db()).await.expect("scrub");
        let owed = erasure_scrub::Entity::find().count(app.db().conn()).await.unwrap();
        if owed == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the erasure's scrub never finished");
}

#[tokio::test]
async fn erasure_leaves_no_marker_and_no_wrapped_key_on_disk_even_after_crashes() {
    let values = marker_values();
    let app = TestApp::spawn_with(|c| {
        // The token issuer stays the same whichever process serves.
        c.public_url = Some("http://vitalfarm.test".into());
        c.no_jobs = true;
    })
    .await;
    let care = signup_with_markers(&app).await;
    let device = app.monitored_device(&care, SERIAL).await;
    let res = app
        .patch(
            &format!("/v1/subjects/{}", device.subject),
            &care.token,
            json!({"display_name": SUBJECT_NAME}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    ingest_markers(&app, &device.credential(), &values).await;
    let note = format!("{STEM} notes: heart rate {}\n", values[0]).repeat(50);
    let res = app
        .upload(&care.token, care.farm_id, NOTE_PATH, note.into_bytes(), &[])
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    // Large enough that the export is written in several parts.
    let res = app
        .upload(&care.token, care.farm_id, BIG_PATH, noise(40 * 1024 * 1024, 5), &[])
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);

    // A bystander whose data must stay.
    let bystander = app.company("stays@other.example").await;
    let res = app
        .upload(&bystander.token, bystander.farm_id, "keep.txt", b"keep".to_vec(), &[])
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);

    let wrapped_key = farm::Entity::find_by_id(care.farm_id)
        .one(app.db().conn())
        .await
        .unwrap()
        .unwrap()
        .wrapped_key
        .expect("the farm has a data key after its first upload");
    let needles = needles(&values, &wrapped_key);
    let mid = care.membership_id;
    let farm_dir = app.config.farm_dir().join(care.farm_id.to_string());
    let export_dir = app.config.farm_dir().join("exports").join(mid.to_string());

    // The scan finds what is there: every kind of marker before erasure
    // (after a checkpoint on PostgreSQL, whose pages are otherwise only in
    // its memory).
    let mut dirs = vec![app.data_dir.path().to_path_buf()];
    dirs.extend(pg_relation_dir(&app).await);
    let before = scan(&dirs, &needles);
    for expected in [
        format!("text {EMAIL:?}"),
        format!("text {MEMBERSHIP_NAME:?}"),
        format!("text {SUBJECT_NAME:?}"),
        format!("text {NOTE_PATH:?}"),
        "wrapped farm key".to_owned(),
    ] {
        assert!(
            before.iter().any(|h| h.starts_with(&format!("{expected} in"))),
            "the scan should find {expected} before erasure: {before:#?}"
        );
    }
    assert!(
        before.iter().any(|h| h.contains("-endian double")),
        "the scan should find the reading values before erasure: {before:#?}"
    );

    // 1. A crash mid-upload: the server is killed while the body streams in.
    let (config, data_dir) = app.stop().await;
    let child = ChildServer::start(&config).await;
    let total = 24 * 1024 * 1024;
    let _upload = stalled_upload(
        &child.base,
        &care.token,
        care.farm_id,
        CRASH_PATH,
        total,
        17 * 1024 * 1024,
    )
    .await;
    let staged = wait_for_staging(&farm_dir, "upload").await;
    child.kill();
    assert!(staged.iter().all(|f| f.exists()), "the crash left {staged:?}");

    // 2. A crash mid-export.
    let child = ChildServer::start(&config).await;
    let res = Resp::from(
        reqwest::Client::new()
            .post(format!("{}/v1/memberships/{mid}/exports", child.base))
            .bearer_auth(&care.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let staged_export = wait_for_staging(&export_dir, "export").await;
    child.kill();
    assert!(!staged_export.is_empty());

    // 3. Erasure, by a fresh server on what the crashes left.
    let app = TestApp::resume(config, data_dir).await;
    let res = app
        .call(
            Method::DELETE,
            &format!("/v1/memberships/{mid}"),
            Some(&care.token),
            Some(json!({"password": PASSWORD, "confirm": MEMBERSHIP_NAME})),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    scrub_until_done(&app).await;
    app.sweep().await;

    let mut dirs = vec![app.data_dir.path().to_path_buf()];
    dirs.extend(pg_relation_dir(&app).await);
    let after = scan(&dirs, &needles);
    assert!(after.is_empty(), "left on disk after erasure: {after:#?}");
    assert!(!farm_dir.exists(), "the erased farm's objects are gone");
    assert!(staging_files(app.data_dir.path()).is_empty());
    let mut left = Vec::new();
    files_under(&export_dir, &mut left);
    assert!(left.is_empty(), "export objects left: {left:?}");

    // The bystander is untouched, and the erasure's record verifies.
    // A new client: the scrub can outlast the server's keep-alive, and a
    // pooled connection closed meanwhile would fail the request.
    let res = reqwest::Client::new()
        .get(app.url(&format!("/v1/farms/{}/files/keep.txt", bystander.farm_id)))
        .bearer_auth(&bystander.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"keep");
    let chain =
        vitalfarm_storage::repo::audit::all_in_order(app.db(), vitalfarm_domain::MembershipId::from_uuid(mid), 0, 10)
            .await
            .unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].action, "membership.erased");
    let mut v = vitalfarm_domain::audit::Verifier::new();
    v.push(&vitalfarm_storage::repo::audit::as_event(&chain[0])).unwrap();
    let head = vitalfarm_storage::repo::audit::head(app.db(), vitalfarm_domain::MembershipId::from_uuid(mid))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.finish(Some((head.0, head.1.as_str()))), Ok(()));
}

#[tokio::test]
async fn the_sweep_removes_staging_files_that_a_crash_left_in_live_farms() {
    let app = TestApp::spawn_with(|c| c.orphan_grace_secs = 60).await;
    if app.config.object_store_url.is_some() {
        // Staging files belong to the local farm directory. An S3 store
        // takes uploads as multipart objects: what a crash leaves there is
        // an unfinished multipart upload, which the bucket's lifecycle rule
        // aborts (the README's `object_store_url`), not a file under the data directory.
        return;
    }
    let ada = app.individual("staging@example.org").await;
    let res = app
        .upload(&ada.token, ada.farm_id, "kept.txt", b"kept".to_vec(), &[])
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let farm_dir = app.config.farm_dir().join(ada.farm_id.to_string());
    let exports_dir = app
        .config
        .farm_dir()
        .join("exports")
        .join(ada.membership_id.to_string());
    std::fs::create_dir_all(&exports_dir).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let stale_blob = farm_dir.join(format!("{}#1", Uuid::now_v7()));
    let stale_export = exports_dir.join(format!("{}.zip#2", Uuid::now_v7()));
    let fresh = farm_dir.join(format!("{}#1", Uuid::now_v7()));
    for f in [&stale_blob, &stale_export, &fresh] {
        std::fs::write(f, b"partial").unwrap();
    }
    for f in [&stale_blob, &stale_export] {
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    app.sweep().await;
    assert!(
        !stale_blob.exists() && !stale_export.exists(),
        "stale staging files are removed"
    );
    assert!(fresh.exists(), "an upload that may still be running is left alone");
    let (status, _, body) = app.download(&ada.token, ada.farm_id, "kept.txt", &[]).await;
    assert_eq!((status, body), (StatusCode::OK, b"kept".to_vec()));
}

#[tokio::test]
async fn an_emptied_or_truncated_audit_chain_does_not_verify() {
    let app = TestApp::spawn().await;
    let acme = app.company("chain@acme.example").await;
    let mid = acme.membership_id;
    for i in 0..4 {
        let res = app
            .post(
                &format!("/v1/memberships/{mid}/api-keys"),
                Some(&acme.token),
                json!({"name": format!("key {i}")}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    }
    let v = app.audit_verify(mid, &acme.token).await;
    assert_eq!(v, json!({"ok": true, "checked": 4, "first_broken": null}));

    // The newest events removed: every event left is intact, but the chain
    // no longer reaches its recorded head.
    app.exec_sql(
        "DELETE FROM audit_events WHERE membership_id = ? AND seq > 2",
        vec![mid.into()],
    )
    .await;
    let v = app.audit_verify(mid, &acme.token).await;
    assert_eq!(
        v,
        json!({"ok": false, "checked": 2, "first_broken": {"seq": 3, "event_id": null, "reason": "truncated"}})
    );

    // The whole chain removed.
    app.exec_sql("DELETE FROM audit_events WHERE membership_id = ?", vec![mid.into()])
        .await;
    let v = app.audit_verify(mid, &acme.token).await;
    assert_eq!(
        v,
        json!({"ok": false, "checked": 0, "first_broken": {"seq": 1, "event_id": null, "reason": "truncated"}})
    );

    // Appending again does not paper over the removal: the chain continues
    // from its head, leaving a gap.
    let res = app
        .post(
            &format!("/v1/memberships/{mid}/api-keys"),
            Some(&acme.token),
            json!({"name": "after"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let v = app.audit_verify(mid, &acme.token).await;
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken"]["seq"], 5);
    assert_eq!(v["first_broken"]["reason"], "seq_gap");
}

#[tokio::test]
async fn every_sqlite_connection_syncs_fully_and_deletes_securely() {
    let app = TestApp::spawn().await;
    let db = app.db();
    if db.kind() != DatabaseKind::Sqlite {
        return;
    }
    // Hold several connections at once, so the pragmas are read from more
    // than the one connection a single query would use.
    let mut txns = Vec::new();
    for _ in 0..4 {
        txns.push(sea_orm::TransactionTrait::begin(db.conn()).await.unwrap());
    }
    for txn in &txns {
        for (pragma, expected) in [
            ("synchronous", 2i64),
            ("secure_delete", 1),
            ("foreign_keys", 1),
            ("busy_timeout", 10_000),
        ] {
            let row = txn
                .query_one_raw(Statement::from_string(db.backend(), format!("PRAGMA {pragma}")))
                .await
                .unwrap()
                .unwrap();
            let got: i64 = row.try_get_by_index(0).unwrap();
            assert_eq!(got, expected, "PRAGMA {pragma}");
        }
        let row = txn
            .query_one_raw(Statement::from_string(db.backend(), "PRAGMA journal_mode"))
            .await
            .unwrap()
            .unwrap();
        let mode: String = row.try_get_by_index(0).unwrap();
        assert_eq!(mode, "wal");
    }
}

/// Without an SMTP server the service writes mail into `data_dir/outbox/`:
/// a verification mail and an invitation naming the membership would keep
/// its address and name in the data directory after the erasure.
#[tokio::test]
async fn erasure_removes_the_outbox_mail_that_names_the_membership() {
    let app = TestApp::spawn_with(|c| c.smtp_url = None).await;
    let owner = app.company("outbox-marker-owner@example.org").await;
    let bystander = app.individual("outbox-bystander@example.org").await;
    let res = app
        .post(
            &format!("/v1/memberships/{}/members", owner.membership_id),
            Some(&owner.token),
            json!({"email": "outbox-marker-invitee@example.org", "role": "analyst"}),
        )
        .await;
    assert!(res.status.is_success(), "{}", res.text);
    let outbox = app.data_dir.path().join("outbox");
    let read_outbox = || -> Vec<String> {
        std::fs::read_dir(&outbox)
            .map(|d| d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect())
            .unwrap_or_default()
    };
    // Mail is sent off the request's path: wait until all three are written.
    let mut mails = Vec::new();
    for _ in 0..100 {
        mails = read_outbox();
        if mails.iter().filter(|m| m.contains("outbox-marker")).count() >= 2
            && mails.iter().any(|m| m.contains("outbox-bystander"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(mails.iter().any(|m| m.contains("outbox-marker-owner")), "{mails:#?}");
    assert!(mails.iter().any(|m| m.contains("outbox-marker-invitee")), "{mails:#?}");

    let name = app
        .get(&format!("/v1/memberships/{}", owner.membership_id), &owner.token)
        .await
        .str("/name");
    let res = app
        .call(
            Method::DELETE,
            &format!("/v1/memberships/{}", owner.membership_id),
            Some(&owner.token),
            Some(json!({"password": PASSWORD, "confirm": name})),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);

    let left = read_outbox();
    assert!(
        !left.iter().any(|m| m.contains("outbox-marker") || m.contains(&name)),
        "outbox mail naming the erased membership stays: {left:#?}"
    );
    assert!(
        left.iter().any(|m| m.contains("outbox-bystander")),
        "a bystander's mail went too"
    );
    drop(bystander);
}
