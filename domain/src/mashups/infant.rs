//! Infant monitor: statistics of temperature, SpO2 and heart rate of an
//! infant or child over a period, judged against the age's band of the
//! public datasets, and the episodes of out-of-range readings (a fever, a
//! desaturation) with their start, end and worst value.
//!
//! The monitor applies to subjects younger than 16 years (the child bands
//! of `vital-sign-ranges`, which end where the adult ones begin); an
//! adult is refused by the API rather than judged with a child's band.

use super::nearest_rank;
use crate::metrics;
use crate::norms::{self, Metric, Value};

/// First day of age that is no longer a child's, per `vital-sign-ranges`.
pub const ADULT_FROM_DAYS: i64 = norms::ADULT_FROM_DAYS;
/// Two out-of-range readings further apart than this start two episodes.
pub const JOIN_GAP_MS: i64 = 30 * 60 * 1000;
/// The metrics the monitor reads, by catalog code.
pub const METRICS: [&str; 3] = ["body_temperature", "spo2", "heart_rate"];

/// Whether the monitor applies at `age_days`.
pub fn applies(age_days: i64) -> bool {
    (0..ADULT_FROM_DAYS).contains(&age_days)
}

/// The normal band of a metric at an age and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Norm {
    /// Lowest normal value, inclusive.
    pub low: f64,
    /// Highest normal value: inclusive, except for temperature where fever
    /// starts at it. A band open upwards (SpO2) ends at the catalog's
    /// largest value.
    pub high: f64,
    /// The age group or class of the dataset.
    pub band: String,
    pub dataset: &'static str,
    pub source: String,
}

fn metric_of(code: &str) -> Option<Metric> {
    Metric::from_code(code).filter(|m| *m != Metric::BloodPressure)
}

/// The norm of `metric` at `age_days`, as [`norms::assess`] gives it;
/// `None` when no source gives one (SpO2 of a neonate).
pub fn norm(metric: &str, age_days: i64) -> Option<Norm> {
    let m = metric_of(metric)?;
    let band = norms::normal_band(m, None, Some(age_days), None).ok()?;
    // The row of the normal band itself, found by assessing its lowest value.
    let (low, _) = band.lower()?;
    let a = norms::assess(m, Value::Scalar(low), Some(age_days), None).ok()?;
    let high = band
        .upper()
        .map(|u| u.0)
        .or_else(|| metrics::find(metric).and_then(|d| d.max))?;
    Some(Norm {
        low,
        high,
        band: if m == Metric::BodyTemperature {
            a.category
        } else {
            a.population
        },
        dataset: a.source.dataset,
        source: a.source.source,
    })
}

/// What is wrong with one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Fever,
    /// Fever before 3 months of age: high risk (NICE NG143, red).
    FeverUnder3Months,
    Hypothermia,
    LowSpo2,
    Tachycardia,
    Bradycardia,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Fever => "fever",
            Kind::FeverUnder3Months => "fever_under_3_months",
            Kind::Hypothermia => "hypothermia",
            Kind::LowSpo2 => "low_spo2",
            Kind::Tachycardia => "tachycardia",
            Kind::Bradycardia => "bradycardia",
        }
    }

    /// Whether `a` is worse than `b` for this kind.
    fn worse(self, a: f64, b: f64) -> bool {
        match self {
            Kind::Fever | Kind::FeverUnder3Months | Kind::Tachycardia => a > b,
            Kind::Hypothermia | Kind::LowSpo2 | Kind::Bradycardia => a < b,
        }
    }
}

/// The kind of a reading of `metric` outside its norm at `age_days`;
/// `None` in range. The category is [`norms::assess`]'s, so the monitor
/// says what the charts and the elderly watch say.
pub fn classify(metric: &str, value: f64, age_days: i64) -> Option<Kind> {
    let m = metric_of(metric)?;
    let a = norms::assess(m, Value::Scalar(value), Some(age_days), None).ok()?;
    if a.category == "normal" {
        return None;
    }
    let above = a
        .range
        .first()
        .and_then(|r| r.bounds.lower())
        .is_some_and(|(low, _)| value >= low);
    match m {
        Metric::BodyTemperature if a.category == "fever_under_3_months" => Some(Kind::FeverUnder3Months),
        Metric::BodyTemperature if above => Some(Kind::Fever),
        Metric::BodyTemperature => Some(Kind::Hypothermia),
        Metric::Spo2 => (!above).then_some(Kind::LowSpo2),
        Metric::HeartRate if above => Some(Kind::Tachycardia),
        Metric::HeartRate => Some(Kind::Bradycardia),
        _ => None,
    }
}

/// Statistics of one metric's readings.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub p50: f64,
    /// Share of readings outside the norm, 0 to 1; `None` without a norm.
    pub out_of_range_share: Option<f64>,
}

/// A run of out-of-range readings of one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub metric: &'static str,
    pub kind: Kind,
    pub start_ms: i64,
    pub end_ms: i64,
    pub worst_value: f64,
    pub worst_at_ms: i64,
    pub readings: u64,
}

/// Statistics and episodes of `points` (time, value; in time order) of
/// `metric` at `age_days`; `None` statistics without readings.
pub fn analyse(
    metric: &'static str,
    points: &[(i64, f64)],
    age_days: i64,
    norm: Option<&Norm>,
) -> (Option<Stats>, Vec<Episode>) {
    if points.is_empty() {
        return (None, Vec::new());
    }
    let mut values: Vec<f64> = points.iter().map(|p| p.1).collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let kinds: Vec<Option<Kind>> = points
        .iter()
        .map(|&(_, v)| norm.and(classify(metric, v, age_days)))
        .collect();
    let out = kinds.iter().filter(|k| k.is_some()).count();
    let stats = Stats {
        count: n as u64,
        min: values[0],
        max: values[n - 1],
        mean: values.iter().sum::<f64>() / n as f64,
        p50: nearest_rank(&values, 0.5).unwrap_or(values[0]),
        out_of_range_share: norm.map(|_| out as f64 / n as f64),
    };
    let mut episodes: Vec<Episode> = Vec::new();
    let mut open = false;
    for (&(t, v), kind) in points.iter().zip(&kinds) {
        let Some(kind) = *kind else {
            open = false;
            continue;
        };
        match episodes.last_mut() {
            Some(e) if open && e.kind == kind && t - e.end_ms <= JOIN_GAP_MS => {
                e.end_ms = t;
                e.readings += 1;
                if kind.worse(v, e.worst_value) {
                    e.worst_value = v;
                    e.worst_at_ms = t;
                }
            }
            _ => {
                episodes.push(Episode {
                    metric,
                    kind,
                    start_ms: t,
                    end_ms: t,
                    worst_value: v,
                    worst_at_ms: t,
                    readings: 1,
                });
                open = true;
            }
        }
    }
    (Some(stats), episodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const INFANT: i64 = 200;

    #[test]
    fn the_monitor_applies_to_children_only() {
        assert!(applies(0));
        assert!(applies(ADULT_FROM_DAYS - 1));
        assert!(!applies(ADULT_FROM_DAYS));
        assert!(!applies(-1));
    }

    #[test]
    fn norms_come_from_the_datasets_by_age() {
        let hr = norm("heart_rate", INFANT).unwrap();
        assert_eq!((hr.low, hr.high, hr.band.as_str()), (100.0, 180.0, "infant"));
        assert_eq!(hr.dataset, "vital-sign-ranges");
        let t = norm("body_temperature", INFANT).unwrap();
        assert_eq!((t.low, t.high, t.dataset), (35.0, 38.0, "temperature-thresholds"));
        assert_eq!(norm("spo2", INFANT).unwrap().low, 90.0);
        assert_eq!(norm("spo2", 10), None, "no SpO2 band for neonates");
    }

    #[test]
    fn a_48_day_old_has_an_infant_band_and_a_high_risk_fever() {
        let hr = norm("heart_rate", 48).unwrap();
        assert_eq!((hr.low, hr.high, hr.band.as_str()), (100.0, 180.0, "infant"));
        assert_eq!(classify("heart_rate", 135.0, 48), None);
        assert_eq!(classify("heart_rate", 160.0, 48), None);
        assert_eq!(classify("body_temperature", 38.8, 48), Some(Kind::FeverUnder3Months));
        assert_eq!(classify("body_temperature", 38.8, 91), Some(Kind::Fever));
        assert_eq!(classify("body_temperature", 39.0, 120), Some(Kind::Fever));
    }

    #[test]
    fn readings_are_classified_at_the_boundaries() {
        assert_eq!(classify("heart_rate", 180.0, INFANT), None);
        assert_eq!(classify("heart_rate", 181.0, INFANT), Some(Kind::Tachycardia));
        assert_eq!(classify("heart_rate", 99.0, INFANT), Some(Kind::Bradycardia));
        assert_eq!(classify("spo2", 90.0, INFANT), None);
        assert_eq!(classify("spo2", 89.9, INFANT), Some(Kind::LowSpo2));
        assert_eq!(classify("body_temperature", 37.9, INFANT), None);
        assert_eq!(classify("body_temperature", 38.0, INFANT), Some(Kind::Fever));
        assert_eq!(classify("body_temperature", 34.9, INFANT), Some(Kind::Hypothermia));
    }

    #[test]
    fn consecutive_out_of_range_readings_form_one_episode() {
        let t = norm("body_temperature", INFANT).unwrap();
        let pts = [
            (0, 37.0),
            (10 * MIN, 38.2),
            (20 * MIN, 39.1),
            (40 * MIN, 38.6),
            (50 * MIN, 37.2),
            (60 * MIN, 38.1),
            // More than the join gap later: a second episode.
            (60 * MIN + JOIN_GAP_MS + 1, 38.3),
        ];
        let (stats, eps) = analyse("body_temperature", &pts, INFANT, Some(&t));
        let stats = stats.unwrap();
        assert_eq!(stats.count, 7);
        assert_eq!((stats.min, stats.max), (37.0, 39.1));
        assert!((stats.out_of_range_share.unwrap() - 5.0 / 7.0).abs() < 1e-12);
        assert_eq!(eps.len(), 3, "{eps:?}");
        let e = &eps[0];
        assert_eq!(
            (e.kind, e.start_ms, e.end_ms, e.readings),
            (Kind::Fever, 10 * MIN, 40 * MIN, 3)
        );
        assert_eq!((e.worst_value, e.worst_at_ms), (39.1, 20 * MIN));
        assert_eq!((eps[1].start_ms, eps[1].readings), (60 * MIN, 1));
    }

    #[test]
    fn a_change_of_kind_starts_a_new_episode_and_low_is_worst_for_spo2() {
        let hr = norm("heart_rate", INFANT).unwrap();
        let pts = [(0, 190.0), (MIN, 95.0), (2 * MIN, 90.0)];
        let (_, eps) = analyse("heart_rate", &pts, INFANT, Some(&hr));
        let kinds: Vec<_> = eps.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![Kind::Tachycardia, Kind::Bradycardia]);
        assert_eq!(eps[1].worst_value, 90.0);
        let s = norm("spo2", INFANT).unwrap();
        let (stats, eps) = analyse("spo2", &[(0, 88.0), (MIN, 85.0), (2 * MIN, 89.0)], INFANT, Some(&s));
        assert_eq!((eps[0].worst_value, eps[0].worst_at_ms), (85.0, MIN));
        assert_eq!(stats.unwrap().p50, 88.0);
        assert_eq!(analyse("spo2", &[], INFANT, Some(&s)), (None, Vec::new()));
    }
}
