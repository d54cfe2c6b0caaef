//! `vitalfarm bench`: measured figures, each printed next to the same run's
//! baseline so a number means something on the machine at hand.

mod analytics;
mod export;
mod farm;
mod ingest;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use vitalfarm_storage::bulk;

pub use analytics::{AnalyticsBench, analytics};
pub use export::{ExportBench, export};
pub use farm::{FarmBench, farm};
pub use ingest::{IngestBench, ingest};

/// Where a benchmark keeps its state: a scratch directory (under `dir`,
/// else the current one) and, given a PostgreSQL server, a scratch
/// database on it; `finish` drops the database unless asked to keep it.
struct Scratch {
    dir: tempfile::TempDir,
    /// Random, so benches can share a server and a broker.
    tag: String,
    /// `(server, database name, database URL)`.
    pg: Option<(String, String, String)>,
}

impl Scratch {
    async fn create(dir: Option<&Path>, database_server: Option<&str>) -> anyhow::Result<Self> {
        vitalfarm_app::install_crypto_provider();
        let dir = match dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                tempfile::tempdir_in(d)?
            }
            None => tempfile::tempdir_in(".")?,
        };
        let tag = hex::encode(vitalfarm_app::auth::secrets::random_bytes::<4>()?);
        let pg = match database_server {
            Some(server) => {
                let name = format!("vitalfarm_bench_{tag}");
                let url = bulk::create_database(server, &name)
                    .await
                    .context("creating the scratch database")?;
                Some((server.to_owned(), name, url))
            }
            None => None,
        };
        Ok(Self { dir, tag, pg })
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn database_url(&self) -> Option<String> {
        self.pg.as_ref().map(|(_, _, url)| url.clone())
    }

    #[allow(clippy::print_stderr, reason = "bench progress goes to stderr")]
    async fn finish(self, keep: bool) {
        if let Some((server, name, _)) = &self.pg {
            if keep {
                eprintln!("kept the scratch database {name}");
            } else if let Err(e) = bulk::drop_database(server, name).await {
                eprintln!("could not drop the scratch database {name}: {e}");
            }
        }
    }
}

/// Nearest-rank percentile `q` (0 to 1) of `sorted`, in milliseconds.
fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert!((percentile_ms(&v, 0.5) - 50.0).abs() < 1e-9);
        assert!((percentile_ms(&v, 0.99) - 99.0).abs() < 1e-9);
        assert!((percentile_ms(&v[..1], 0.99) - 1.0).abs() < 1e-9);
        assert!(percentile_ms(&[], 0.5).is_nan());
    }
}
