//! `vitalfarm bench farm`: file upload and download through the HTTP API
//! beside the same disk's raw write and read speed.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;

use vitalfarm_api::server;
use vitalfarm_app::config::Config;

const MIB: usize = 1024 * 1024;

// `vitalfarm bench farm`: clap reads the field doc comments as its help.
#[derive(Debug, clap::Args)]
pub struct FarmBench {
    /// Directory on the disk to measure (default: the current one).
    // The database, the blobs and the baseline file all go there.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value_t = 20)]
    pub small_runs: usize,
    #[arg(long, default_value_t = 3)]
    pub large_runs: usize,
}

struct Figure {
    size: &'static str,
    op: &'static str,
    runs: usize,
    api_mbps: f64,
    disk_mbps: f64,
    disk_what: &'static str,
}

fn mbps(bytes: usize, runs: usize, elapsed: Duration) -> f64 {
    (bytes * runs) as f64 / MIB as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Deterministic bytes that do not compress, like real ECG or image data.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect()
}

/// The disk's own speed for the same work: write `len` bytes to a new file
/// and fsync it (what an upload must do), then read it back.
fn disk_baseline(dir: &Path, data: &[u8], runs: usize) -> anyhow::Result<(f64, f64)> {
    let mut write = Duration::ZERO;
    let mut read = Duration::ZERO;
    let mut buf = vec![0u8; data.len()];
    for i in 0..runs {
        let path = dir.join(format!("baseline-{i}.bin"));
        let t = Instant::now();
        let mut f = std::fs::File::create(&path)?;
        f.write_all(data)?;
        f.sync_all()?;
        write += t.elapsed();
        let t = Instant::now();
        std::fs::File::open(&path)?.read_exact(&mut buf)?;
        read += t.elapsed();
        std::fs::remove_file(&path)?;
    }
    Ok((mbps(data.len(), runs, write), mbps(data.len(), runs, read)))
}

#[allow(clippy::print_stdout, reason = "printing the figures is what a benchmark is for")]
pub async fn farm(opts: FarmBench) -> anyhow::Result<()> {
    vitalfarm_app::install_crypto_provider();
    let scratch = match &opts.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir_in(".")?,
    };
    let dir = scratch.path().to_path_buf();
    let config = Config {
        data_dir: dir.join("data"),
        bind: "127.0.0.1:0".into(),
        no_mqtt: true,
        log_level: "warn".into(),
        farm_quota_bytes: 64 * 1024 * MIB as u64,
        max_file_bytes: 1024 * MIB as u64,
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
    let farm = signup["membership"]["farm_id"].as_str().context("no farm")?.to_owned();

    let mut figures = Vec::new();
    for (size, label, runs) in [(MIB, "1 MiB", opts.small_runs), (100 * MIB, "100 MiB", opts.large_runs)] {
        let data = bytes::Bytes::from(payload(size));
        // Warm-up: one upload and download outside the measurement.
        let url = format!("{base}/v1/farms/{farm}/files/bench/warmup-{label}.bin");
        client
            .put(&url)
            .bearer_auth(&token)
            .body(data.clone())
            .send()
            .await?
            .error_for_status()?;
        client.get(&url).bearer_auth(&token).send().await?.bytes().await?;

        let t = Instant::now();
        for i in 0..runs {
            let url = format!("{base}/v1/farms/{farm}/files/bench/{label}-{i}.bin");
            client
                .put(&url)
                .bearer_auth(&token)
                .body(data.clone())
                .send()
                .await?
                .error_for_status()?;
        }
        let upload = mbps(size, runs, t.elapsed());
        let t = Instant::now();
        for i in 0..runs {
            let url = format!("{base}/v1/farms/{farm}/files/bench/{label}-{i}.bin");
            let mut stream = client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .bytes_stream();
            let mut got = 0;
            while let Some(chunk) = stream.next().await {
                got += chunk?.len();
            }
            anyhow::ensure!(got == size, "download returned {got} of {size} bytes");
        }
        let download = mbps(size, runs, t.elapsed());
        let (disk_write, disk_read) = disk_baseline(&dir, &data, runs)?;
        figures.push(Figure {
            size: label,
            op: "upload",
            runs,
            api_mbps: upload,
            disk_mbps: disk_write,
            disk_what: "write+fsync",
        });
        figures.push(Figure {
            size: label,
            op: "download",
            runs,
            api_mbps: download,
            disk_mbps: disk_read,
            disk_what: "read",
        });
    }
    running.handle.stop(true).await;

    println!(
        "vitalfarm bench farm: HTTP API on 127.0.0.1, SQLite, local store with fsync, AES-256-GCM in 64 KiB chunks"
    );
    println!("directory: {} (the baseline file is written there too)", dir.display());
    println!("size     op         runs     API MB/s    disk MB/s  disk baseline");
    for f in &figures {
        println!(
            "{:<8} {:<9} {:>5} {:>12.1} {:>12.1}  {} of the same bytes, same run",
            f.size, f.op, f.runs, f.api_mbps, f.disk_mbps, f.disk_what
        );
    }
    println!("(reads of both columns are served from the page cache when it holds the file; MB = MiB)");
    Ok(())
}
