//! One notion of "normal for this person": [`assess`] gives the category,
//! severity and normal band of a reading for the subject's age (in days)
//! and sex, with the dataset, table and row every threshold comes from.
//! Charts, the infant monitor and the elderly watch all ask it, so they
//! cannot disagree.
//!
//! Which source applies where:
//! - heart and respiratory rate: PALS normal ranges (`vital-sign-ranges`)
//!   before 16 years, with the Fleming 2011 centile band reported beside
//!   them; NEWS2 Chart 1 (`news2-chart-1`) from 16 years.
//! - SpO2: WHO hypoxaemia (< 90 %, `vital-sign-ranges`) from 1 month to 16
//!   years, NEWS2 scale 1 from 16 years; no source gives neonates a range.
//! - body temperature: `temperature-thresholds` (hypothermia, normal,
//!   fever) before 16 years, refined by the NICE NG143 traffic-light rows
//!   (red under 3 months from 38 °C, amber 3 to 6 months from 39 °C);
//!   NEWS2 from 16 years.
//! - blood pressure: ACC/AHA 2017 (`blood-pressure-categories`) from 18
//!   years, with NEWS2's systolic score and its lowest band (≤ 90 mm Hg,
//!   score 3) where ACC/AHA calls the reading normal; no paediatric source.
//! - blood glucose: ADA Standards of Care, section 6, at every age.
//!
//! Without a birth date the adult sources apply and the assessment says
//! so (`age_unknown`). No shipped source distinguishes sex; the argument is
//! taken so that one that does can be added without changing callers.

use crate::datasets::{self, BandRecord, Bounds, Category, CentileRecord, Severity};
use crate::subject::Sex;

/// First day of age at which the adult sources (NEWS2) apply: 16 years.
pub const ADULT_FROM_DAYS: i64 = 5844;
/// First day of age at which ACC/AHA 2017 applies: 18 years.
pub const BP_ADULT_FROM_DAYS: i64 = 6575;

/// A metric [`assess`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    HeartRate,
    RespiratoryRate,
    BloodPressure,
    BodyTemperature,
    Spo2,
    BloodGlucose,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::HeartRate,
        Metric::RespiratoryRate,
        Metric::BloodPressure,
        Metric::BodyTemperature,
        Metric::Spo2,
        Metric::BloodGlucose,
    ];

    /// The catalog code (`GET /v1/metrics`).
    pub const fn code(self) -> &'static str {
        match self {
            Metric::HeartRate => "heart_rate",
            Metric::RespiratoryRate => "respiratory_rate",
            Metric::BloodPressure => "blood_pressure",
            Metric::BodyTemperature => "body_temperature",
            Metric::Spo2 => "spo2",
            Metric::BloodGlucose => "blood_glucose",
        }
    }

    pub fn from_code(code: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.code() == code)
    }
}

/// The value judged, in the metric's canonical unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Scalar(f64),
    /// Blood pressure, mm Hg.
    Pressure {
        systolic: f64,
        diastolic: f64,
    },
}

/// Where a threshold comes from: the dataset (`GET /v1/public-datasets`),
/// the source in it, the table or section of that source and its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    pub dataset: &'static str,
    pub source: String,
    pub table: String,
    pub row: String,
}

/// The normal band of one component (`None` for a scalar metric).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalBand {
    pub component: Option<&'static str>,
    pub bounds: Bounds,
}

/// Where a child's reading falls among the Fleming 2011 centiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentilePosition {
    /// `below_1st`, `1st_to_10th` ... `90th_to_99th`, `above_99th`.
    pub band: String,
    pub age_group: String,
    pub source: SourceRef,
}

/// What [`assess`] says about a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub metric: Metric,
    /// `normal`, `above_range`, `fever_under_3_months`, `stage_2`,
    /// `hypoglycaemia_level_2`...
    pub category: String,
    pub severity: Severity,
    /// The NEWS2 score of the value (adults), where NEWS2 scores it.
    pub score: Option<u8>,
    /// The population whose norms were used (`adult`, `infant`...).
    pub population: String,
    /// No birth date: adult norms were used.
    pub age_unknown: bool,
    /// The normal band(s) for this person.
    pub range: Vec<NormalBand>,
    /// The row that gave the category.
    pub source: SourceRef,
    /// Children's heart and respiratory rate only.
    pub centile: Option<CentilePosition>,
}

/// Why a value cannot be assessed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormError {
    #[error("the value is not a finite number")]
    NotFinite,
    #[error("{0} takes a systolic and a diastolic value; other metrics a single value")]
    WrongShape(&'static str),
    #[error("the age is negative")]
    NegativeAge,
    #[error("no shipped source gives norms of {metric} at {age_days} days of age")]
    NoReference { metric: &'static str, age_days: i64 },
}

impl NormError {
    /// The input field at fault, for a problem document.
    pub const fn field(&self) -> &'static str {
        match self {
            NormError::NotFinite | NormError::WrongShape(_) => "value",
            NormError::NegativeAge | NormError::NoReference { .. } => "age_days",
        }
    }
}

/// One band of a profile: values from `lower` up to the next band's lower
/// limit.
#[derive(Debug, Clone, PartialEq)]
struct Band {
    /// Lower limit and whether it is included; `None` for the lowest band.
    lower: Option<(f64, bool)>,
    category: String,
    severity: Severity,
    score: Option<u8>,
    source: SourceRef,
}

impl Band {
    fn admits(&self, v: f64) -> bool {
        match self.lower {
            None => true,
            Some((l, inclusive)) => v > l || inclusive && v == l,
        }
    }
}

/// The bands of one scalar metric for one person, lowest values first.
#[derive(Debug, Clone, PartialEq)]
struct Profile {
    population: String,
    bands: Vec<Band>,
    centiles: Option<&'static CentileRecord>,
}

impl Profile {
    fn index_of(&self, v: f64) -> usize {
        self.bands.iter().rposition(|b| b.admits(v)).unwrap_or(0)
    }

    /// The values of band `i`.
    fn bounds(&self, i: usize) -> Bounds {
        let upper = self.bands.get(i + 1).and_then(|b| b.lower).map(|(v, inc)| (v, !inc));
        Bounds::between(self.bands[i].lower, upper)
    }

    fn normal(&self) -> Bounds {
        self.bands
            .iter()
            .position(|b| b.category == "normal")
            .map_or_else(Bounds::default, |i| self.bounds(i))
    }

    /// Puts a band open upwards from its lower limit over the profile.
    fn overlay(&mut self, band: Band) {
        let Some((at, _)) = band.lower else { return };
        self.bands.retain(|b| b.lower.is_none_or(|(l, _)| l < at));
        self.bands.push(band);
    }
}

fn from_record(dataset: &'static str, r: &BandRecord) -> Band {
    Band {
        lower: r.value.lower(),
        category: r.category.clone(),
        severity: r.severity,
        score: r.score,
        source: SourceRef {
            dataset,
            source: r.source.clone(),
            table: r.table.clone(),
            row: r.row.clone(),
        },
    }
}

const VITALS: &str = "vital-sign-ranges";
const TEMPERATURE: &str = "temperature-thresholds";
const NEWS2: &str = "news2-chart-1";
const NG143: &str = "nice-ng143-traffic-light";
const GLUCOSE: &str = "ada-glycaemic-thresholds";
const BP: &str = "blood-pressure-categories";
const CENTILES: &str = "paediatric-vital-centiles";

fn no_reference(metric: Metric, age_days: i64) -> NormError {
    NormError::NoReference {
        metric: metric.code(),
        age_days,
    }
}

/// A profile from a dataset of bands; empty bands mean no reference.
fn banded(dataset: &'static str, population: &str, records: &[&BandRecord]) -> Option<Profile> {
    (!records.is_empty()).then(|| Profile {
        population: population.to_owned(),
        bands: records.iter().map(|r| from_record(dataset, r)).collect(),
        centiles: None,
    })
}

/// Children's heart rate, respiratory rate and SpO2 from the PALS / WHO
/// ranges of `vital-sign-ranges`.
fn child_vitals(metric: Metric, age_days: i64) -> Option<Profile> {
    let r = datasets::vital_record(metric.code(), age_days)?;
    let table = match metric {
        Metric::HeartRate => "PALS: Normal heart rates (awake)",
        Metric::RespiratoryRate => "PALS: Normal respiratory rates",
        _ => "Hypoxaemia: SpO2 below 90 %",
    };
    let to = r.age_to_days.map_or_else(|| "on".to_owned(), |t| format!("to {t}"));
    let row = format!(
        "{} (days {} {to}): {}-{} {}",
        r.age_group, r.age_from_days, r.min, r.max, r.unit
    );
    let source = SourceRef {
        dataset: VITALS,
        source: r.source.clone(),
        table: table.to_owned(),
        row,
    };
    let band = |lower, category: &str, severity| Band {
        lower,
        category: category.to_owned(),
        severity,
        score: None,
        source: source.clone(),
    };
    let bands = if metric == Metric::Spo2 {
        // WHO defines hypoxaemia only; anything from its threshold up is
        // not hypoxaemic.
        vec![
            band(None, "hypoxaemia", Severity::Severe),
            band(Some((r.min, true)), "normal", Severity::Normal),
        ]
    } else {
        vec![
            band(None, "below_range", Severity::Mild),
            band(Some((r.min, true)), "normal", Severity::Normal),
            band(Some((r.max, false)), "above_range", Severity::Mild),
        ]
    };
    Some(Profile {
        population: r.age_group.clone(),
        bands,
        centiles: datasets::centiles(metric.code(), age_days),
    })
}

/// The table of a temperature-thresholds source, which names none.
fn temperature_table(source: &str) -> &'static str {
    match source {
        "erc-2021" => "Accidental hypothermia: definition",
        "cdc-fever" => "Definitions of signs and symptoms: fever",
        "nice-ng143" => "Table 1: Traffic light system for identifying risk of serious illness",
        _ => "",
    }
}

/// Children's temperature: the classes of `temperature-thresholds` at the
/// age, then the NG143 rows that refine fever at that age.
fn child_temperature(age_days: i64) -> Profile {
    let mut bands: Vec<Band> = Vec::new();
    for r in datasets::temperature_rules()
        .iter()
        .filter(|r| r.age_from_days.is_none_or(|from| age_days >= from) && r.age_to_days.is_none_or(|to| age_days < to))
    {
        let lower = r.celsius.lower();
        // The first rule for a range of values wins, as in the dataset.
        if bands.iter().any(|b| b.lower == lower) {
            continue;
        }
        let severity = match r.class {
            datasets::Class::Normal => Severity::Normal,
            datasets::Class::Fever => Severity::Mild,
            datasets::Class::Hypothermia | datasets::Class::FeverUnder3Months => Severity::Severe,
        };
        bands.push(Band {
            lower,
            category: r.class.as_str().to_owned(),
            severity,
            score: None,
            source: SourceRef {
                dataset: TEMPERATURE,
                source: r.source.clone(),
                table: temperature_table(&r.source).to_owned(),
                row: r.published.clone(),
            },
        });
    }
    bands.sort_by(|a, b| {
        let key = |x: &Band| x.lower.map_or(f64::NEG_INFINITY, |l| l.0);
        key(a).total_cmp(&key(b))
    });
    let mut profile = Profile {
        population: if age_days < 91 {
            "under_3_months".to_owned()
        } else if age_days < 183 {
            "3_to_6_months".to_owned()
        } else {
            "child".to_owned()
        },
        bands,
        centiles: None,
    };
    for r in datasets::ng143_bands(age_days) {
        profile.overlay(from_record(NG143, r));
    }
    profile
}

/// The profile of a scalar metric at an age (`None`: age unknown, adult).
fn profile(metric: Metric, age_days: Option<i64>) -> Result<Profile, NormError> {
    let adult = age_days.is_none_or(|a| a >= ADULT_FROM_DAYS);
    let age = age_days.unwrap_or(ADULT_FROM_DAYS);
    let found = match metric {
        Metric::BloodGlucose => banded(GLUCOSE, "all_ages", &datasets::glucose_bands(age)),
        Metric::BloodPressure => banded(
            NEWS2,
            "adult",
            &datasets::news2_bands(metric.code(), Some("systolic"), age),
        ),
        Metric::BodyTemperature if !adult => Some(child_temperature(age)),
        Metric::HeartRate | Metric::RespiratoryRate | Metric::Spo2 if !adult => child_vitals(metric, age),
        _ => banded(NEWS2, "adult", &datasets::news2_bands(metric.code(), None, age)),
    };
    found.ok_or_else(|| no_reference(metric, age))
}

fn centile_position(r: &'static CentileRecord, v: f64) -> CentilePosition {
    let ladder = r.ladder();
    let band = if v < ladder[0].1 {
        "below_1st".to_owned()
    } else if v > ladder[6].1 {
        "above_99th".to_owned()
    } else {
        // The highest centile at or below the value, up to the next one.
        let i = ladder.iter().rposition(|c| c.1 <= v).unwrap_or(0).min(5);
        format!("{}_to_{}", ladder[i].0, ladder[i + 1].0)
    };
    CentilePosition {
        band,
        age_group: r.age_group.clone(),
        source: SourceRef {
            dataset: CENTILES,
            source: r.source.clone(),
            table: r.table.clone(),
            row: format!(
                "{}: 1st {} / 50th {} / 99th {} {}",
                r.age_group, r.p1, r.p50, r.p99, r.unit
            ),
        },
    }
}

/// The category, severity and normal band of `value` of `metric` for a
/// subject `age_days` old (`None`: birth date unknown, adult norms) of
/// `sex`.
pub fn assess(metric: Metric, value: Value, age_days: Option<i64>, sex: Option<Sex>) -> Result<Assessment, NormError> {
    // No shipped source distinguishes sex (see the module documentation).
    let _ = sex;
    if age_days.is_some_and(|a| a < 0) {
        return Err(NormError::NegativeAge);
    }
    match (metric, value) {
        (Metric::BloodPressure, Value::Pressure { systolic, diastolic }) => {
            if !(systolic.is_finite() && diastolic.is_finite()) {
                return Err(NormError::NotFinite);
            }
            blood_pressure(systolic, diastolic, age_days)
        }
        (Metric::BloodPressure, Value::Scalar(_)) | (_, Value::Pressure { .. }) => {
            Err(NormError::WrongShape(metric.code()))
        }
        (_, Value::Scalar(v)) => {
            if !v.is_finite() {
                return Err(NormError::NotFinite);
            }
            let p = profile(metric, age_days)?;
            let i = p.index_of(v);
            let band = &p.bands[i];
            Ok(Assessment {
                metric,
                category: band.category.clone(),
                severity: band.severity,
                score: band.score,
                population: p.population.clone(),
                age_unknown: age_days.is_none(),
                range: vec![NormalBand {
                    component: None,
                    bounds: p.normal(),
                }],
                source: band.source.clone(),
                centile: p.centiles.map(|c| centile_position(c, v)),
            })
        }
    }
}

fn bp_severity(c: Category) -> Severity {
    match c {
        Category::Normal => Severity::Normal,
        Category::Elevated | Category::Stage1 => Severity::Mild,
        Category::Stage2 => Severity::Moderate,
        Category::HypertensiveCrisis => Severity::Severe,
    }
}

fn blood_pressure(systolic: f64, diastolic: f64, age_days: Option<i64>) -> Result<Assessment, NormError> {
    if let Some(a) = age_days
        && a < BP_ADULT_FROM_DAYS
    {
        return Err(no_reference(Metric::BloodPressure, a));
    }
    let category = datasets::bp_category(systolic, diastolic);
    let records = datasets::bp_records();
    let record = records.iter().find(|r| r.category == category);
    let normal = records.iter().find(|r| r.category == Category::Normal);
    let news2 = profile(Metric::BloodPressure, age_days)?;
    let i = news2.index_of(systolic);
    let low = &news2.bands[i];
    let mut a = Assessment {
        metric: Metric::BloodPressure,
        category: category.as_str().to_owned(),
        severity: bp_severity(category),
        score: low.score,
        population: "adult".to_owned(),
        age_unknown: age_days.is_none(),
        range: vec![
            NormalBand {
                component: Some("systolic"),
                // From the top of NEWS2's lowest band (score 3) to the top
                // of ACC/AHA's normal.
                bounds: Bounds::between(
                    news2.bands.get(1).and_then(|b| b.lower),
                    normal.and_then(|r| r.systolic.upper()),
                ),
            },
            NormalBand {
                component: Some("diastolic"),
                bounds: normal.map(|r| r.diastolic).unwrap_or_default(),
            },
        ],
        source: SourceRef {
            dataset: BP,
            source: "acc-aha-2017".to_owned(),
            table: if category == Category::HypertensiveCrisis {
                "Section 11.2: Hypertensive crises".to_owned()
            } else {
                "Table 6: Categories of BP in adults".to_owned()
            },
            row: record.map(|r| r.published.clone()).unwrap_or_default(),
        },
        centile: None,
    };
    // ACC/AHA has no lower limit: a systolic in NEWS2's lowest band is not
    // "normal" whatever the guideline's table says.
    if category == Category::Normal && i == 0 {
        a.category = low.category.clone();
        a.severity = low.severity;
        a.source = low.source.clone();
    }
    Ok(a)
}

/// The categories of a scalar metric at an age, from the lowest values up
/// (a category spanning two adjacent bands is listed once).
pub fn categories(metric: Metric, age_days: Option<i64>) -> Result<Vec<String>, NormError> {
    let p = profile(metric, age_days)?;
    let mut out: Vec<String> = Vec::new();
    for b in &p.bands {
        if out.last() != Some(&b.category) {
            out.push(b.category.clone());
        }
    }
    Ok(out)
}

/// The rank of a blood-pressure category, lowest first.
pub fn bp_rank(category: &str) -> Option<usize> {
    std::iter::once("far_below_range")
        .chain(Category::ALL.iter().map(|c| c.as_str()))
        .position(|c| c == category)
}

/// The normal band of `metric` (and `component`, for blood pressure) for
/// a subject of that age, with the dataset row behind it.
pub fn normal_band(
    metric: Metric,
    component: Option<&str>,
    age_days: Option<i64>,
    sex: Option<Sex>,
) -> Result<Bounds, NormError> {
    let probe = match metric {
        Metric::BloodPressure => Value::Pressure {
            systolic: 110.0,
            diastolic: 70.0,
        },
        _ => Value::Scalar(0.0),
    };
    let a = assess(metric, probe, age_days, sex)?;
    let band = a.range.iter().find(|b| b.component == component);
    band.map(|b| b.bounds).ok_or(NormError::WrongShape(metric.code()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const INFANT_48: Option<i64> = Some(48);
    const ADULT: Option<i64> = Some(30 * 365);

    fn cat(metric: Metric, v: f64, age: Option<i64>) -> String {
        assess(metric, Value::Scalar(v), age, None).unwrap().category
    }

    #[test]
    fn a_48_day_old_is_judged_as_an_infant() {
        let a = assess(Metric::HeartRate, Value::Scalar(160.0), INFANT_48, Some(Sex::Male)).unwrap();
        assert_eq!((a.category.as_str(), a.population.as_str()), ("normal", "infant"));
        assert_eq!(a.range[0].bounds.lower(), Some((100.0, true)));
        assert_eq!(a.range[0].bounds.upper(), Some((180.0, true)));
        assert_eq!(a.source.dataset, "vital-sign-ranges");
        assert_eq!(a.centile.unwrap().band, "75th_to_90th");
        let t = assess(Metric::BodyTemperature, Value::Scalar(38.8), INFANT_48, None).unwrap();
        assert_eq!(
            (t.category.as_str(), t.severity, t.source.dataset),
            ("fever_under_3_months", Severity::Severe, "nice-ng143-traffic-light")
        );
        assert!(t.source.row.contains("Red"));
    }

    #[test]
    fn adults_use_news2_and_a_missing_birth_date_says_so() {
        let a = assess(Metric::HeartRate, Value::Scalar(131.0), None, None).unwrap();
        assert!(a.age_unknown);
        assert_eq!((a.category.as_str(), a.score), ("far_above_range", Some(3)));
        assert_eq!(a.source.dataset, "news2-chart-1");
        assert_eq!(cat(Metric::HeartRate, 130.0, ADULT), "above_range");
        assert_eq!(cat(Metric::HeartRate, 130.9, ADULT), "above_range");
        assert!(
            !assess(Metric::HeartRate, Value::Scalar(70.0), ADULT, None)
                .unwrap()
                .age_unknown
        );
    }

    #[test]
    fn blood_pressure_combines_acc_aha_and_the_news2_floor() {
        let bp = |s, d, age| {
            assess(
                Metric::BloodPressure,
                Value::Pressure {
                    systolic: s,
                    diastolic: d,
                },
                age,
                None,
            )
        };
        let a = bp(192.0, 124.0, ADULT).unwrap();
        assert_eq!(
            (a.category.as_str(), a.severity),
            ("hypertensive_crisis", Severity::Severe)
        );
        assert_eq!(a.source.table, "Section 11.2: Hypertensive crises");
        let low = bp(85.0, 55.0, None).unwrap();
        assert_eq!((low.category.as_str(), low.score), ("far_below_range", Some(3)));
        assert_eq!(bp(91.0, 55.0, None).unwrap().category, "normal");
        assert_eq!(
            bp(120.0, 80.0, Some(17 * 365)),
            Err(NormError::NoReference {
                metric: "blood_pressure",
                age_days: 17 * 365
            })
        );
        assert_eq!(
            normal_band(Metric::BloodPressure, Some("systolic"), None, None).unwrap(),
            Bounds {
                gte: Some(91.0),
                lt: Some(120.0),
                ..Bounds::default()
            }
        );
    }

    #[test]
    fn bad_input_names_its_field() {
        let e = assess(Metric::HeartRate, Value::Scalar(f64::NAN), ADULT, None).unwrap_err();
        assert_eq!(e.field(), "value");
        let e = assess(Metric::HeartRate, Value::Scalar(70.0), Some(-1), None).unwrap_err();
        assert_eq!(e.field(), "age_days");
        let e = assess(Metric::BloodPressure, Value::Scalar(120.0), ADULT, None).unwrap_err();
        assert_eq!(e, NormError::WrongShape("blood_pressure"));
        let e = assess(Metric::Spo2, Value::Scalar(95.0), Some(10), None).unwrap_err();
        assert_eq!(e.field(), "age_days", "no neonatal SpO2 source");
        assert_eq!(Metric::from_code("spo2"), Some(Metric::Spo2));
        assert_eq!(Metric::from_code("steps"), None);
    }

    /// Ages at every band edge of every source, and either side of them.
    fn ages() -> Vec<Option<i64>> {
        let mut a: Vec<Option<i64>> = vec![None];
        for d in [
            0, 27, 28, 48, 90, 91, 182, 183, 364, 365, 1095, 1096, 2192, 4383, 5843, 5844, 6574, 6575, 30_000,
        ] {
            a.push(Some(d));
        }
        a
    }

    const SCALARS: [Metric; 5] = [
        Metric::HeartRate,
        Metric::RespiratoryRate,
        Metric::BodyTemperature,
        Metric::Spo2,
        Metric::BloodGlucose,
    ];

    #[test]
    fn every_profile_has_one_normal_band_and_distinct_rising_limits() {
        for m in SCALARS {
            for age in ages() {
                let Ok(p) = profile(m, age) else {
                    assert_eq!((m, age), (Metric::Spo2, age), "only neonatal SpO2 has no source");
                    continue;
                };
                assert_eq!(
                    p.bands.iter().filter(|b| b.category == "normal").count(),
                    1,
                    "{m:?} {age:?}"
                );
                assert!(p.bands[0].lower.is_none());
                for w in p.bands.windows(2) {
                    let (a, b) = (w[0].lower.map_or(f64::NEG_INFINITY, |l| l.0), w[1].lower.map(|l| l.0));
                    assert!(b.is_some_and(|b| b > a), "{m:?} {age:?}");
                }
                for b in &p.bands {
                    assert!(!b.source.table.is_empty() && !b.source.row.is_empty(), "{m:?} {age:?}");
                }
            }
        }
    }

    proptest! {
        /// Each value has exactly one category, and walking up the values
        /// never walks back down the list of categories.
        #[test]
        fn categories_are_total_and_monotonic(
            m in 0usize..5, age in proptest::option::of(0i64..40_000), a in -50.0f64..400.0, b in -50.0f64..400.0,
        ) {
            let m = SCALARS[m];
            let Ok(order) = categories(m, age) else { return Ok(()) };
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let rank = |v: f64| {
                let c = cat(m, v, age);
                let matches = order.iter().filter(|o| **o == c).count();
                (order.iter().position(|o| *o == c), matches)
            };
            let (r_lo, n_lo) = rank(lo);
            let (r_hi, n_hi) = rank(hi);
            prop_assert_eq!((n_lo, n_hi), (1, 1));
            prop_assert!(r_lo <= r_hi, "{:?} {:?}: {} -> {:?}, {} -> {:?}", m, age, lo, r_lo, hi, r_hi);
        }

        #[test]
        fn blood_pressure_is_monotonic_in_each_value(
            s1 in 40.0f64..260.0, s2 in 40.0f64..260.0, d in 30.0f64..150.0,
        ) {
            let (lo, hi) = if s1 <= s2 { (s1, s2) } else { (s2, s1) };
            let c = |s| assess(Metric::BloodPressure, Value::Pressure { systolic: s, diastolic: d }, None, None)
                .map(|a| bp_rank(&a.category));
            let (a, b) = (c(lo).unwrap(), c(hi).unwrap());
            prop_assert!(a.is_some() && b.is_some());
            prop_assert!(a <= b);
            let c = |d| assess(Metric::BloodPressure, Value::Pressure { systolic: lo, diastolic: d }, None, None)
                .map(|a| bp_rank(&a.category));
            prop_assert!(c(d).unwrap() <= c(d + 10.0).unwrap());
        }
    }
}
