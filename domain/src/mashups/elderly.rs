//! Elderly watch: one status per subject (ok, attention, emergency) from
//! the latest blood pressure, temperature, heart rate, SpO2 and blood
//! glucose, each judged by [`norms::assess`] for the subject's age, and
//! from how long the subject has been silent compared with its own rhythm.
//! Every rule that fires gives a [`Reason`] naming the values, the
//! category, the threshold row and the dataset behind it.
//!
//! A category of severity `moderate` raises attention and `severe` is an
//! emergency; `mild` ones (NEWS2 score 1, ACC/AHA elevated and stage 1, a
//! child's reading just outside the PALS range) do not fire on their own.

use super::{Status, nearest_rank};
use crate::datasets::{self, Severity};
use crate::norms::{self, Assessment, Metric, Value};
/// Silence shorter than this never raises attention, however regular the
/// subject's readings.
pub const SILENCE_FLOOR_MS: i64 = 60 * 60 * 1000;
/// Multiple of the expected gap after which silence raises attention.
pub const SILENCE_FACTOR: i64 = 3;
/// Silence longer than this is an emergency whatever the rhythm.
pub const SILENCE_MAX_MS: i64 = 24 * 60 * 60 * 1000;
/// The share of gaps the expected gap covers.
pub const GAP_RANK: f64 = 0.95;
/// How far back the rhythm and the last reading are looked for.
pub const HISTORY_MS: i64 = 14 * 24 * 60 * 60 * 1000;

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
    /// Oxygen saturation, %.
    pub spo2: Option<Timed>,
    /// Blood glucose, mg/dL.
    pub glucose: Option<Timed>,
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
    Spo2,
    Glucose,
    Inactivity,
}

impl Rule {
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::BpCategory => "bp_category",
            Rule::Temperature => "temperature",
            Rule::HeartRate => "heart_rate",
            Rule::EcgHeartRate => "ecg_heart_rate",
            Rule::Spo2 => "spo2",
            Rule::Glucose => "glucose",
            Rule::Inactivity => "inactivity",
        }
    }
}

/// A dataset and the source in it a threshold comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRef {
    pub name: &'static str,
    pub source: String,
    /// The source's citation in the dataset (`datasets::source`).
    pub citation: String,
}

/// What the inactivity rule rests on: the watch's own rule, as no public
/// dataset gives a threshold of silence.
pub const INACTIVITY_SOURCE: &str = "vitalfarm elderly watch: the person's own rhythm of readings over 14 days \
     (attention after 3 x the 95th percentile of the gaps, at least 1 h; emergency after twice that or 24 h); \
     no public dataset";

/// The note an answer carries for a subject without a birth date.
pub const AGE_UNKNOWN_NOTE: &str = "age unknown: no birth date, adult ranges used";

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
    /// Where the threshold comes from, in words: the dataset source's
    /// citation, or [`INACTIVITY_SOURCE`].
    pub source: String,
}

/// The verdict on one subject: the worst status of the rules that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub reasons: Vec<Reason>,
    /// Values read but not judged, by metric code, with why: no shipped
    /// source gives norms at the subject's age (blood pressure before 18,
    /// SpO2 of a neonate), or the value is not a finite number.
    pub not_judged: Vec<(&'static str, String)>,
}

/// Applies every rule to `inputs`.
pub fn judge(inputs: &Inputs) -> Verdict {
    let age = inputs.age_days;
    let mut reasons = Vec::new();
    reasons.extend(inputs.blood_pressure.and_then(|p| blood_pressure(p, age)));
    reasons.extend(inputs.temperature.and_then(|t| temperature(t, age)));
    reasons.extend(inputs.heart_rate.and_then(|h| heart_rate(Rule::HeartRate, h, age)));
    reasons.extend(
        inputs
            .ecg_heart_rate
            .and_then(|h| heart_rate(Rule::EcgHeartRate, h, age)),
    );
    reasons.extend(inputs.spo2.and_then(|v| scalar(Rule::Spo2, Metric::Spo2, v, age)));
    reasons.extend(
        inputs
            .glucose
            .and_then(|v| scalar(Rule::Glucose, Metric::BloodGlucose, v, age)),
    );
    reasons.extend(inactivity(
        inputs.now_ms,
        inputs.last_reading_ms,
        inputs.expected_gap_ms,
    ));
    let status = reasons.iter().map(|r| r.status).max().unwrap_or(Status::Ok);
    Verdict {
        status,
        reasons,
        not_judged: not_judged(inputs),
    }
}

/// The values of `inputs` [`norms::assess`] refuses, with its reason; the
/// rules pass over them, and the answer says so instead of staying silent.
fn not_judged(inputs: &Inputs) -> Vec<(&'static str, String)> {
    let age = inputs.age_days;
    let pressure = inputs.blood_pressure.map(|p| {
        (
            Metric::BloodPressure,
            Value::Pressure {
                systolic: p.systolic,
                diastolic: p.diastolic,
            },
        )
    });
    let scalars = [
        (Metric::BodyTemperature, inputs.temperature),
        (Metric::HeartRate, inputs.heart_rate),
        (Metric::HeartRate, inputs.ecg_heart_rate),
        (Metric::Spo2, inputs.spo2),
        (Metric::BloodGlucose, inputs.glucose),
    ]
    .into_iter()
    .filter_map(|(m, t)| t.map(|t| (m, Value::Scalar(t.value))));
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (metric, value) in pressure.into_iter().chain(scalars) {
        if let Err(e) = norms::assess(metric, value, age, None)
            && !out.iter().any(|o| o.0 == metric.code())
        {
            out.push((metric.code(), e.to_string()));
        }
    }
    out
}

/// The status a category's severity raises, if any.
pub fn status_of(severity: Severity) -> Option<Status> {
    match severity {
        Severity::Normal | Severity::Mild => None,
        Severity::Moderate => Some(Status::Attention),
        Severity::Severe => Some(Status::Emergency),
    }
}

/// The reason for an assessment that raises a status.
fn reason(
    rule: Rule,
    metric: &'static str,
    values: Vec<(&'static str, f64)>,
    at_ms: i64,
    a: Assessment,
) -> Option<Reason> {
    let status = status_of(a.severity)?;
    let mut threshold = format!("{}: {}", a.source.table, a.source.row);
    if a.age_unknown {
        threshold = format!("age unknown, adult norms used; {threshold}");
    }
    // Every shipped source has a citation (a dataset test checks it); the
    // id stands in should a source ever lack one.
    let citation = datasets::source(a.source.dataset, &a.source.source)
        .map_or_else(|| a.source.source.clone(), |s| s.citation.clone());
    Some(Reason {
        rule,
        status,
        metric: Some(metric),
        values,
        at_ms: Some(at_ms),
        category: a.category,
        threshold,
        dataset: Some(DatasetRef {
            name: a.source.dataset,
            source: a.source.source,
            citation: citation.clone(),
        }),
        source: citation,
    })
}

fn scalar(rule: Rule, metric: Metric, t: Timed, age_days: Option<i64>) -> Option<Reason> {
    let a = norms::assess(metric, Value::Scalar(t.value), age_days, None).ok()?;
    reason(rule, metric.code(), vec![("value", t.value)], t.at_ms, a)
}

/// Stage 2 hypertension raises attention; a hypertensive crisis, or a
/// systolic pressure in NEWS2's lowest band, is an emergency.
pub fn blood_pressure(p: Pressure, age_days: Option<i64>) -> Option<Reason> {
    let a = norms::assess(
        Metric::BloodPressure,
        Value::Pressure {
            systolic: p.systolic,
            diastolic: p.diastolic,
        },
        age_days,
        None,
    )
    .ok()?;
    reason(
        Rule::BpCategory,
        "blood_pressure",
        vec![("systolic", p.systolic), ("diastolic", p.diastolic)],
        p.at_ms,
        a,
    )
}

/// Temperature by the subject's norms: NEWS2 for adults (a score of 2 or
/// 3 fires), NICE NG143 and the temperature dataset for children.
pub fn temperature(t: Timed, age_days: Option<i64>) -> Option<Reason> {
    scalar(Rule::Temperature, Metric::BodyTemperature, t, age_days)
}

/// Heart rate by the subject's norms: NEWS2 for adults (111-130 /min
/// attention, 40 or less and 131 or more an emergency).
pub fn heart_rate(rule: Rule, h: Timed, age_days: Option<i64>) -> Option<Reason> {
    scalar(rule, Metric::HeartRate, h, age_days)
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
            values: vec![
                ("history_seconds", (HISTORY_MS / 1000) as f64),
                ("threshold_seconds", (threshold / 1000) as f64),
            ],
            at_ms: None,
            category: "no_data".to_owned(),
            threshold: "no reading in the last 14 days".to_owned(),
            dataset: None,
            source: INACTIVITY_SOURCE.to_owned(),
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
        source: INACTIVITY_SOURCE.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    const ADULT: Option<i64> = Some(80 * 365);

    fn bp(s: f64, d: f64) -> Option<Reason> {
        blood_pressure(
            Pressure {
                systolic: s,
                diastolic: d,
                at_ms: 5,
            },
            ADULT,
        )
    }

    fn temp(c: f64, age: Option<i64>) -> Option<Status> {
        temperature(Timed { value: c, at_ms: 1 }, age).map(|r| r.status)
    }

    fn hr(v: f64, age: Option<i64>) -> Option<Status> {
        heart_rate(Rule::HeartRate, Timed { value: v, at_ms: 1 }, age).map(|r| r.status)
    }

    fn glucose(v: f64) -> Option<(Status, String)> {
        let i = Inputs {
            glucose: Some(Timed { value: v, at_ms: 1 }),
            last_reading_ms: Some(0),
            ..Inputs::default()
        };
        judge(&i).reasons.into_iter().next().map(|r| (r.status, r.category))
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
        assert_eq!(r.dataset.as_ref().unwrap().name, "blood-pressure-categories");
        assert!(r.threshold.contains("> 180"), "{}", r.threshold);
        assert_eq!(bp(150.0, 121.0).unwrap().status, Status::Emergency);
        assert_eq!(bp(150.0, 120.0).unwrap().status, Status::Attention);
        let low = bp(88.0, 60.0).unwrap();
        assert_eq!(
            (low.status, low.category.as_str()),
            (Status::Emergency, "far_below_range")
        );
        assert_eq!(low.dataset.unwrap().name, "news2-chart-1");
        assert_eq!(bp(91.0, 60.0), None);
    }

    #[test]
    fn temperature_follows_news2_for_adults_and_ng143_for_infants() {
        assert_eq!(temp(38.0, ADULT), None);
        assert_eq!(temp(39.0, ADULT), None, "NEWS2 score 1 does not fire alone");
        assert_eq!(temp(39.1, ADULT), Some(Status::Attention));
        assert_eq!(temp(40.0, ADULT), Some(Status::Attention));
        assert_eq!(temp(35.1, ADULT), None);
        assert_eq!(temp(35.0, ADULT), Some(Status::Emergency));
        assert_eq!(temp(38.0, Some(30)), Some(Status::Emergency), "fever under 3 months");
        let r = temperature(Timed { value: 39.5, at_ms: 1 }, None).unwrap();
        assert_eq!(r.category, "high_fever");
        assert!(r.threshold.starts_with("age unknown"), "{}", r.threshold);
        assert_eq!(r.dataset.unwrap().source, "news2-2017");
        let r = temperature(Timed { value: 38.8, at_ms: 1 }, Some(48)).unwrap();
        assert_eq!(r.category, "fever_under_3_months");
        assert_eq!(r.dataset.unwrap().name, "nice-ng143-traffic-light");
    }

    #[test]
    fn heart_rate_by_the_news2_bands() {
        assert_eq!(hr(51.0, ADULT), None);
        assert_eq!(hr(110.0, ADULT), None);
        assert_eq!(hr(111.0, ADULT), Some(Status::Attention));
        assert_eq!(hr(130.0, ADULT), Some(Status::Attention));
        assert_eq!(hr(131.0, ADULT), Some(Status::Emergency));
        assert_eq!(hr(41.0, ADULT), None);
        assert_eq!(hr(40.0, ADULT), Some(Status::Emergency));
        // An infant's normal is an adult's tachycardia.
        assert_eq!(hr(150.0, Some(100)), None);
        let r = heart_rate(Rule::EcgHeartRate, Timed { value: 140.0, at_ms: 1 }, ADULT).unwrap();
        assert_eq!(
            (r.rule.as_str(), r.category.as_str()),
            ("ecg_heart_rate", "far_above_range")
        );
        assert_eq!(r.dataset.unwrap().name, "news2-chart-1");
        assert!(r.threshold.contains(">=131"), "{}", r.threshold);
    }

    #[test]
    fn glucose_and_spo2_are_judged() {
        assert_eq!(glucose(120.0), None);
        assert_eq!(glucose(180.0), None);
        assert_eq!(
            glucose(181.0),
            Some((Status::Attention, "hyperglycaemia_level_1".to_owned()))
        );
        assert_eq!(
            glucose(250.0),
            Some((Status::Attention, "hyperglycaemia_level_1".to_owned()))
        );
        assert_eq!(
            glucose(251.0),
            Some((Status::Emergency, "hyperglycaemia_level_2".to_owned()))
        );
        assert_eq!(
            glucose(69.0),
            Some((Status::Attention, "hypoglycaemia_level_1".to_owned()))
        );
        assert_eq!(
            glucose(50.0),
            Some((Status::Emergency, "hypoglycaemia_level_2".to_owned()))
        );
        let s = |v| scalar(Rule::Spo2, Metric::Spo2, Timed { value: v, at_ms: 1 }, ADULT).map(|r| r.status);
        assert_eq!(s(96.0), None);
        assert_eq!(s(94.0), None);
        assert_eq!(s(93.0), Some(Status::Attention));
        assert_eq!(s(91.0), Some(Status::Emergency));
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

    /// Every kind of reason names its values, threshold, category and
    /// source; a dataset's reason also its dataset, source id and citation.
    #[test]
    fn every_reason_names_values_threshold_category_and_source() {
        let now = 30 * HOUR;
        let at = now - MIN;
        let t = |value| Some(Timed { value, at_ms: at });
        let everything = Inputs {
            now_ms: now,
            age_days: ADULT,
            blood_pressure: Some(Pressure {
                systolic: 190.0,
                diastolic: 100.0,
                at_ms: at,
            }),
            temperature: t(39.5),
            heart_rate: t(135.0),
            ecg_heart_rate: t(35.0),
            spo2: t(88.0),
            glucose: t(300.0),
            last_reading_ms: Some(0),
            expected_gap_ms: Some(10 * MIN),
        };
        let v = judge(&everything);
        let rules: Vec<_> = v.reasons.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(
            rules,
            [
                "bp_category",
                "temperature",
                "heart_rate",
                "ecg_heart_rate",
                "spo2",
                "glucose",
                "inactivity"
            ]
        );
        let no_data = judge(&Inputs {
            now_ms: now,
            ..Inputs::default()
        });
        for r in v.reasons.iter().chain(&no_data.reasons) {
            let what = r.rule.as_str();
            assert!(!r.values.is_empty(), "{what}: no values");
            assert!(!r.threshold.is_empty(), "{what}: no threshold");
            assert!(!r.category.is_empty(), "{what}: no category");
            assert!(!r.source.is_empty(), "{what}: no source");
            match (&r.dataset, r.rule) {
                (None, Rule::Inactivity) => assert_eq!(r.source, INACTIVITY_SOURCE),
                (Some(d), _) => {
                    let cited = datasets::source(d.name, &d.source).unwrap();
                    assert_eq!((&d.citation, &r.source), (&cited.citation, &cited.citation), "{what}");
                    assert!(r.metric.is_some(), "{what}");
                }
                (None, _) => panic!("{what}: no dataset"),
            }
        }
        let bp = &v.reasons[0];
        assert!(bp.source.contains("Hypertension. 2018"), "{}", bp.source);
        assert_eq!(no_data.reasons[0].category, "no_data");
        assert_eq!(
            no_data.reasons[0].values,
            vec![("history_seconds", 14.0 * 24.0 * 3600.0), ("threshold_seconds", 3600.0)]
        );
    }

    #[test]
    fn a_value_without_norms_at_the_age_is_named_not_judged() {
        let child = Inputs {
            now_ms: HOUR,
            age_days: Some(10 * 365),
            blood_pressure: Some(Pressure {
                systolic: 190.0,
                diastolic: 125.0,
                at_ms: 1,
            }),
            heart_rate: Some(Timed { value: 90.0, at_ms: 1 }),
            last_reading_ms: Some(HOUR - MIN),
            ..Inputs::default()
        };
        let v = judge(&child);
        assert_eq!(v.status, Status::Ok);
        assert_eq!(
            v.not_judged,
            vec![(
                "blood_pressure",
                "no shipped source gives norms of blood_pressure at 3650 days of age".to_owned()
            )]
        );
        let adult = Inputs {
            age_days: ADULT,
            ..child
        };
        assert_eq!(judge(&adult).not_judged, vec![]);
        assert_eq!(judge(&adult).status, Status::Emergency);
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
            value: 39.4,
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
