//! Farms: byte-exact round trips, Range and conditional requests, listing,
//! moves, quotas, path rules, crash safety, encryption at rest and export.
//! The same tests run against the local store and an S3-compatible server.

use reqwest::StatusCode;
use serde_json::{Value, json};
use vitalfarm_tests::{Member, TestApp};

/// Deterministic, incompressible-looking bytes.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

async fn farm_of(app: &TestApp, m: &Member) -> Value {
    let res = app.get(&format!("/v1/farms/{}", m.farm_id), &m.token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.body
}

#[tokio::test]
async fn files_round_trip_byte_exact_at_every_size() {
    let app = TestApp::spawn().await;
    let ada = app.individual("ada@example.org").await;
    let chunk = 64 * 1024;
    for (i, len) in [
        0,
        1,
        100,
        chunk - 1,
        chunk,
        chunk + 1,
        3 * chunk + 7,
        9 * 1024 * 1024 + 3,
    ]
    .into_iter()
    .enumerate()
    {
        let data = bytes(len, i as u8);
        let path = format!("sizes/{len}.bin");
        let res = app
            .upload(
                &ada.token,
                ada.farm_id,
                &path,
                data.clone(),
                &[("content-type", "application/x-test")],
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{len}: {}", res.text);
        assert_eq!(res.body["size"], len);
        assert_eq!(res.body["version"], 1);
        assert_eq!(res.body["path"], format!("/{path}"));
        let (status, headers, body) = app.download(&ada.token, ada.farm_id, &path, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body == data, "{len} bytes differ");
        assert_eq!(headers["content-type"], "application/x-test");
        assert_eq!(headers["content-length"], len.to_string().as_str());
        assert_eq!(headers["etag"], res.header("etag").unwrap());
        assert!(
            headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
    }
    let farm = farm_of(&app, &ada).await;
    assert_eq!(farm["file_count"], 8);
    assert_eq!(farm["encryption"], "aes-256-gcm");

    // HEAD: the headers, no body.
    let res = app
        .client
        .head(app.url(&format!("/v1/farms/{}/files/sizes/100.bin", ada.farm_id)))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-length"], "100");
    assert!(res.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn ranges_serve_exactly_the_requested_bytes() {
    let app = TestApp::spawn().await;
    let ada = app.individual("ranges@example.org").await;
    let len = 200_000usize;
    let data = bytes(len, 7);
    app.upload(&ada.token, ada.farm_id, "r.bin", data.clone(), &[]).await;
    let cases: [(&str, usize, usize); 8] = [
        ("bytes=0-0", 0, 0),
        ("bytes=0-65535", 0, 65535),
        ("bytes=65535-65536", 65535, 65536),
        ("bytes=70000-70009", 70000, 70009),
        ("bytes=131000-", 131000, len - 1),
        ("bytes=-500", len - 500, len - 1),
        ("bytes=199999-300000", 199_999, len - 1),
        ("bytes=1-199998", 1, 199_998),
    ];
    for (range, a, b) in cases {
        let (status, headers, body) = app
            .download(&ada.token, ada.farm_id, "r.bin", &[("range", range)])
            .await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            headers["content-range"],
            format!("bytes {a}-{b}/{len}").as_str(),
            "{range}"
        );
        assert!(body == data[a..=b], "{range}: wrong bytes");
    }
    let res = app
        .client
        .get(app.url(&format!("/v1/farms/{}/files/r.bin", ada.farm_id)))
        .bearer_auth(&ada.token)
        .header("range", "bytes=200000-")
        .send()
        .await
        .unwrap();
    let res = vitalfarm_tests::Resp::from(res).await;
    res.problem(416, "range-not-satisfiable");
    assert_eq!(res.header("content-range"), Some("bytes */200000"));
    // A stale If-Range gets the whole file.
    let (status, _, body) = app
        .download(
            &ada.token,
            ada.farm_id,
            "r.bin",
            &[("range", "bytes=0-9"), ("if-range", "\"stale\"")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), len);
}

#[tokio::test]
async fn conditional_requests() {
    let app = TestApp::spawn().await;
    let ada = app.individual("cond@example.org").await;
    let first = app
        .upload(
            &ada.token,
            ada.farm_id,
            "doc.txt",
            b"one".to_vec(),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let etag1 = first.header("etag").unwrap().to_owned();
    app.upload(
        &ada.token,
        ada.farm_id,
        "doc.txt",
        b"two".to_vec(),
        &[("if-none-match", "*")],
    )
    .await
    .problem(412, "precondition-failed");
    app.upload(
        &ada.token,
        ada.farm_id,
        "doc.txt",
        b"two".to_vec(),
        &[("if-match", "\"0000\"")],
    )
    .await
    .problem(412, "precondition-failed");
    app.upload(&ada.token, ada.farm_id, "new.txt", b"x".to_vec(), &[("if-match", "*")])
        .await
        .problem(412, "precondition-failed");
    let second = app
        .upload(
            &ada.token,
            ada.farm_id,
            "doc.txt",
            b"two".to_vec(),
            &[("if-match", &etag1)],
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(second.body["version"], 2);
    let etag2 = second.header("etag").unwrap().to_owned();
    assert_ne!(etag1, etag2);
    // The loser of an optimistic race does not overwrite the winner.
    app.upload(
        &ada.token,
        ada.farm_id,
        "doc.txt",
        b"three".to_vec(),
        &[("if-match", &etag1)],
    )
    .await
    .problem(412, "precondition-failed");
    let (_, _, body) = app.download(&ada.token, ada.farm_id, "doc.txt", &[]).await;
    assert_eq!(body, b"two");

    let (status, headers, body) = app
        .download(&ada.token, ada.farm_id, "doc.txt", &[("if-none-match", &etag2)])
        .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(headers["etag"], etag2.as_str());
    assert!(body.is_empty());
    let (status, _, _) = app
        .download(&ada.token, ada.farm_id, "doc.txt", &[("if-none-match", &etag1)])
        .await;
    assert_eq!(status, StatusCode::OK);

    let path = format!("/v1/farms/{}/files/doc.txt", ada.farm_id);
    let res = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&ada.token)
        .header("if-match", &etag1)
        .send()
        .await
        .unwrap();
    vitalfarm_tests::Resp::from(res)
        .await
        .problem(412, "precondition-failed");
    let res = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&ada.token)
        .header("if-match", &etag2)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.get(&path, &ada.token).await.problem(404, "not-found");
}

#[tokio::test]
async fn concurrent_creates_of_one_path_have_one_winner() {
    let app = std::sync::Arc::new(TestApp::spawn_with(|c| c.workers = Some(2)).await);
    let ada = app.individual("race@example.org").await;
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let (app, ada) = (app.clone(), ada.clone());
        tasks.push(tokio::spawn(async move {
            app.upload(
                &ada.token,
                ada.farm_id,
                "contested.bin",
                bytes(100_000, i),
                &[("if-none-match", "*")],
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::CREATED).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::PRECONDITION_FAILED),
        "{statuses:?}"
    );
    let farm = farm_of(&app, &ada).await;
    assert_eq!(farm["file_count"], 1);
    assert_eq!(farm["used_bytes"], 100_000, "losers charged nothing");
    app.sweep().await;
    let (status, _, body) = app.download(&ada.token, ada.farm_id, "contested.bin", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), 100_000);
}

#[tokio::test]
async fn listing_directories_prefixes_and_pages() {
    let app = TestApp::spawn().await;
    let ada = app.individual("lister@example.org").await;
    for p in [
        "a.txt",
        "ecg/1.csv",
        "ecg/2.csv",
        "ecg/2026/x.csv",
        "ecg-notes.txt",
        "labs/r.pdf",
        "z.txt",
    ] {
        assert_eq!(
            app.upload(&ada.token, ada.farm_id, p, b"x".to_vec(), &[]).await.status,
            StatusCode::CREATED
        );
    }
    let list = |q: String| {
        let app = &app;
        let ada = &ada;
        async move {
            app.get(&format!("/v1/farms/{}/list?{q}", ada.farm_id), &ada.token)
                .await
        }
    };
    let paths = |res: &vitalfarm_tests::Resp| -> Vec<String> {
        res.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_owned())
            .collect()
    };
    let top = list(String::new()).await;
    assert_eq!(paths(&top), ["/a.txt", "/ecg-notes.txt", "/ecg/", "/labs/", "/z.txt"]);
    assert_eq!(top.body["items"][2]["kind"], "directory");
    let ecg = list("prefix=/ecg/".into()).await;
    assert_eq!(paths(&ecg), ["/ecg/1.csv", "/ecg/2.csv", "/ecg/2026/"]);
    let ecg = list("prefix=ecg".into()).await;
    assert_eq!(ecg.body["prefix"], "/ecg/");
    let deep = list("prefix=/ecg/&recursive=true".into()).await;
    assert_eq!(paths(&deep), ["/ecg/1.csv", "/ecg/2.csv", "/ecg/2026/x.csv"]);
    assert_eq!(paths(&list("prefix=/none/".into()).await), Vec::<String>::new());

    // Paging one entry at a time visits everything once, in order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = list(format!("limit=1{cursor}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        seen.extend(paths(&page));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["/a.txt", "/ecg-notes.txt", "/ecg/", "/labs/", "/z.txt"]);
    list("prefix=/../".into()).await.problem(400, "invalid-parameter");
    list("cursor=!!".into()).await.problem(400, "invalid-parameter");
}

#[tokio::test]
async fn moves_touch_metadata_only() {
    let app = TestApp::spawn().await;
    let ada = app.individual("mover@example.org").await;
    let data = bytes(150_000, 3);
    app.upload(&ada.token, ada.farm_id, "inbox/report.pdf", data.clone(), &[])
        .await;
    app.upload(&ada.token, ada.farm_id, "reports/taken.pdf", b"other".to_vec(), &[])
        .await;
    let blobs_before = blob_ids(&app).await;
    let mv = format!("/v1/farms/{}/move", ada.farm_id);
    let res = app
        .post(
            &mv,
            Some(&ada.token),
            json!({"from": "/inbox/report.pdf", "to": "/reports/2026/report.pdf"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["path"], "/reports/2026/report.pdf");
    assert_eq!(blob_ids(&app).await, blobs_before, "no byte was copied");
    let (status, _, body) = app
        .download(&ada.token, ada.farm_id, "reports/2026/report.pdf", &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == data);
    app.get(&format!("/v1/farms/{}/files/inbox/report.pdf", ada.farm_id), &ada.token)
        .await
        .problem(404, "not-found");

    let res = app
        .post(
            &mv,
            Some(&ada.token),
            json!({"from": "/reports/2026/report.pdf", "to": "/reports/taken.pdf"}),
        )
        .await;
    res.problem(409, "conflict");
    let res = app
        .post(
            &mv,
            Some(&ada.token),
            json!({"from": "/reports/2026/report.pdf", "to": "/reports/taken.pdf", "overwrite": true}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let farm = farm_of(&app, &ada).await;
    assert_eq!(farm["file_count"], 1);
    assert_eq!(farm["used_bytes"], 150_000);
    app.post(&mv, Some(&ada.token), json!({"from": "/nope", "to": "/x"}))
        .await
        .problem(404, "not-found");
    let res = app
        .post(&mv, Some(&ada.token), json!({"from": "/a/../b", "to": "//x"}))
        .await;
    res.problem(422, "validation-failed");
    let mut fields = res.fields();
    fields.sort();
    assert_eq!(fields, ["from", "to"]);
}

async fn blob_ids(app: &TestApp) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.running.state.db.conn();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT blob_id FROM farm_files ORDER BY blob_id".to_owned(),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<uuid::Uuid>("", "blob_id").unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn path_rules_name_the_path() {
    let app = TestApp::spawn().await;
    let ada = app.individual("paths@example.org").await;
    let long_name = "n".repeat(256);
    let long_path = format!("{}/x", "d".repeat(200)).repeat(6);
    for bad in [
        "a//b",
        "dir/",
        "a%00b",
        "a%1Fb",
        "a%5Cb",
        long_name.as_str(),
        long_path.as_str(),
    ] {
        let res = app.upload(&ada.token, ada.farm_id, bad, b"x".to_vec(), &[]).await;
        res.problem(400, "invalid-parameter");
        assert_eq!(res.fields(), ["path"], "{bad}");
    }
    // Dot segments, sent as a hostile client would: ordinary clients remove
    // them (even percent-encoded) before sending.
    for bad in ["a/../b", "a/./b", "a/%2E%2E/b", "a/%2e/b", "../../etc/passwd"] {
        let (status, body) = app
            .raw_request(
                "PUT",
                &format!("/v1/farms/{}/files/{bad}", ada.farm_id),
                &ada.token,
                b"x",
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("\"field\":\"path\""), "{bad}: {body}");
    }
    assert_eq!(farm_of(&app, &ada).await["file_count"], 0, "nothing was stored");
    // Normalised: NFC, so the two spellings of "é" are one file.
    app.upload(&ada.token, ada.farm_id, "caf%C3%A9.txt", b"composed".to_vec(), &[])
        .await;
    let res = app
        .upload(&ada.token, ada.farm_id, "cafe%CC%81.txt", b"decomposed".to_vec(), &[])
        .await;
    assert_eq!(res.status, StatusCode::OK, "overwrote the same file: {}", res.text);
    assert_eq!(farm_of(&app, &ada).await["file_count"], 1);
}

#[tokio::test]
async fn quotas_and_size_limits_leave_nothing_behind() {
    let app = TestApp::spawn_with(|c| {
        c.farm_quota_bytes = 300_000;
        c.max_file_bytes = 250_000;
        c.orphan_grace_secs = 0;
    })
    .await;
    let ada = app.individual("quota@example.org").await;
    assert_eq!(
        app.upload(&ada.token, ada.farm_id, "a.bin", bytes(200_000, 1), &[])
            .await
            .status,
        StatusCode::CREATED
    );
    let res = app
        .upload(&ada.token, ada.farm_id, "b.bin", bytes(200_000, 2), &[])
        .await;
    res.problem(507, "quota-exceeded");
    let res = app
        .upload(&ada.token, ada.farm_id, "c.bin", bytes(250_001, 3), &[])
        .await;
    res.problem(413, "payload-too-large");
    // A replacement is on disk beside the file it replaces until it is
    // committed, so it needs room for both copies...
    app.upload(&ada.token, ada.farm_id, "a.bin", bytes(150_000, 4), &[])
        .await
        .problem(507, "quota-exceeded");
    assert_eq!(
        app.upload(&ada.token, ada.farm_id, "a.bin", bytes(100_000, 4), &[])
            .await
            .status,
        StatusCode::OK
    );
    // ...and the replaced copy is removed and its bytes freed at once.
    let farm = farm_of(&app, &ada).await;
    assert_eq!(farm["used_bytes"], 100_000);
    assert_eq!(farm["file_count"], 1);
    assert_eq!(stored_objects(&app).await, 1);
    app.get(&format!("/v1/farms/{}/files/b.bin", ada.farm_id), &ada.token)
        .await
        .problem(404, "not-found");
    app.sweep().await;
    assert_eq!(stored_objects(&app).await, 1);
    let res = app
        .client
        .delete(app.url(&format!("/v1/farms/{}/files/a.bin", ada.farm_id)))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.sweep().await;
    assert_eq!(stored_objects(&app).await, 0);
    assert_eq!(farm_of(&app, &ada).await["used_bytes"], 0);
}

/// Blobs left in storage: the objects in the local farm directory, or,
/// on S3 (a remote store), the blob rows that would point at objects.
async fn stored_objects(app: &TestApp) -> usize {
    if app.config.object_store_url.is_some() {
        use sea_orm::{ConnectionTrait, Statement};
        let db = app.running.state.db.conn();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM farm_blobs".to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        return usize::try_from(row.try_get::<i64>("", "n").unwrap()).unwrap();
    }
    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&app.config.farm_dir())
}

#[tokio::test]
async fn uploads_need_a_length_and_a_sane_content_type() {
    let app = TestApp::spawn().await;
    let ada = app.individual("len@example.org").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(b"abc".to_vec())];
    let res = app
        .client
        .put(app.url(&format!("/v1/farms/{}/files/chunked.bin", ada.farm_id)))
        .bearer_auth(&ada.token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    vitalfarm_tests::Resp::from(res).await.problem(411, "length-required");
    let res = app
        .upload(
            &ada.token,
            ada.farm_id,
            "x.bin",
            b"x".to_vec(),
            &[("content-type", "nonsense")],
        )
        .await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), ["Content-Type"]);
}

/// Starts an upload that declares 20 MiB and sends what is pushed into the
/// returned sender, so a test can stop it half-way.
type BodySender = tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>;
type PendingResponse = tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>;

fn stalled_upload(app: &TestApp, who: &Member, path: &str) -> (BodySender, PendingResponse) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let req = app
        .client
        .put(app.url(&format!("/v1/farms/{}/files/{path}", who.farm_id)))
        .bearer_auth(&who.token)
        .header("content-length", (20 * 1024 * 1024).to_string())
        .body(reqwest::Body::wrap_stream(body));
    (tx, tokio::spawn(async move { req.send().await }))
}

#[tokio::test]
async fn an_interrupted_upload_leaves_no_file_and_no_charge() {
    let app = TestApp::spawn_with(|c| c.orphan_grace_secs = 0).await;
    let ada = app.individual("interrupted@example.org").await;
    // Send 9 of the 20 MiB declared (a multipart upload is under way), then
    // drop the connection.
    let (tx, sending) = stalled_upload(&app, &ada, "big.bin");
    for i in 0..9u8 {
        tx.send(Ok(bytes(1024 * 1024, i))).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tx.send(Err(std::io::Error::other("client gave up"))).await.unwrap();
    drop(tx);
    let _ = sending.await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    app.get(&format!("/v1/farms/{}/files/big.bin", ada.farm_id), &ada.token)
        .await
        .problem(404, "not-found");
    let farm = farm_of(&app, &ada).await;
    assert_eq!(farm["used_bytes"], 0);
    assert_eq!(farm["file_count"], 0);
    app.sweep().await;
    assert_eq!(stored_objects(&app).await, 0, "no bytes left behind");
}

#[tokio::test]
async fn a_crash_mid_upload_leaves_nothing_visible_and_the_sweeper_cleans_up() {
    let app = TestApp::spawn().await;
    let ada = app.individual("crash@example.org").await;
    let (tx, sending) = stalled_upload(&app, &ada, "doomed.bin");
    for i in 0..10u8 {
        tx.send(Ok(bytes(1024 * 1024, i))).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // The server dies with the upload in flight.
    let app = app.restart(|c| c.orphan_grace_secs = 0).await;
    drop(tx);
    let _ = sending.await;

    let token = app.login("crash@example.org").await;
    app.get(&format!("/v1/farms/{}/files/doomed.bin", ada.farm_id), &token)
        .await
        .problem(404, "not-found");
    let farm = app.get(&format!("/v1/farms/{}", ada.farm_id), &token).await;
    assert_eq!(farm.body["used_bytes"], 0);
    app.sweep().await;
    assert_eq!(stored_objects(&app).await, 0, "the abandoned blob is swept");
    // The farm works normally afterwards.
    let res = app
        .upload(&token, ada.farm_id, "doomed.bin", b"second try".to_vec(), &[])
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
}

#[tokio::test]
async fn blobs_are_encrypted_and_tampering_is_detected() {
    let app = TestApp::spawn().await;
    let ada = app.individual("crypto@example.org").await;
    let plain = b"systolic=128;diastolic=84;".repeat(10_000);
    app.upload(&ada.token, ada.farm_id, "bp.txt", plain.clone(), &[]).await;
    let blob = blob_ids(&app).await.pop().unwrap().parse::<uuid::Uuid>().unwrap();
    let farm_id = vitalfarm_domain_id(ada.farm_id);
    let blobs = &app.running.state.blobs;
    let raw = blobs.raw(farm_id, blob).await.unwrap();
    assert!(!raw.windows(16).any(|w| w == &plain[..16]), "plaintext is not stored");

    // A flipped bit in the middle: the damaged chunk is not served.
    let mut damaged = raw.to_vec();
    damaged[100_000] ^= 0x01;
    blobs.put_raw(farm_id, blob, damaged.into()).await.unwrap();
    let (status, _, body) = app
        .download(&ada.token, ada.farm_id, "bp.txt", &[("range", "bytes=99000-99100")])
        .await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["type"], "https://vitalfarm.dev/problems/data-integrity");
    // A full download stops before the damaged chunk: never a complete body.
    let res = app
        .client
        .get(app.url(&format!("/v1/farms/{}/files/bp.txt", ada.farm_id)))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    let full = res.bytes().await;
    assert!(full.is_err() || full.unwrap().len() < plain.len());
    // Undamaged ranges still read.
    let (status, _, body) = app
        .download(&ada.token, ada.farm_id, "bp.txt", &[("range", "bytes=0-99")])
        .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, plain[..100]);

    // Truncation is detected too.
    blobs.put_raw(farm_id, blob, raw.slice(..raw.len() - 20)).await.unwrap();
    let (status, _, _) = app
        .download(&ada.token, ada.farm_id, "bp.txt", &[("range", "bytes=-10")])
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

fn vitalfarm_domain_id(id: uuid::Uuid) -> vitalfarm_domain::FarmId {
    vitalfarm_domain::FarmId::from_uuid(id)
}

#[tokio::test]
async fn destroying_a_farm_key_makes_every_copy_unreadable() {
    use vitalfarm_storage::farm_crypto;
    let app = TestApp::spawn().await;
    let ada = app.individual("erase@example.org").await;
    let plain = bytes(100_000, 9);
    app.upload(&ada.token, ada.farm_id, "secret.bin", plain.clone(), &[])
        .await;
    let blob = blob_ids(&app).await.pop().unwrap().parse::<uuid::Uuid>().unwrap();
    let farm_id = vitalfarm_domain_id(ada.farm_id);
    let state = &app.running.state;
    // A backup copy taken before erasure.
    let copy = state.blobs.raw(farm_id, blob).await.unwrap();
    let farm = vitalfarm_storage::repo::farms::find(&state.db, farm_id)
        .await
        .unwrap()
        .unwrap();
    let key = vitalfarm_app::farm_keys::data_key(&state.db, &state.master_key, &farm)
        .await
        .unwrap();
    assert!(
        farm_crypto::decrypt_blob(&key, blob.as_bytes(), &copy).unwrap() == plain,
        "readable while the key exists"
    );

    vitalfarm_storage::repo::farms::destroy_key(&state.db, farm_id)
        .await
        .unwrap();
    let farm = vitalfarm_storage::repo::farms::find(&state.db, farm_id)
        .await
        .unwrap()
        .unwrap();
    assert!(farm.wrapped_key.is_none(), "the key is gone");
    app.get(&format!("/v1/farms/{}/files/secret.bin", ada.farm_id), &ada.token)
        .await
        .problem(404, "not-found");
    // Whatever key the farm gets next, the old copy stays unreadable.
    let new_key = vitalfarm_app::farm_keys::data_key(&state.db, &state.master_key, &farm)
        .await
        .unwrap();
    assert!(farm_crypto::decrypt_blob(&new_key, blob.as_bytes(), &copy).is_err());
    app.sweep().await;
}

#[tokio::test]
async fn export_streams_every_file_as_a_zip() {
    use std::io::Read;
    let app = TestApp::spawn().await;
    let ada = app.individual("export@example.org").await;
    let files: Vec<(String, Vec<u8>)> = vec![
        ("ecg/lead1.csv".into(), bytes(300_000, 1)),
        ("empty.txt".into(), Vec::new()),
        ("labs/résumé.pdf".into(), bytes(70_000, 2)),
    ];
    for (p, d) in &files {
        let encoded: String = p.split('/').map(urlencode).collect::<Vec<_>>().join("/");
        assert_eq!(
            app.upload(&ada.token, ada.farm_id, &encoded, d.clone(), &[])
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let res = app
        .client
        .get(app.url(&format!("/v1/farms/{}/export", ada.farm_id)))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let body = res.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(body.to_vec())).unwrap();
    assert_eq!(archive.len(), files.len());
    for (p, d) in &files {
        let mut entry = archive.by_name(p).unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert!(content == *d, "{p}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn roles_decide_who_reads_and_who_writes() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme.example").await;
    let viewer = app.staff(&acme, "viewer@acme.example", "viewer").await;
    let dev_key = app.api_key(&acme, "developer").await;
    let viewer_key = app.api_key(&acme, "viewer").await;
    let res = app
        .upload(
            &dev_key,
            acme.farm_id,
            "fleet/export.csv",
            b"id,hr\n1,72\n".to_vec(),
            &[("content-type", "text/csv")],
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    for token in [&viewer, &viewer_key] {
        let (status, _, body) = app.download(token, acme.farm_id, "fleet/export.csv", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"id,hr\n1,72\n");
        app.upload(token, acme.farm_id, "fleet/x.csv", b"x".to_vec(), &[])
            .await
            .problem(403, "forbidden");
        let res = app
            .client
            .delete(app.url(&format!("/v1/farms/{}/files/fleet/export.csv", acme.farm_id)))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        vitalfarm_tests::Resp::from(res).await.problem(403, "forbidden");
    }
}
