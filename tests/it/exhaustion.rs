//! Exhaustion (issue 13, items 9 and 10): a tenant cannot hold more disk
//! than its quota, nor crowd out other tenants' exports; a client cannot
//! hold a connection by stalling a body or by not reading a response.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;
use vitalfarm_domain::JobId;
use vitalfarm_storage::export_objects;
use vitalfarm_storage::repo::jobs;
use vitalfarm_tests::{Member, TestApp};

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn farm_of(app: &TestApp, who: &Member) -> Value {
    let res = app.get(&format!("/v1/farms/{}", who.farm_id), &who.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.body
}

/// Bytes of every object (staging parts included) under the local farm
/// directory.
fn bytes_on_disk(app: &TestApp) -> u64 {
    fn walk(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        let path = e.path();
                        if path.is_dir() {
                            walk(&path)
                        } else {
                            e.metadata().map(|m| m.len()).unwrap_or(0)
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&app.config.farm_dir())
}

fn local_store(app: &TestApp) -> bool {
    app.config.object_store_url.is_none()
}

/// Opens a connection and sends a request head announcing `len` body bytes.
async fn send_head(app: &TestApp, method: &str, target: &str, bearer: Option<&str>, len: usize) -> TcpStream {
    let mut stream = TcpStream::connect(app.running.addr).await.unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
        app.running.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Reads until the server closes the connection, for at most `limit`;
/// `None` if it did not answer and close in time. Returns the status and
/// the body text.
async fn answer_within(stream: &mut TcpStream, limit: Duration) -> Option<(u16, String)> {
    let mut response = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut response)).await;
    match read {
        Ok(Ok(_)) | Ok(Err(_)) if !response.is_empty() => {}
        _ => return None,
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Reads the status line of a response that has (at least) begun, without
/// waiting for the connection to close.
async fn status_within(stream: &mut TcpStream, limit: Duration) -> Option<u16> {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(limit, stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => String::from_utf8_lossy(&buf[..n])
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok()),
        _ => None,
    }
}

// ---- Item 9: disk beyond quota ------------------------------------------

#[tokio::test]
async fn overwriting_a_file_again_and_again_keeps_disk_use_within_the_quota() {
    const QUOTA: u64 = 100 * 1024;
    const FILE: usize = 40 * 1024;
    let app = TestApp::spawn_with(|c| {
        c.farm_quota_bytes = QUOTA;
        // No sweep runs during the test: what is freed is freed by the
        // writes themselves.
        c.sweep_interval_secs = 3600;
    })
    .await;
    let ada = app.individual("overwriter@example.org").await;
    let first = app
        .upload(&ada.token, ada.farm_id, "big.bin", bytes(FILE, 0), &[])
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let mut last = bytes(FILE, 0);
    let mut replaced = 0;
    for i in 1..=10u8 {
        let data = bytes(FILE, i);
        let res = app.upload(&ada.token, ada.farm_id, "big.bin", data.clone(), &[]).await;
        match res.status {
            StatusCode::OK => {
                replaced += 1;
                last = data;
            }
            _ => {
                res.problem(507, "quota-exceeded");
            }
        }
        let farm = farm_of(&app, &ada).await;
        let used = farm["used_bytes"].as_u64().unwrap();
        assert!(used <= QUOTA, "overwrite {i}: {used} bytes charged");
        if local_store(&app) {
            // Ciphertext adds a header and a tag per 64 KiB chunk.
            let on_disk = bytes_on_disk(&app);
            assert!(on_disk <= QUOTA + 2048, "overwrite {i}: {on_disk} bytes on disk");
        }
    }
    assert!(replaced > 0, "overwriting within the quota works");
    let (status, _, body) = app.download(&ada.token, ada.farm_id, "big.bin", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == last, "the last accepted version is served");
    assert_eq!(farm_of(&app, &ada).await["used_bytes"], FILE as u64);
}

#[tokio::test]
async fn uploads_in_flight_are_charged_and_cannot_jointly_pass_the_quota() {
    const QUOTA: u64 = 100 * 1024;
    const FILE: usize = 40 * 1024;
    let app = TestApp::spawn_with(|c| c.farm_quota_bytes = QUOTA).await;
    let ada = app.individual("parallel@example.org").await;
    // Five uploads of 40 KiB start at once and send a little of their body.
    let mut streams = Vec::new();
    for i in 0..5 {
        let target = format!("/v1/farms/{}/files/part-{i}.bin", ada.farm_id);
        let mut s = send_head(&app, "PUT", &target, Some(&ada.token), FILE).await;
        s.write_all(&bytes(1000, i as u8)).await.unwrap();
        streams.push((i, s));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut refused = 0;
    let mut streaming = Vec::new();
    for (i, mut s) in streams {
        match status_within(&mut s, Duration::from_millis(300)).await {
            Some(507) => refused += 1,
            None => streaming.push((i, s)),
            Some(other) => panic!("upload {i} answered {other} mid-body"),
        }
    }
    assert_eq!(
        streaming.len(),
        2,
        "two uploads fit the quota; the others are refused before their bodies are read"
    );
    assert_eq!(refused, 3);
    let farm = farm_of(&app, &ada).await;
    assert_eq!(farm["used_bytes"], 2 * FILE as u64, "bytes in flight are charged");
    assert_eq!(farm["file_count"], 0);
    for (i, mut s) in streaming {
        s.write_all(&bytes(FILE - 1000, i as u8)).await.unwrap();
        assert_eq!(status_within(&mut s, Duration::from_secs(10)).await, Some(201));
    }
    let farm = farm_of(&app, &ada).await;
    assert_eq!(farm["used_bytes"], 2 * FILE as u64);
    assert_eq!(farm["file_count"], 2);
}

fn exports_path(m: &Member) -> String {
    format!("/v1/memberships/{}/exports", m.membership_id)
}

async fn queue_export(app: &TestApp, m: &Member) -> Uuid {
    let res = app.post(&exports_path(m), Some(&m.token), json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    res.id("/id")
}

#[tokio::test]
async fn a_membership_may_queue_a_few_exports_and_gets_429_beyond() {
    let app = TestApp::spawn_with(|c| {
        c.no_jobs = true;
        c.export_max_queued = 3;
    })
    .await;
    let care = app.company("queue@care.example").await;
    let other = app.company("queue@other.example").await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(queue_export(&app, &care).await);
    }
    let res = app.post(&exports_path(&care), Some(&care.token), json!({})).await;
    res.problem(429, "rate-limited");
    assert!(res.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()));
    let list = app.get(&exports_path(&care), &care.token).await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        4,
        "nothing queued by the refusal"
    );
    // Another tenant is not affected.
    queue_export(&app, &other).await;
    // A repeated idempotency key still answers with its export.
    let keyed = app
        .client
        .post(app.url(&exports_path(&other)))
        .bearer_auth(&other.token)
        .header("idempotency-key", "nightly")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), StatusCode::ACCEPTED);
    let again = app
        .client
        .post(app.url(&exports_path(&care)))
        .bearer_auth(&care.token)
        .header("idempotency-key", "never-used")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a new key is a new export"
    );
}

#[tokio::test]
async fn the_job_claim_serves_memberships_in_turn_and_one_job_each_at_a_time() {
    let app = TestApp::spawn_with(|c| c.no_jobs = true).await;
    let db = &app.running.state.db;
    let lease = chrono::Duration::seconds(60);
    let a = app.company("busy@a.example").await;
    let b = app.company("quiet@b.example").await;
    let a1 = queue_export(&app, &a).await;
    let a2 = queue_export(&app, &a).await;
    let a3 = queue_export(&app, &a).await;

    // Two workers claim at once: A runs one job at a time, so one of them
    // gets nothing.
    let (x, y) = tokio::join!(jobs::claim(db, &["export"], lease), jobs::claim(db, &["export"], lease));
    let claims: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(claims.len(), 1, "one running job per membership");
    assert_eq!(claims[0].job.id, a1);
    assert!(jobs::claim(db, &["export"], lease).await.unwrap().is_none());

    // B queues after A's whole queue, yet runs as soon as a worker is free.
    let b1 = queue_export(&app, &b).await;
    let next = jobs::claim(db, &["export"], lease).await.unwrap().unwrap();
    assert_eq!(next.job.id, b1, "B is not behind A's queue");
    assert!(jobs::succeed(db, &claims[0], "{}".into()).await.unwrap());
    assert!(jobs::succeed(db, &next, "{}".into()).await.unwrap());

    // A was served before B; B's next job goes first again.
    let b2 = queue_export(&app, &b).await;
    let order_a = jobs::claim(db, &["export"], lease).await.unwrap().unwrap();
    assert_eq!(order_a.job.id, a2, "A was served least recently");
    let order_b = jobs::claim(db, &["export"], lease).await.unwrap().unwrap();
    assert_eq!(order_b.job.id, b2);
    assert!(jobs::succeed(db, &order_a, "{}".into()).await.unwrap());
    assert!(jobs::succeed(db, &order_b, "{}".into()).await.unwrap());
    let last = jobs::claim(db, &["export"], lease).await.unwrap().unwrap();
    assert_eq!(last.job.id, a3);

    // A lapsed lease frees the membership for the job itself again.
    assert!(jobs::expire_lease(db, JobId::from_uuid(a3)).await.unwrap());
    let retaken = jobs::claim(db, &["export"], lease).await.unwrap().unwrap();
    assert_eq!((retaken.job.id, retaken.attempt), (a3, 2));
}

async fn finished(app: &TestApp, m: &Member, id: Uuid) -> Value {
    for _ in 0..600 {
        let res = app.get(&format!("{}/{id}", exports_path(m)), &m.token).await;
        if !matches!(res.body["status"].as_str(), Some("queued" | "running")) {
            return res.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("export {id} did not finish");
}

#[tokio::test]
async fn finished_exports_beyond_the_retained_ones_expire_and_leave_the_store() {
    let app = TestApp::spawn_with(|c| c.export_retain = 1).await;
    let ada = app.individual("retain@example.org").await;
    let first = queue_export(&app, &ada).await;
    assert_eq!(finished(&app, &ada, first).await["status"], "succeeded");
    let key = export_objects::key(ada.membership_id, first);
    assert!(export_objects::exists(&app.running.state.blobs, &key).await.unwrap());

    let second = queue_export(&app, &ada).await;
    assert_eq!(finished(&app, &ada, second).await["status"], "succeeded");
    let old = app.get(&format!("{}/{first}", exports_path(&ada)), &ada.token).await;
    assert_eq!(old.body["status"], "expired", "{}", old.text);
    assert!(!export_objects::exists(&app.running.state.blobs, &key).await.unwrap());
    app.get(&format!("{}/{first}/download", exports_path(&ada)), &ada.token)
        .await
        .problem(410, "gone");
    let (status, _, _) = crate::exports::download(
        &app,
        &ada.token,
        &format!("{}/{second}/download", exports_path(&ada)),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

// ---- Item 10: stalled bodies ----------------------------------------------

#[tokio::test]
async fn a_stalled_upload_is_answered_408_closed_and_leaves_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.body_read_timeout_secs = 1;
        // Nothing is left for a sweep to find.
        c.sweep_interval_secs = 3600;
    })
    .await;
    let ada = app.individual("staller@example.org").await;
    let target = format!("/v1/farms/{}/files/stalled.bin", ada.farm_id);
    let mut s = send_head(&app, "PUT", &target, Some(&ada.token), 40_000).await;
    s.write_all(&bytes(10_000, 1)).await.unwrap();
    let started = Instant::now();
    let (status, body) = answer_within(&mut s, Duration::from_secs(10))
        .await
        .expect("the server answers and closes the stalled upload");
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("request-timeout"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    app.get(&target, &ada.token).await.problem(404, "not-found");
    let farm = farm_of(&app, &ada).await;
    assert_eq!(farm["used_bytes"], 0);
    assert_eq!(farm["file_count"], 0);
    if local_store(&app) {
        assert_eq!(bytes_on_disk(&app), 0, "nothing half-written is stored");
    }
}

#[tokio::test]
async fn a_stalled_login_body_is_answered_408_and_closed() {
    let app = TestApp::spawn_with(|c| c.body_read_timeout_secs = 1).await;
    let mut s = send_head(&app, "POST", "/v1/auth/login", None, 200).await;
    s.write_all(b"{\"email\": \"someone@example.org\",").await.unwrap();
    let started = Instant::now();
    let (status, body) = answer_within(&mut s, Duration::from_secs(10))
        .await
        .expect("the server answers and closes the stalled login");
    assert_eq!(status, 408, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_trickling_upload_is_cut_off() {
    let app = TestApp::spawn_with(|c| {
        c.body_read_timeout_secs = 1;
        c.min_transfer_bytes_per_sec = 1000;
    })
    .await;
    let ada = app.individual("trickler@example.org").await;
    let target = format!("/v1/farms/{}/files/slow.bin", ada.farm_id);
    let s = send_head(&app, "PUT", &target, Some(&ada.token), 100_000).await;
    let (mut reader, mut writer) = s.into_split();
    // 100 bytes every 300 ms: never silent for a second, yet ~330 B/s.
    let trickle = tokio::spawn(async move {
        for i in 0..100u8 {
            if writer.write_all(&bytes(100, i)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), reader.read_to_end(&mut response)).await;
    trickle.abort();
    assert!(read.is_ok(), "the trickle was cut off");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    app.get(&target, &ada.token).await.problem(404, "not-found");
}

async fn share(app: &TestApp, who: &Member, path: &str) -> String {
    let res = app
        .post(
            &format!("/v1/farms/{}/share-links", who.farm_id),
            Some(&who.token),
            json!({"path": path, "expires_in": 3600}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.str("/url")
}

#[tokio::test]
async fn share_link_downloads_beyond_the_cap_get_429_and_an_unread_one_is_dropped() {
    let app = TestApp::spawn_with(|c| {
        c.body_read_timeout_secs = 2;
        c.share_link_max_concurrent_downloads = 1;
    })
    .await;
    let ada = app.individual("linker@example.org").await;
    // Larger than the socket buffers, so the server cannot hand it all to
    // the kernel and be done.
    const LEN: usize = 24 * 1024 * 1024;
    let res = app
        .upload(&ada.token, ada.farm_id, "video.bin", bytes(LEN, 7), &[])
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let url = share(&app, &ada, "/video.bin").await;
    let target = &url[app.base.len()..];

    // A client asks for the file, reads a little, then stops reading.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(app.running.addr).await.unwrap();
    let head = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n\r\n", app.running.addr);
    stalled.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stalled.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    // While it holds the link's one slot, another download is refused.
    let busy = app.client.get(&url).send().await.unwrap();
    assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(busy.headers().contains_key("retry-after"));

    // The unread download is dropped after the timeout, and the slot with it.
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let res = app.client.get(&url).send().await.unwrap();
        if res.status() == StatusCode::OK {
            assert_eq!(res.bytes().await.unwrap().len(), LEN);
            break;
        }
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the unread download still holds its slot"
        );
    }
    drop(stalled);
    let uses = app
        .get(&format!("/v1/farms/{}/share-links", ada.farm_id), &ada.token)
        .await;
    assert!(uses.body["items"][0]["use_count"].as_u64().unwrap() >= 3);
}
