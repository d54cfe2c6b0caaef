//! Elderly watch: one status per subject (ok, attention, emergency) from
//! the latest blood pressure, temperature and heart rate judged against the
//! public datasets, and from how long the subject has been silent compared
//! with its own rhythm. Every rule that fires gives a [`Reason`] naming the
//! values, the threshold and the dataset behind it.

use super::{Status, nearest_rank};
use crate::datasets::{self, Category, Class, Records};

/// The dataset names, as `GET /v1/public-datasets` lists them.
pub const BP_DATASET: &str = "blood-pressure-categories";
pub const VITALS_DATASET: &str = "vital-sign-ranges";
pub const TEMPERATURE_DATASET: &str = "temperature-thresholds";

/// The age assumed when a subject has no birth date: an adult, whose ranges
/// apply from 16 years on.
pub const ADULT_AGE_DAYS: i64 = 70 * 365;
/// A temperature at or above this is a high fever (hyperpyrexia, a
/// clinical convention; the dataset only says where fever starts).
pub const HIGH_FEVER_C: f64 = 40.0;
/// A heart rate below `min × FAR_LOW` or above `max × FAR_HIGH` of the
/// age's normal range is far outside it (adult: below 48 or above 130).
pub const FAR_LOW: f64 = 0.8;
pub const FAR_HIGH: f64 = 1.3;
/// Silence shorter than this never raises attention, however regular the
/// subject's readings.
pub const SILENCE_FLOOR_MS: i64 = 60 * 60 * 1000;
/// Multiple of the expected gap after which silence raises attention.
pub const SILENCE_FACTOR: i64 = 3;
/// Silence longer than this is an emergency whatever the rhythm.
pub const SILENCE_MAX_MS: i64 = 24 * 60 * 60 * 1000;
/// The share of gaps the expected gap covers.
pub const GAP_RANK: f64 = 0.95;

/// A value with its time (epoch ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    pub value: f64,
    pub at_ms: i64,
}

/// A blood-pressure reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pressure {
    pub systolic: f64,
    pub diastolic: f64,
    pub at_ms: i64,
}

/// What the rules look at for one subject.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// The moment judged.
    pub now_ms: i64,
    /// Age at `now_ms`; `None` when the birth date is unknown.
    pub age_days: Option<i64>,
    pub blood_pressure: Option<Pressure>,
    /// Body temperature, °C.
    pub temperature: Option<Timed>,
    /// Heart rate from devices.
    pub heart_rate: Option<Timed>,
    /// Heart rate derived from an ECG recording.
    pub ecg_heart_rate: Option<Timed>,
    /// The latest reading of any metric.
    pub last_reading_ms: Option<i64>,
    /// The subject's usual gap between readings; `None` without history.
    pub expected_gap_ms: Option<i64>,
}

/// The rule behind a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    BpCategory,
    Temperature,
    HeartRate,
    EcgHeartRate,
    Inactivity,
}

impl Rule {
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::BpCategory => "bp_category",
            Rule::Temperature => "temperature",
            Rule::HeartRate => "heart_rate",
            Rule::EcgHeartRate => "ecg_heart_rate",
            Rule::Inactivity => "inactivity",
        }
    }
}

/// A dataset and the source in it a threshold comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRef {
    pub name: &'static str,
    pub source: String,
}

/// Why a rule fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    pub rule: Rule,
    pub status: Status,
    /// The metric judged; `None` for inactivity (every metric counts).
    pub metric: Option<&'static str>,
    /// The values judged, by name (`systolic`, `value`, `silent_seconds`).
    pub values: Vec<(&'static str, f64)>,
    /// When the judged value was measured (inactivity: the last reading).
    pub at_ms: Option<i64>,
    /// The category or class reached (`hypertensive_crisis`, `fever`,
    /// `above_range`, `no_data`...).
    pub category: String,
    /// The threshold crossed, in words.
    pub threshold: String,
    pub dataset: Option<DatasetRef>,
}

/// The verdict on one subject: the worst status of the rules that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub reasons: Vec<Reason>,
}

/// Applies every rule to `inputs`.
pub fn judge(inputs: &Inputs) -> Verdict {
    let age = inputs.age_days.unwrap_or(ADULT_AGE_DAYS);
    let mut reasons = Vec::new();
    reasons.extend(inputs.blood_pressure.and_then(blood_pressure));
    reasons.extend(inputs.temperature.and_then(|t| temperature(t, age)));
    reasons.extend(inputs.heart_rate.and_then(|h| heart_rate(Rule::HeartRate, h, age)));
    reasons.extend(
        inputs
            .ecg_heart_rate
            .and_then(|h| heart_rate(Rule::EcgHeartRate, h, age)),
    );
    reasons.extend(inactivity(
        inputs.now_ms,
        inputs.last_reading_ms,
        inputs.expected_gap_ms,
    ));
    let status = reasons.iter().map(|r| r.status).max().unwrap_or(Status::Ok);
    Verdict { status, reasons }
}

fn first_source(name: &str) -> String {
    datasets::find(name)
        .and_then(|(meta, _)| meta.sources.first().map(|s| s.id.clone()))
        .unwrap_or_default()
}

/// Stage 2 hypertension raises attention, a hypertensive crisis is an
/// emergency; lower categories do not fire.
pub fn blood_pressure(p: Pressure) -> Option<Reason> {
    let category = datasets::bp_category(p.systolic, p.diastolic);
    let status = match category {
        Category::HypertensiveCrisis => Status::Emergency,
        Category::Stage2 => Status::Attention,
        _ => return None,
    };
    let published = match datasets::find(BP_DATASET) {
        Some((_, Records::BloodPressure(records))) => records
            .into_iter()
            .find(|r| r.category == category)
            .map(|r| r.published)
            .unwrap_or_default(),
        _ => String::new(),
    };
    Some(Reason {
        rule: Rule::BpCategory,
        status,
        metric: Some("blood_pressure"),
        values: vec![("systolic", p.systolic), ("diastolic", p.diastolic)],
        at_ms: Some(p.at_ms),
        category: category.as_str().to_owned(),
        threshold: published,
        dataset: Some(DatasetRef {
            name: BP_DATASET,
            source: first_source(BP_DATASET),
        }),
    })
}

/// Fever raises attention; a high fever, a fever under 3 months and
/// hypothermia are emergencies.
pub fn temperature(t: Timed, age_days: i64) -> Option<Reason> {
    let class = datasets::temperature_class(t.value, age_days);
    let (status, category) = match class {
        Class::Normal => return None,
        Class::Hypothermia => (Status::Emergency, class.as_str().to_owned()),
        Class::FeverUnder3Months => (Status::Emergency, class.as_str().to_owned()),
        Class::Fever if t.value >= HIGH_FEVER_C => (Status::Emergency, "high_fever".to_owned()),
        Class::Fever => (Status::Attention, class.as_str().to_owned()),
    };
    let rule = match datasets::find(TEMPERATURE_DATASET) {
        Some((_, Records::Temperature(rules))) => rules.into_iter().find(|r| {
            r.class == class
                && r.age_from_days.is_none_or(|from| age_days >= from)
                && r.age_to_days.is_none_or(|to| age_days < to)
        }),
        _ => None,
    };
    let mut threshold = rule.as_ref().map(|r| r.published.clone()).unwrap_or_default();
    if category == "high_fever" {
        threshold = format!("{threshold}; high fever at or above {HIGH_FEVER_C} C");
    }
    Some(Reason {
        rule: Rule::Temperature,
        status,
        metric: Some("body_temperature"),
        values: vec![("value", t.value)],
        at_ms: Some(t.at_ms),
        category,
        threshold,
        dataset: Some(DatasetRef {
            name: TEMPERATURE_DATASET,
            source: rule.map(|r| r.source).unwrap_or_default(),
        }),
    })
}

/// Outside the age's normal awake range raises attention; far outside it
/// (see [`FAR_LOW`], [`FAR_HIGH`]) is an emergency.
pub fn heart_rate(rule: Rule, h: Timed, age_days: i64) -> Option<Reason> {
    let record = datasets::vital_record("heart_rate", age_days)?;
    let (low, high) = (record.min, record.max);
    let far_low = low * FAR_LOW;
    let far_high = high * FAR_HIGH;
    let (status, category) = if h.value < far_low {
        (Status::Emergency, "far_below_range")
    } else if h.value > far_high {
        (Status::Emergency, "far_above_range")
    } else if h.value < low {
        (Status::Attention, "below_range")
    } else if h.value > high {
        (Status::Attention, "above_range")
    } else {
        return None;
    };
    Some(Reason {
        rule,
        status,
        metric: Some("heart_rate"),
        values: vec![("value", h.value)],
        at_ms: Some(h.at_ms),
        category: category.to_owned(),
        threshold: format!(
            "{} normal range {low}-{high} /min; emergency below {far_low} or above {far_high}",
            record.age_group
        ),
        dataset: Some(DatasetRef {
            name: VITALS_DATASET,
            source: record.source.clone(),
        }),
    })
}

/// The usual gap between readings at `times_ms` (any order): the
/// [`GAP_RANK`] nearest-rank percentile of the gaps between distinct
/// times; `None` with fewer than two distinct times.
pub fn expected_gap_ms(times_ms: &[i64]) -> Option<i64> {
    let mut t = times_ms.to_vec();
    t.sort_unstable();
    t.dedup();
    let mut gaps: Vec<f64> = t.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    gaps.sort_by(f64::total_cmp);
    nearest_rank(&gaps, GAP_RANK).map(|g| g as i64)
}

/// The silence after which attention is raised: three expected gaps, at
/// least [`SILENCE_FLOOR_MS`].
pub fn silence_threshold_ms(expected_gap_ms: Option<i64>) -> i64 {
    expected_gap_ms
        .map_or(0, |g| g.saturating_mul(SILENCE_FACTOR))
        .max(SILENCE_FLOOR_MS)
}

/// Silence beyond the threshold raises attention; beyond twice it, or
/// beyond a day, it is an emergency. No reading at all raises attention.
pub fn inactivity(now_ms: i64, last_ms: Option<i64>, expected_gap_ms: Option<i64>) -> Option<Reason> {
    let threshold = silence_threshold_ms(expected_gap_ms);
    let Some(last) = last_ms else {
        return Some(Reason {
            rule: Rule::Inactivity,
            status: Status::Attention,
            metric: None,
            values: Vec::new(),
            at_ms: None,
            category: "no_data".to_owned(),
            threshold: "no reading in the last 14 days".to_owned(),
            dataset: None,
        });
    };
    let silent = now_ms.saturating_sub(last);
    let status = if silent > threshold.saturating_mul(2) || silent > SILENCE_MAX_MS {
        Status::Emergency
    } else if silent > threshold {
        Status::Attention
    } else {
        return None;
    };
    Some(Reason {
        rule: Rule::Inactivity,
        status,
        metric: None,
        values: vec![
            ("silent_seconds", (silent / 1000) as f64),
            ("threshold_seconds", (threshold / 1000) as f64),
        ],
        at_ms: Some(last),
        category: "silent".to_owned(),
        threshold: format!(
            "attention after {} s without a reading (3 x the usual gap, at least 1 h); emergency after twice that or 24 h",
            threshold / 1000
        ),
        dataset: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn bp(s: f64, d: f64) -> Option<Reason> {
        blood_pressure(Pressure {
            systolic: s,
            diastolic: d,
            at_ms: 5,
        })
    }

    fn temp(c: f64, age: i64) -> Option<Status> {
        temperature(Timed { value: c, at_ms: 1 }, age).map(|r| r.status)
    }

    fn hr(v: f64, age: i64) -> Option<Status> {
        heart_rate(Rule::HeartRate, Timed { value: v, at_ms: 1 }, age).map(|r| r.status)
    }

    #[test]
    fn blood_pressure_fires_from_stage_2_and_crisis_is_an_emergency() {
        assert_eq!(bp(120.0, 79.0), None);
        assert_eq!(bp(135.0, 85.0), None, "stage 1 does not fire");
        let r = bp(140.0, 70.0).unwrap();
        assert_eq!((r.status, r.category.as_str()), (Status::Attention, "stage_2"));
        assert_eq!(
            bp(180.0, 100.0).unwrap().status,
            Status::Attention,
            "180 is not above 180"
        );
        let r = bp(181.0, 100.0).unwrap();
        assert_eq!(
            (r.status, r.category.as_str()),
            (Status::Emergency, "hypertensive_crisis")
        );
        assert_eq!(r.values, vec![("systolic", 181.0), ("diastolic", 100.0)]);
        assert_eq!(r.at_ms, Some(5));
        assert_eq!(r.dataset.as_ref().unwrap().name, BP_DATASET);
        assert!(!r.threshold.is_empty());
        assert_eq!(bp(150.0, 121.0).unwrap().status, Status::Emergency);
        assert_eq!(bp(150.0, 120.0).unwrap().status, Status::Attention);
    }

    #[test]
    fn temperature_classes_map_to_statuses() {
        let adult = ADULT_AGE_DAYS;
        assert_eq!(temp(37.9, adult), None);
        assert_eq!(temp(35.0, adult), None);
        assert_eq!(temp(38.0, adult), Some(Status::Attention));
        assert_eq!(temp(39.9, adult), Some(Status::Attention));
        assert_eq!(temp(40.0, adult), Some(Status::Emergency));
        assert_eq!(temp(34.9, adult), Some(Status::Emergency));
        assert_eq!(temp(38.0, 30), Some(Status::Emergency), "fever under 3 months");
        let r = temperature(Timed { value: 38.5, at_ms: 1 }, adult).unwrap();
        assert_eq!(r.category, "fever");
        assert_eq!(r.dataset.unwrap().source, "cdc-fever");
    }

    #[test]
    fn heart_rate_outside_and_far_outside_the_age_range() {
        let adult = ADULT_AGE_DAYS;
        assert_eq!(hr(60.0, adult), None);
        assert_eq!(hr(100.0, adult), None);
        assert_eq!(hr(101.0, adult), Some(Status::Attention));
        assert_eq!(hr(59.0, adult), Some(Status::Attention));
        assert_eq!(hr(130.0, adult), Some(Status::Attention));
        assert_eq!(hr(131.0, adult), Some(Status::Emergency));
        assert_eq!(hr(48.0, adult), Some(Status::Attention));
        assert_eq!(hr(47.0, adult), Some(Status::Emergency));
        // An infant's normal is an adult's tachycardia.
        assert_eq!(hr(150.0, 100), None);
        let r = heart_rate(Rule::EcgHeartRate, Timed { value: 140.0, at_ms: 1 }, adult).unwrap();
        assert_eq!(r.rule.as_str(), "ecg_heart_rate");
        assert_eq!(r.dataset.unwrap().name, VITALS_DATASET);
    }

    #[test]
    fn expected_gap_is_the_95th_percentile_of_gaps() {
        let times: Vec<i64> = (0..100).map(|i| i * 10 * MIN).collect();
        assert_eq!(expected_gap_ms(&times), Some(10 * MIN));
        let mut uneven = times.clone();
        uneven.push(99 * 10 * MIN + 5 * HOUR);
        uneven.push(1); // unsorted and near-duplicate times are fine
        assert_eq!(expected_gap_ms(&uneven), Some(10 * MIN));
        assert_eq!(expected_gap_ms(&[5, 5]), None);
        assert_eq!(expected_gap_ms(&[]), None);
    }

    #[test]
    fn inactivity_thresholds_follow_the_rhythm_with_a_floor() {
        // Readings every 10 minutes: the floor of an hour applies.
        let gap = Some(10 * MIN);
        assert_eq!(silence_threshold_ms(gap), HOUR);
        assert_eq!(inactivity(HOUR, Some(0), gap), None);
        assert_eq!(inactivity(HOUR + 1, Some(0), gap).unwrap().status, Status::Attention);
        assert_eq!(inactivity(2 * HOUR, Some(0), gap).unwrap().status, Status::Attention);
        assert_eq!(
            inactivity(2 * HOUR + 1, Some(0), gap).unwrap().status,
            Status::Emergency
        );
        // Readings every 6 hours: 18 h of silence is normal, a day is not.
        let gap = Some(6 * HOUR);
        assert_eq!(inactivity(18 * HOUR, Some(0), gap), None);
        assert_eq!(inactivity(20 * HOUR, Some(0), gap).unwrap().status, Status::Attention);
        assert_eq!(
            inactivity(24 * HOUR + 1, Some(0), gap).unwrap().status,
            Status::Emergency
        );
        let no = inactivity(0, None, None).unwrap();
        assert_eq!((no.status, no.category.as_str()), (Status::Attention, "no_data"));
    }

    #[test]
    fn the_verdict_is_the_worst_rule() {
        let now = 10 * HOUR;
        let fine = Inputs {
            now_ms: now,
            age_days: Some(80 * 365),
            blood_pressure: Some(Pressure {
                systolic: 118.0,
                diastolic: 76.0,
                at_ms: now - MIN,
            }),
            heart_rate: Some(Timed {
                value: 70.0,
                at_ms: now - MIN,
            }),
            last_reading_ms: Some(now - MIN),
            expected_gap_ms: Some(10 * MIN),
            ..Inputs::default()
        };
        let v = judge(&fine);
        assert_eq!((v.status, v.reasons.len()), (Status::Ok, 0));
        let mut bad = fine.clone();
        bad.temperature = Some(Timed {
            value: 38.4,
            at_ms: now,
        });
        bad.ecg_heart_rate = Some(Timed {
            value: 40.0,
            at_ms: now,
        });
        let v = judge(&bad);
        assert_eq!(v.status, Status::Emergency);
        let rules: Vec<_> = v.reasons.iter().map(|r| r.rule).collect();
        assert_eq!(rules, vec![Rule::Temperature, Rule::EcgHeartRate]);
    }
}
