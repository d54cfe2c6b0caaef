//! Exports (a membership's data as one ZIP, built by the job worker) and
//! erasure of a membership.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;
use vitalfarm_domain::JobId;
use vitalfarm_storage::entity::{api_key, device, farm_blob, farm_file, job, reading, subject};
use vitalfarm_storage::export_objects;
use vitalfarm_storage::repo::jobs;
use vitalfarm_tests::{Member, PASSWORD, Resp, TestApp};

async fn ingest(app: &TestApp, credential: &str, readings: Vec<Value>) {
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
    let rejected = res.body["rejected"].as_array().unwrap();
    assert!(
        rejected.is_empty(),
        "{} rejected, first {}",
        rejected.len(),
        rejected[0]
    );
}

/// `n` heart rates a minute apart and `bp` blood pressures, from `start`
/// minutes past midnight; returns the readings and their `(metric, ts_ms)`.
fn readings(start: i64, n: i64, bp: i64) -> (Vec<Value>, HashSet<(String, i64)>) {
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-15T00:00:00Z")
        .unwrap()
        .timestamp_millis();
    let mut out = Vec::new();
    let mut keys = HashSet::new();
    for i in 0..n {
        let ts = base + (start + i) * 60_000;
        out.push(json!({"metric": "heart_rate", "ts": ts_str(ts), "value": 60 + i % 40}));
        keys.insert(("heart_rate".to_owned(), ts));
    }
    for i in 0..bp {
        // The same instants as heart rates: two metrics at one time.
        let ts = base + (start + i * 3) * 60_000;
        out.push(json!({"metric": "blood_pressure", "ts": ts_str(ts), "components": {"systolic": 110 + i % 30, "diastolic": 70 + i % 15}}));
        keys.insert(("blood_pressure".to_owned(), ts));
    }
    (out, keys)
}

fn ts_str(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn exports_path(m: &Member) -> String {
    format!("/v1/memberships/{}/exports", m.membership_id)
}

pub(crate) async fn request_export(app: &TestApp, m: &Member) -> Uuid {
    let res = app.post(&exports_path(m), Some(&m.token), json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    assert_eq!(res.body["status"], "queued");
    res.id("/id")
}

/// Polls the export until it leaves `queued`/`running`.
pub(crate) async fn finished(app: &TestApp, m: &Member, id: Uuid) -> Resp {
    for _ in 0..600 {
        let res = app.get(&format!("{}/{id}", exports_path(m)), &m.token).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        if !matches!(res.body["status"].as_str(), Some("queued" | "running")) {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("export {id} did not finish");
}

pub(crate) async fn download(
    app: &TestApp,
    token: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = app.client.get(app.url(url)).bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

pub(crate) fn unzip(bytes: Vec<u8>) -> HashMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = HashMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        assert!(
            out.insert(entry.name().unwrap().into_owned(), data).is_none(),
            "duplicate entry"
        );
    }
    out
}

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[tokio::test]
async fn an_export_holds_every_reading_once_and_every_file_byte_for_byte() {
    let app = TestApp::spawn().await;
    let care = app.company("export@acme.example").await;
    let mut expected: HashMap<String, HashSet<(String, i64)>> = HashMap::new();
    for (i, (n, bp)) in [(2500, 1100), (900, 200), (600, 0)].into_iter().enumerate() {
        let d = app.monitored_device(&care, &format!("EX-{i}")).await;
        let (batch, keys) = readings(i as i64 * 7, n, bp);
        ingest(&app, &d.credential(), batch).await;
        expected.insert(d.subject.clone(), keys);
    }
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("notes.txt", b"plain notes\n".to_vec()),
        ("scans/2026/11/deep/ct scan.bin", pseudo_random(300_000, 7)),
        ("empty.dat", Vec::new()),
        // Large enough that the archive spans several sealed segments.
        ("big/ecg.raw", pseudo_random(9 * 1024 * 1024, 11)),
    ];
    for (path, bytes) in &files {
        let res = app.upload(&care.token, care.farm_id, path, bytes.clone(), &[]).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    }

    let id = request_export(&app, &care).await;
    let done = finished(&app, &care, id).await;
    assert_eq!(done.body["status"], "succeeded", "{}", done.text);
    let total: usize = expected.values().map(HashSet::len).sum();
    assert_eq!(done.body["counts"]["readings"], total);
    assert_eq!(done.body["counts"]["files"], 4);
    let url = done.str("/download_url");

    let (status, headers, zip_bytes) = download(&app, &care.token, &url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/zip");
    assert_eq!(headers["content-length"].to_str().unwrap(), zip_bytes.len().to_string());
    assert_eq!(done.body["size"], zip_bytes.len());
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", done.str("/sha256")));

    // A range of it, byte for byte.
    let (status, headers, part) = download(&app, &care.token, &url, &[("range", "bytes=100-1099")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        headers["content-range"].to_str().unwrap(),
        format!("bytes 100-1099/{}", zip_bytes.len())
    );
    assert_eq!(part, zip_bytes[100..1100]);

    // Across the boundary of two sealed segments.
    let (status, _, part) = download(&app, &care.token, &url, &[("range", "bytes=8388000-8389999")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part, zip_bytes[8_388_000..8_390_000]);
    let (status, _, tail) = download(&app, &care.token, &url, &[("range", "bytes=-100")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail, zip_bytes[zip_bytes.len() - 100..]);

    // At rest the archive is sealed: neither the ZIP nor a file's bytes
    // appear in the stored object.
    let stored = export_objects::raw(&app.running.state.blobs, &export_objects::key(care.membership_id, id))
        .await
        .unwrap();
    assert!(!stored.starts_with(b"PK"));
    assert!(!stored.windows(11).any(|w| w == b"plain notes"));

    let entries = unzip(zip_bytes);
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    assert_eq!(manifest["format_version"], 1);
    assert_eq!(manifest["membership"]["id"], care.membership_id.to_string());
    assert_eq!(manifest["counts"]["readings"], total);
    assert_eq!(
        manifest["sections"],
        json!([
            "subjects", "devices", "readings", "fhir", "files", "consents", "audit", "shared"
        ])
    );
    let subjects: Vec<Value> = serde_json::from_slice(&entries["subjects.json"]).unwrap();
    assert_eq!(subjects.len(), 3);
    let devices: Vec<Value> = serde_json::from_slice(&entries["devices.json"]).unwrap();
    assert_eq!(devices.len(), 3);

    for (subject, keys) in &expected {
        let ndjson = String::from_utf8(entries[&format!("readings/{subject}.ndjson")].clone()).unwrap();
        let mut seen = HashSet::new();
        for line in ndjson.lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            let key = (r["metric"].as_str().unwrap().to_owned(), r["ts_ms"].as_i64().unwrap());
            if key.0 == "blood_pressure" {
                assert!(
                    r["components"]["systolic"].is_number() && r["components"]["diastolic"].is_number(),
                    "{line}"
                );
                assert_eq!(r["unit"], "mm[Hg]");
            } else {
                assert!(r["value"].is_number(), "{line}");
            }
            assert!(seen.insert(key), "reading twice in NDJSON: {line}");
        }
        assert_eq!(&seen, keys, "NDJSON of {subject}");

        let csv = String::from_utf8(entries[&format!("readings/{subject}.csv")].clone()).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let mut seen = HashSet::new();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            let key = (f[col("metric")].to_owned(), f[col("ts_ms")].parse::<i64>().unwrap());
            if key.0 == "blood_pressure" {
                assert!(
                    !f[col("systolic")].is_empty() && !f[col("diastolic")].is_empty(),
                    "{line}"
                );
                assert!(f[col("value")].is_empty());
            } else {
                assert!(!f[col("value")].is_empty(), "{line}");
            }
            assert!(seen.insert(key), "reading twice in CSV: {line}");
        }
        assert_eq!(&seen, keys, "CSV of {subject}");
    }
    for (path, bytes) in &files {
        assert_eq!(&entries[&format!("files/{path}")], bytes, "{path}");
    }

    // The same Idempotency-Key gives the same export; the list has both.
    let with_key = |key: &'static str| {
        app.client
            .post(app.url(&exports_path(&care)))
            .bearer_auth(&care.token)
            .header("idempotency-key", key)
            .send()
    };
    let first = Resp::from(with_key("nightly-1").await.unwrap()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let again = Resp::from(with_key("nightly-1").await.unwrap()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.id("/id"), first.id("/id"));
    let list = app.get(&exports_path(&care), &care.token).await;
    let ids: Vec<Uuid> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, [first.id("/id"), id], "newest first");
}

#[tokio::test]
async fn exports_are_for_owners_and_admins_of_the_membership_alone() {
    let app = TestApp::spawn_with(|c| c.no_jobs = true).await;
    let care = app.company("owner@care.example").await;
    let other = app.company("owner@other.example").await;
    let other_key = app.api_key(&other, "admin").await;
    let viewer = app.staff(&care, "viewer@care.example", "viewer").await;
    let developer_key = app.api_key(&care, "developer").await;
    let admin = app.staff(&care, "admin@care.example", "admin").await;
    let id = request_export(&app, &care).await;
    let base = exports_path(&care);
    let routes = [
        (Method::POST, base.clone()),
        (Method::GET, base.clone()),
        (Method::GET, format!("{base}/{id}")),
        (Method::GET, format!("{base}/{id}/download")),
    ];
    for (method, path) in &routes {
        for token in [&other.token, &other_key] {
            app.call(method.clone(), path, Some(token), None)
                .await
                .problem(404, "not-found");
        }
        for token in [&viewer, &developer_key] {
            app.call(method.clone(), path, Some(token), None)
                .await
                .problem(403, "forbidden");
        }
    }
    // Another membership's export under one's own membership: 404.
    let theirs = request_export(&app, &other).await;
    for path in [format!("{base}/{theirs}"), format!("{base}/{theirs}/download")] {
        app.get(&path, &care.token).await.problem(404, "not-found");
    }
    // An admin may; a download before it is built is a conflict.
    assert_eq!(app.get(&format!("{base}/{id}"), &admin).await.status, StatusCode::OK);
    app.get(&format!("{base}/{id}/download"), &admin)
        .await
        .problem(409, "conflict");
}

#[tokio::test]
async fn a_queued_export_survives_a_restart() {
    let app = TestApp::spawn_with(|c| c.no_jobs = true).await;
    let care = app.company("restart@care.example").await;
    let d = app.monitored_device(&care, "R-1").await;
    ingest(&app, &d.credential(), readings(0, 50, 5).0).await;
    let id = request_export(&app, &care).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = app.get(&format!("{}/{id}", exports_path(&care)), &care.token).await;
    assert_eq!(res.body["status"], "queued", "no worker runs on this node");

    let app = app.restart(|c| c.no_jobs = false).await;
    let done = finished(&app, &care, id).await;
    assert_eq!(done.body["status"], "succeeded", "{}", done.text);
    assert_eq!(done.body["counts"]["readings"], 55);
}

#[tokio::test]
async fn a_lapsed_lease_is_claimed_again_and_only_one_claimer_wins() {
    let app = TestApp::spawn_with(|c| c.no_jobs = true).await;
    let state = &app.running.state;
    let care = app.individual("lease@example.org").await;
    let id = request_export(&app, &care).await;
    let lease = chrono::Duration::seconds(60);

    // Two workers claim at once: exactly one gets it.
    let (a, b) = tokio::join!(
        jobs::claim(&state.db, &["export"], lease),
        jobs::claim(&state.db, &["export"], lease)
    );
    let winners: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].job.id, id);
    assert!(
        jobs::claim(&state.db, &["export"], lease).await.unwrap().is_none(),
        "held under lease"
    );

    // Its node dies: once the lease runs out, another worker takes over,
    // and the first one can no longer record anything.
    assert!(jobs::expire_lease(&state.db, JobId::from_uuid(id)).await.unwrap());
    assert!(vitalfarm_app::jobs::run_one(state).await.unwrap());
    let done = finished(&app, &care, id).await;
    assert_eq!(done.body["status"], "succeeded", "{}", done.text);
    assert_eq!(done.body["attempts"], 2);
    assert!(!jobs::succeed(&state.db, &winners[0], "{}".into()).await.unwrap());

    // A job whose worker dies on every attempt fails for good.
    let doomed = request_export(&app, &care).await;
    for attempt in 1..=3 {
        let claim = jobs::claim(&state.db, &["export"], lease).await.unwrap().unwrap();
        assert_eq!((claim.job.id, claim.attempt), (doomed, attempt));
        assert!(jobs::expire_lease(&state.db, JobId::from_uuid(doomed)).await.unwrap());
    }
    assert!(!vitalfarm_app::jobs::run_one(state).await.unwrap());
    let failed = finished(&app, &care, doomed).await;
    assert_eq!(failed.body["status"], "failed");
    assert!(failed.str("/error").contains("3 attempts"), "{}", failed.text);
}

async fn erase(app: &TestApp, m: &Member, token: &str, password: &str, confirm: &str) -> Resp {
    app.call(
        Method::DELETE,
        &format!("/v1/memberships/{}", m.membership_id),
        Some(token),
        Some(json!({"password": password, "confirm": confirm})),
    )
    .await
}

async fn count<E>(app: &TestApp, filter: impl sea_orm::sea_query::IntoCondition) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    E::find()
        .filter(filter)
        .count(app.running.state.db.conn())
        .await
        .unwrap()
}

#[tokio::test]
async fn erasure_asks_for_the_owner_the_password_and_the_name() {
    let app = TestApp::spawn_with(|c| c.no_jobs = true).await;
    let care = app.company("erase@care.example").await;
    let name = "erase@care.example's company";
    let admin = app.staff(&care, "admin@care.example", "admin").await;
    let key = app.api_key(&care, "admin").await;
    let other = app.company("erase@other.example").await;

    erase(&app, &care, &care.token, "wrong password", name)
        .await
        .problem(401, "invalid-credentials");
    let res = erase(&app, &care, &care.token, PASSWORD, "Care").await;
    res.problem(400, "invalid-parameter");
    assert!(res.text.contains("confirm"), "{}", res.text);
    erase(&app, &care, &admin, PASSWORD, name)
        .await
        .problem(403, "forbidden");
    erase(&app, &care, &key, PASSWORD, name).await.problem(403, "forbidden");
    erase(&app, &care, &other.token, PASSWORD, name)
        .await
        .problem(404, "not-found");
    assert_eq!(
        app.get(&format!("/v1/memberships/{}", care.membership_id), &care.token)
            .await
            .status,
        StatusCode::OK,
        "nothing happened"
    );
}

#[tokio::test]
async fn erasure_removes_a_companys_data_and_leaves_others_untouched() {
    let app = TestApp::spawn().await;
    let care = app.company("gone@care.example").await;
    let name = "gone@care.example's company";
    let staff = app.staff(&care, "nurse@care.example", "admin").await;
    let key = app.api_key(&care, "developer").await;
    let d = app.monitored_device(&care, "G-1").await;
    ingest(&app, &d.credential(), readings(0, 300, 30).0).await;
    let res = app
        .upload(
            &care.token,
            care.farm_id,
            "a/b/report.pdf",
            pseudo_random(70_000, 3),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let export = request_export(&app, &care).await;
    assert_eq!(finished(&app, &care, export).await.body["status"], "succeeded");

    // A bystander with data of its own.
    let bystander = app.company("stays@other.example").await;
    let bd = app.monitored_device(&bystander, "S-1").await;
    ingest(&app, &bd.credential(), readings(0, 100, 10).0).await;
    app.upload(&bystander.token, bystander.farm_id, "keep.txt", b"keep".to_vec(), &[])
        .await;

    let mid = care.membership_id;
    let db = app.running.state.db.conn();
    let blobs: Vec<farm_blob::Model> = farm_blob::Entity::find()
        .filter(farm_blob::Column::FarmId.eq(care.farm_id))
        .all(db)
        .await
        .unwrap();
    assert!(!blobs.is_empty());
    let export_key = export_objects::key(mid, export);
    assert!(
        export_objects::exists(&app.running.state.blobs, &export_key)
            .await
            .unwrap()
    );

    let res = erase(&app, &care, &care.token, PASSWORD, name).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);

    // Through the API: the membership is gone for everyone.
    for (token, path) in [
        (&care.token, format!("/v1/memberships/{mid}")),
        (&staff, format!("/v1/memberships/{mid}")),
        (&staff, format!("/v1/memberships/{mid}/subjects")),
        (&staff, format!("/v1/subjects/{}/readings?metric=heart_rate", d.subject)),
        (&key, format!("/v1/memberships/{mid}")),
    ] {
        let status = app.get(&path, token).await.status;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::UNAUTHORIZED,
            "{path}: {status}"
        );
    }
    let (status, _, _) = app.download(&staff, care.farm_id, "a/b/report.pdf", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The owner belonged nowhere else: the account is gone. The nurse keeps
    // theirs, without the company.
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": care.email, "password": PASSWORD}),
        )
        .await;
    login.problem(401, "invalid-credentials");
    let me = app.get("/v1/me", &app.login("nurse@care.example").await).await;
    assert!(!me.text.contains(&mid.to_string()), "{}", me.text);
    // The device's credentials no longer work.
    let res = app
        .client
        .post(app.url("/v1/ingest/readings"))
        .header("authorization", d.credential())
        .json(&json!({"readings": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Erasing again: there is nothing there.
    erase(&app, &care, &staff, PASSWORD, name)
        .await
        .problem(404, "not-found");

    // In the database.
    assert_eq!(
        count::<reading::Entity>(&app, reading::Column::MembershipId.eq(mid)).await,
        0
    );
    assert_eq!(
        count::<subject::Entity>(&app, subject::Column::MembershipId.eq(mid)).await,
        0
    );
    assert_eq!(
        count::<api_key::Entity>(&app, api_key::Column::MembershipId.eq(mid)).await,
        0
    );
    assert_eq!(
        count::<device::Entity>(&app, device::Column::OwnerMembershipId.eq(mid)).await,
        0
    );
    assert_eq!(
        count::<farm_file::Entity>(&app, farm_file::Column::FarmId.eq(care.farm_id)).await,
        0
    );
    assert_eq!(
        count::<farm_blob::Entity>(&app, farm_blob::Column::FarmId.eq(care.farm_id)).await,
        0
    );
    assert_eq!(count::<job::Entity>(&app, job::Column::MembershipId.eq(mid)).await, 0);
    let farm = vitalfarm_storage::entity::farm::Entity::find_by_id(care.farm_id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(farm.wrapped_key.is_none(), "the data key is destroyed");
    let tombstone = vitalfarm_storage::entity::membership::Entity::find_by_id(mid)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(tombstone.erased_at.is_some());
    assert_eq!(tombstone.name, "");
    assert_eq!(tombstone.kind, "company");

    // In the object store.
    for blob in &blobs {
        assert!(
            app.running
                .state
                .blobs
                .raw(vitalfarm_domain::FarmId::from_uuid(care.farm_id), blob.id)
                .await
                .is_err(),
            "blob {} is still stored",
            blob.id
        );
    }
    assert!(
        !export_objects::exists(&app.running.state.blobs, &export_key)
            .await
            .unwrap()
    );

    // The bystander is untouched.
    let res = app
        .get(
            &format!("/v1/subjects/{}/readings?metric=heart_rate&limit=1000", bd.subject),
            &bystander.token,
        )
        .await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 100);
    let (status, _, body) = app.download(&bystander.token, bystander.farm_id, "keep.txt", &[]).await;
    assert_eq!((status, body), (StatusCode::OK, b"keep".to_vec()));
}

#[tokio::test]
async fn erasing_an_individual_returns_its_claimed_device_to_the_fleet() {
    let app = TestApp::spawn_with(|c| c.no_jobs = true).await;
    let maker = app.company("maker@fleet.example").await;
    let reg = app
        .post(
            &format!("/v1/memberships/{}/devices", maker.membership_id),
            Some(&maker.token),
            json!({"serial": "W-9"}),
        )
        .await;
    let (device_id, secret, code) = (
        reg.str("/devices/0/device_id"),
        reg.str("/devices/0/secret"),
        reg.str("/devices/0/claim_code"),
    );
    let buyer = app.individual("buyer@home.example").await;
    let me = app
        .get(
            &format!("/v1/memberships/{}/subjects", buyer.membership_id),
            &buyer.token,
        )
        .await
        .str("/items/0/id");
    let res = app
        .post(
            "/v1/devices/claim",
            Some(&buyer.token),
            json!({"claim_code": code, "subject_id": me}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    ingest(&app, &format!("Device {device_id}:{secret}"), readings(0, 20, 2).0).await;

    let res = erase(&app, &buyer, &buyer.token, PASSWORD, "buyer@home.example's individual").await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);

    let dev = app.get(&format!("/v1/devices/{device_id}"), &maker.token).await;
    assert_eq!(dev.body["status"], "provisioned", "{}", dev.text);
    assert_eq!(dev.body["claimed"], false);
    assert_eq!(
        count::<reading::Entity>(&app, reading::Column::MembershipId.eq(buyer.membership_id)).await,
        0
    );
    // The fleet owner can hand it out again.
    let subject = app
        .post(
            &format!("/v1/memberships/{}/subjects", maker.membership_id),
            Some(&maker.token),
            json!({"kind": "enrollee", "display_name": "Next wearer"}),
        )
        .await
        .str("/id");
    let res = app
        .post(
            &format!("/v1/devices/{device_id}/assign"),
            Some(&maker.token),
            json!({"subject_id": subject}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    app.post(
        "/v1/auth/login",
        None,
        json!({"email": buyer.email, "password": PASSWORD}),
    )
    .await
    .problem(401, "invalid-credentials");
}

#[tokio::test]
async fn an_expired_export_is_gone_and_swept() {
    let app = TestApp::spawn_with(|c| c.export_ttl_secs = 1).await;
    let care = app.individual("ttl@example.org").await;
    let id = request_export(&app, &care).await;
    let done = finished(&app, &care, id).await;
    assert_eq!(done.body["status"], "succeeded", "{}", done.text);
    let url = done.str("/download_url");
    let key = export_objects::key(care.membership_id, id);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    app.get(&url, &care.token).await.problem(410, "gone");
    let res = app.get(&format!("{}/{id}", exports_path(&care)), &care.token).await;
    assert_eq!(res.body["status"], "expired");
    assert!(res.body["download_url"].is_null());
    assert!(export_objects::exists(&app.running.state.blobs, &key).await.unwrap());
    assert_eq!(
        vitalfarm_app::export::sweep_expired(&app.running.state).await.unwrap(),
        1
    );
    assert!(!export_objects::exists(&app.running.state.blobs, &key).await.unwrap());
    app.get(&url, &care.token).await.problem(410, "gone");
}
