//! Compound services ("mashups") that judge a subject's readings against the
//! public reference datasets (`crate::datasets`) and say why. Only the
//! decisions live here; gathering the readings is the API's job.

pub mod elderly;
pub mod infant;

use chrono::NaiveDate;

/// How worrying a subject's state is, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Ok,
    Attention,
    Emergency,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Attention => "attention",
            Status::Emergency => "emergency",
        }
    }
}

/// Whole days of age on `on`, `None` before birth.
pub fn age_days(birth: NaiveDate, on: NaiveDate) -> Option<i64> {
    let days = (on - birth).num_days();
    (days >= 0).then_some(days)
}

/// Nearest-rank percentile (`rank` in 0..=1) of sorted values.
pub fn nearest_rank(sorted: &[f64], rank: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let k = ((rank * n as f64).ceil() as usize).clamp(1, n) - 1;
    Some(sorted[k])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_whole_days_and_refuses_the_unborn() {
        let b = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_eq!(age_days(b, b), Some(0));
        assert_eq!(age_days(b, NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()), Some(30));
        assert_eq!(age_days(b, NaiveDate::from_ymd_opt(2025, 12, 31).unwrap()), None);
    }

    #[test]
    fn nearest_rank_picks_the_smallest_value_covering_the_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(nearest_rank(&v, 0.5), Some(2.0));
        assert_eq!(nearest_rank(&v, 0.95), Some(4.0));
        assert_eq!(nearest_rank(&v, 0.0), Some(1.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }
}
