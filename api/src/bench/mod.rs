//! `vitalfarm bench`: measured figures, each printed next to the same run's
//! baseline so a number means something on the machine at hand.

mod analytics;
mod export;
mod farm;
mod ingest;

use std::time::Duration;

pub use analytics::{AnalyticsBench, analytics};
pub use export::{ExportBench, export};
pub use farm::{FarmBench, farm};
pub use ingest::{IngestBench, ingest};

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
