//! Public reference datasets shipped inside the binary: adult blood-pressure
//! categories (ACC/AHA 2017), normal vital-sign ranges by age, and body
//! temperature thresholds. Each is a JSON file under `domain/data/`, embedded
//! with `include_str!`, parsed and validated once, and served read-only; the
//! lookups below are what analytics and mashups call to judge a reading.
//!
//! The files carry the published thresholds together with their sources, so
//! the numbers a client sees through the API are exactly the numbers the
//! rules use. A file that breaks an invariant (a gap in the age bands, an
//! unknown metric, a source that is not listed) fails the unit tests here,
//! never a request at run time.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::metrics;

const BLOOD_PRESSURE_JSON: &str = include_str!("../data/blood-pressure-categories.json");
const VITAL_RANGES_JSON: &str = include_str!("../data/vital-sign-ranges.json");
const TEMPERATURE_JSON: &str = include_str!("../data/temperature-thresholds.json");
const NEWS2_JSON: &str = include_str!("../data/news2-chart-1.json");
const NG143_JSON: &str = include_str!("../data/nice-ng143-traffic-light.json");
const GLUCOSE_JSON: &str = include_str!("../data/ada-glycaemic-thresholds.json");
const CENTILES_JSON: &str = include_str!("../data/paediatric-vital-centiles.json");

/// Where a dataset's values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Key that records use to name their source.
    pub id: String,
    pub title: String,
    pub publisher: String,
    /// Year of publication; null for an undated web page.
    pub year: Option<u16>,
    /// A bibliographic citation, with the exact passage where it helps.
    pub citation: String,
    pub url: Option<String>,
    /// Under what terms the values are reproduced.
    pub licence: String,
}

/// What describes a dataset besides its records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    pub title: String,
    pub description: String,
    pub version: String,
    pub sources: Vec<Source>,
    /// How the records are to be read, and which source was chosen where
    /// sources differ.
    pub notes: String,
}

/// A dataset as stored: its description and its records.
#[derive(Debug, Clone, Deserialize)]
struct Dataset<R> {
    #[serde(flatten)]
    meta: Meta,
    records: Vec<R>,
}

/// An interval of values; absent sides are open. At most one lower and one
/// upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Greater than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// Greater than or equal to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    /// Less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// Less than or equal to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
}

impl Bounds {
    pub fn contains(&self, v: f64) -> bool {
        self.gt.is_none_or(|b| v > b)
            && self.gte.is_none_or(|b| v >= b)
            && self.lt.is_none_or(|b| v < b)
            && self.lte.is_none_or(|b| v <= b)
    }

    /// The lower limit and whether it belongs to the interval.
    pub fn lower(&self) -> Option<(f64, bool)> {
        self.gte.map(|b| (b, true)).or(self.gt.map(|b| (b, false)))
    }

    /// The upper limit and whether it belongs to the interval.
    pub fn upper(&self) -> Option<(f64, bool)> {
        self.lte.map(|b| (b, true)).or(self.lt.map(|b| (b, false)))
    }

    /// The interval from `lower` (inclusive or not) up to `upper`.
    pub fn between(lower: Option<(f64, bool)>, upper: Option<(f64, bool)>) -> Bounds {
        let mut b = Bounds::default();
        match lower {
            Some((v, true)) => b.gte = Some(v),
            Some((v, false)) => b.gt = Some(v),
            None => {}
        }
        match upper {
            Some((v, true)) => b.lte = Some(v),
            Some((v, false)) => b.lt = Some(v),
            None => {}
        }
        b
    }

    fn check(&self) -> Result<(), String> {
        let all = [self.gt, self.gte, self.lt, self.lte];
        if all.iter().flatten().any(|b| !b.is_finite()) {
            return Err("a bound is not finite".into());
        }
        if self.gt.is_some() && self.gte.is_some() || self.lt.is_some() && self.lte.is_some() {
            return Err("two lower or two upper bounds".into());
        }
        let lower = self.gt.or(self.gte);
        let upper = self.lt.or(self.lte);
        match (lower, upper) {
            (None, None) => Err("no bound at all".into()),
            (Some(l), Some(u)) if l >= u => Err(format!("empty interval {l}..{u}")),
            _ => Ok(()),
        }
    }
}

/// ACC/AHA 2017 blood-pressure category of an adult, least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Normal,
    Elevated,
    #[serde(rename = "stage_1")]
    Stage1,
    #[serde(rename = "stage_2")]
    Stage2,
    HypertensiveCrisis,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Normal,
        Category::Elevated,
        Category::Stage1,
        Category::Stage2,
        Category::HypertensiveCrisis,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Normal => "normal",
            Category::Elevated => "elevated",
            Category::Stage1 => "stage_1",
            Category::Stage2 => "stage_2",
            Category::HypertensiveCrisis => "hypertensive_crisis",
        }
    }
}

/// How a category's systolic and diastolic conditions combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Both values must be in range.
    And,
    /// Either value in range is enough.
    Or,
}

/// One blood-pressure category with its published thresholds in mm Hg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BpCategoryRecord {
    pub category: Category,
    pub label: String,
    /// Severity, 0 for normal; categories are tried from the highest down.
    pub rank: u8,
    pub systolic: Bounds,
    pub diastolic: Bounds,
    pub combine: Combine,
    /// The rule as the source words it.
    pub published: String,
}

impl BpCategoryRecord {
    fn matches(&self, systolic: f64, diastolic: f64) -> bool {
        let s = self.systolic.contains(systolic);
        let d = self.diastolic.contains(diastolic);
        match self.combine {
            Combine::And => s && d,
            Combine::Or => s || d,
        }
    }
}

/// A normal range of one metric for one age group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VitalRangeRecord {
    /// Metric code from the catalog (`GET /v1/metrics`).
    pub metric: String,
    pub age_group: String,
    /// First day of age the range applies to.
    pub age_from_days: i64,
    /// First day of age it no longer applies to; null for no upper limit.
    pub age_to_days: Option<i64>,
    /// Lower limit, inclusive (awake, for heart rate).
    pub min: f64,
    /// Upper limit, inclusive (awake, for heart rate).
    pub max: f64,
    pub asleep_min: Option<f64>,
    pub asleep_max: Option<f64>,
    /// The metric's canonical UCUM unit.
    pub unit: String,
    /// `id` of the entry in the dataset's `sources`.
    pub source: String,
}

impl VitalRangeRecord {
    fn covers(&self, age_days: i64) -> bool {
        age_days >= self.age_from_days && self.age_to_days.is_none_or(|to| age_days < to)
    }
}

/// A normal range, inclusive at both ends, in the metric's canonical unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl Range {
    pub fn contains(&self, v: f64) -> bool {
        v >= self.min && v <= self.max
    }
}

/// Body-temperature class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Below 35.0 °C.
    Hypothermia,
    Normal,
    /// 38.0 °C or more.
    Fever,
    /// 38.0 °C or more in an infant younger than 3 months: high risk.
    #[serde(rename = "fever_under_3_months")]
    FeverUnder3Months,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Hypothermia => "hypothermia",
            Class::Normal => "normal",
            Class::Fever => "fever",
            Class::FeverUnder3Months => "fever_under_3_months",
        }
    }
}

/// One temperature rule; the first rule matching both temperature and age
/// gives the class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TemperatureRule {
    pub class: Class,
    pub label: String,
    /// Degrees Celsius.
    pub celsius: Bounds,
    /// First day of age the rule applies to; null from birth.
    pub age_from_days: Option<i64>,
    /// First day of age it no longer applies to; null for no upper limit.
    pub age_to_days: Option<i64>,
    pub source: String,
    /// The threshold as the source words it.
    pub published: String,
}

impl TemperatureRule {
    fn matches(&self, celsius: f64, age_days: i64) -> bool {
        self.celsius.contains(celsius)
            && self.age_from_days.is_none_or(|from| age_days >= from)
            && self.age_to_days.is_none_or(|to| age_days < to)
    }
}

/// How far a category is from normal, as the platform reads the source's
/// grade (a NEWS2 score, a traffic-light colour, a hypoglycaemia level):
/// the thresholds come from the source, this reading of them does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Normal,
    Mild,
    Moderate,
    Severe,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "normal",
            Severity::Mild => "mild",
            Severity::Moderate => "moderate",
            Severity::Severe => "severe",
        }
    }
}

/// One band of values of a metric for an age range, with the category it
/// gives and the exact row of the source it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BandRecord {
    /// Metric code from the catalog (`GET /v1/metrics`).
    pub metric: String,
    /// Component code for a metric with components (`systolic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// First day of age the band applies to.
    pub age_from_days: i64,
    /// First day of age it no longer applies to; null for no upper limit.
    pub age_to_days: Option<i64>,
    /// The values of the band, in the metric's canonical unit.
    pub value: Bounds,
    /// The category a value in the band belongs to (`normal`,
    /// `far_above_range`, `hypoglycaemia_level_2`...).
    pub category: String,
    pub severity: Severity,
    /// The score the source gives the band (NEWS2), if it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    /// The metric's canonical UCUM unit.
    pub unit: String,
    /// `id` of the entry in the dataset's `sources`.
    pub source: String,
    /// The table, chart or section of the source.
    pub table: String,
    /// The row of that table, as the source words it.
    pub row: String,
}

impl BandRecord {
    /// Whether the band applies at `age_days`.
    pub fn covers(&self, age_days: i64) -> bool {
        age_days >= self.age_from_days && self.age_to_days.is_none_or(|to| age_days < to)
    }
}

/// Centiles of a metric in healthy children of one age band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CentileRecord {
    pub metric: String,
    pub age_group: String,
    pub age_from_days: i64,
    /// Exclusive; null for no upper limit.
    pub age_to_days: Option<i64>,
    pub p1: f64,
    pub p10: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
    pub unit: String,
    pub source: String,
    /// The table or chart of the source.
    pub table: String,
}

impl CentileRecord {
    fn covers(&self, age_days: i64) -> bool {
        age_days >= self.age_from_days && self.age_to_days.is_none_or(|to| age_days < to)
    }

    /// The centiles in increasing order, with their names.
    pub fn ladder(&self) -> [(&'static str, f64); 7] {
        [
            ("1st", self.p1),
            ("10th", self.p10),
            ("25th", self.p25),
            ("50th", self.p50),
            ("75th", self.p75),
            ("90th", self.p90),
            ("99th", self.p99),
        ]
    }
}

/// The records of one dataset, as served.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Records {
    BloodPressure(Vec<BpCategoryRecord>),
    VitalRanges(Vec<VitalRangeRecord>),
    Temperature(Vec<TemperatureRule>),
    Bands(Vec<BandRecord>),
    Centiles(Vec<CentileRecord>),
}

impl Records {
    pub fn len(&self) -> usize {
        match self {
            Records::BloodPressure(r) => r.len(),
            Records::VitalRanges(r) => r.len(),
            Records::Temperature(r) => r.len(),
            Records::Bands(r) => r.len(),
            Records::Centiles(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every dataset, parsed and checked.
struct Catalog {
    blood_pressure: Dataset<BpCategoryRecord>,
    vital_ranges: Dataset<VitalRangeRecord>,
    temperature: Dataset<TemperatureRule>,
    news2: Dataset<BandRecord>,
    ng143: Dataset<BandRecord>,
    glucose: Dataset<BandRecord>,
    centiles: Dataset<CentileRecord>,
}

/// Parsed on first use. The files are compiled in and checked by the unit
/// tests, so a failure here is a build that skipped them; the lookups then
/// answer from empty datasets rather than take the server down.
static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    load().unwrap_or_else(|_| Catalog {
        blood_pressure: empty(),
        vital_ranges: empty(),
        temperature: empty(),
        news2: empty(),
        ng143: empty(),
        glucose: empty(),
        centiles: empty(),
    })
});

fn empty<R>() -> Dataset<R> {
    Dataset {
        meta: Meta {
            name: String::new(),
            title: String::new(),
            description: String::new(),
            version: String::new(),
            sources: Vec::new(),
            notes: String::new(),
        },
        records: Vec::new(),
    }
}

fn load() -> Result<Catalog, String> {
    Ok(Catalog {
        blood_pressure: parse_blood_pressure(BLOOD_PRESSURE_JSON)?,
        vital_ranges: parse_vital_ranges(VITAL_RANGES_JSON)?,
        temperature: parse_temperature(TEMPERATURE_JSON)?,
        news2: parse_bands(NEWS2_JSON, true)?,
        ng143: parse_bands(NG143_JSON, false)?,
        glucose: parse_bands(GLUCOSE_JSON, true)?,
        centiles: parse_centiles(CENTILES_JSON)?,
    })
}

fn parse<R: serde::de::DeserializeOwned>(json: &str) -> Result<Dataset<R>, String> {
    let d: Dataset<R> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let m = &d.meta;
    for (field, value) in [
        ("name", &m.name),
        ("title", &m.title),
        ("description", &m.description),
        ("version", &m.version),
    ] {
        if value.trim().is_empty() {
            return Err(format!("{field} is empty"));
        }
    }
    if m.sources.is_empty() {
        return Err(format!("{}: no source", m.name));
    }
    for (i, s) in m.sources.iter().enumerate() {
        if m.sources[..i].iter().any(|o| o.id == s.id) {
            return Err(format!("{}: source {} listed twice", m.name, s.id));
        }
        if s.title.is_empty() || s.publisher.is_empty() || s.citation.is_empty() || s.licence.is_empty() {
            return Err(format!("{}: source {} is incomplete", m.name, s.id));
        }
    }
    if d.records.is_empty() {
        return Err(format!("{}: no records", m.name));
    }
    Ok(d)
}

fn check_source(meta: &Meta, source: &str) -> Result<(), String> {
    if meta.sources.iter().any(|s| s.id == source) {
        Ok(())
    } else {
        Err(format!("{}: unknown source {source}", meta.name))
    }
}

fn parse_blood_pressure(json: &str) -> Result<Dataset<BpCategoryRecord>, String> {
    let mut d = parse::<BpCategoryRecord>(json)?;
    for c in Category::ALL {
        let n = d.records.iter().filter(|r| r.category == c).count();
        if n != 1 {
            return Err(format!("category {} appears {n} times", c.as_str()));
        }
    }
    for r in &d.records {
        if usize::from(r.rank)
            != Category::ALL
                .iter()
                .position(|c| *c == r.category)
                .unwrap_or(usize::MAX)
        {
            return Err(format!(
                "category {}: rank does not follow severity",
                r.category.as_str()
            ));
        }
        r.systolic
            .check()
            .map_err(|e| format!("{} systolic: {e}", r.category.as_str()))?;
        r.diastolic
            .check()
            .map_err(|e| format!("{} diastolic: {e}", r.category.as_str()))?;
    }
    // Most severe first: the order `bp_category` tries them in.
    d.records.sort_by_key(|r| std::cmp::Reverse(r.rank));
    Ok(d)
}

fn parse_vital_ranges(json: &str) -> Result<Dataset<VitalRangeRecord>, String> {
    let d = parse::<VitalRangeRecord>(json)?;
    for r in &d.records {
        let at = format!("{} {}", r.metric, r.age_group);
        let def = metrics::find(&r.metric).ok_or_else(|| format!("{at}: metric not in the catalog"))?;
        if def.unit != r.unit {
            return Err(format!("{at}: unit {} is not the catalog's {}", r.unit, def.unit));
        }
        check_source(&d.meta, &r.source)?;
        if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max) {
            return Err(format!("{at}: min must not exceed max"));
        }
        match (r.asleep_min, r.asleep_max) {
            (None, None) => {}
            (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() && lo <= hi => {}
            _ => return Err(format!("{at}: asleep range incomplete or empty")),
        }
        if r.age_from_days < 0 || r.age_to_days.is_some_and(|to| to <= r.age_from_days) {
            return Err(format!("{at}: empty age band"));
        }
    }
    // Each metric's bands follow one another without gap or overlap, and the
    // last is open-ended, so an age finds at most one range and every age
    // from the first band on finds one.
    let mut seen: Vec<&str> = Vec::new();
    for r in &d.records {
        if seen.contains(&r.metric.as_str()) {
            continue;
        }
        seen.push(&r.metric);
        let bands: Vec<&VitalRangeRecord> = d.records.iter().filter(|o| o.metric == r.metric).collect();
        for pair in bands.windows(2) {
            if pair[0].age_to_days != Some(pair[1].age_from_days) {
                return Err(format!(
                    "{}: bands {} and {} do not meet",
                    r.metric, pair[0].age_group, pair[1].age_group
                ));
            }
        }
        if bands.last().is_some_and(|b| b.age_to_days.is_some()) {
            return Err(format!("{}: the last band must be open-ended", r.metric));
        }
    }
    Ok(d)
}

fn parse_temperature(json: &str) -> Result<Dataset<TemperatureRule>, String> {
    let d = parse::<TemperatureRule>(json)?;
    for r in &d.records {
        r.celsius.check().map_err(|e| format!("{}: {e}", r.class.as_str()))?;
        check_source(&d.meta, &r.source)?;
        if let (Some(from), Some(to)) = (r.age_from_days, r.age_to_days)
            && to <= from
        {
            return Err(format!("{}: empty age band", r.class.as_str()));
        }
    }
    // Every temperature at every age must find a class; probing both sides
    // of each threshold in the file, at both sides of each age limit, shows
    // whether the rules leave a hole.
    let mut probes = vec![-50.0, 100.0];
    let mut ages = vec![-1, 0, 100_000];
    for r in &d.records {
        for b in [r.celsius.gt, r.celsius.gte, r.celsius.lt, r.celsius.lte]
            .into_iter()
            .flatten()
        {
            probes.extend([b - 0.01, b, b + 0.01]);
        }
        for a in [r.age_from_days, r.age_to_days].into_iter().flatten() {
            ages.extend([a - 1, a]);
        }
    }
    for age in ages {
        for &t in &probes {
            if !d.records.iter().any(|r| r.matches(t, age)) {
                return Err(format!("no rule for {t} C at {age} days"));
            }
        }
    }
    Ok(d)
}

/// A dataset of bands. With `partition`, the bands of each metric,
/// component and age range follow one another in the file from the lowest
/// values up, without gap or overlap and open at both ends, so every value
/// finds exactly one band. Without it, each band is a refinement that is
/// open upwards (a fever row that applies from a threshold on).
fn parse_bands(json: &str, partition: bool) -> Result<Dataset<BandRecord>, String> {
    let d = parse::<BandRecord>(json)?;
    for r in &d.records {
        let at = format!("{} {} {}", r.metric, r.component.as_deref().unwrap_or(""), r.row);
        let def = metrics::find(&r.metric).ok_or_else(|| format!("{at}: metric not in the catalog"))?;
        if def.unit != r.unit {
            return Err(format!("{at}: unit {} is not the catalog's {}", r.unit, def.unit));
        }
        let components: Vec<&str> = def.components.iter().map(|c| c.code).collect();
        match &r.component {
            None if components.is_empty() => {}
            Some(c) if components.contains(&c.as_str()) => {}
            _ => return Err(format!("{at}: component does not match the catalog")),
        }
        check_source(&d.meta, &r.source)?;
        if r.table.trim().is_empty() || r.row.trim().is_empty() || r.category.trim().is_empty() {
            return Err(format!("{at}: table, row or category missing"));
        }
        if r.age_from_days < 0 || r.age_to_days.is_some_and(|to| to <= r.age_from_days) {
            return Err(format!("{at}: empty age band"));
        }
        if (r.category == "normal") != (r.severity == Severity::Normal) {
            return Err(format!("{at}: only the normal band has severity normal"));
        }
        if !partition && (r.value.upper().is_some() || r.value.lower().is_none()) {
            return Err(format!("{at}: a refinement band must be open upwards"));
        }
        if r.value.lower().is_none() && r.value.upper().is_none() {
            return Err(format!("{at}: no bound at all"));
        }
        r.value.check().map_err(|e| format!("{at}: {e}"))?;
    }
    if partition {
        let mut groups: Vec<Vec<&BandRecord>> = Vec::new();
        for r in &d.records {
            let key = |o: &BandRecord| (o.metric.clone(), o.component.clone(), o.age_from_days, o.age_to_days);
            match groups.iter_mut().find(|g| key(g[0]) == key(r)) {
                Some(g) => g.push(r),
                None => groups.push(vec![r]),
            }
        }
        for g in groups {
            let name = format!("{} {}", g[0].metric, g[0].component.as_deref().unwrap_or(""));
            if g[0].value.lower().is_some() || g[g.len() - 1].value.upper().is_some() {
                return Err(format!("{name}: the first and last bands must be open-ended"));
            }
            for pair in g.windows(2) {
                let meet = match (pair[0].value.upper(), pair[1].value.lower()) {
                    (Some((a, inc_a)), Some((b, inc_b))) => a == b && inc_a != inc_b,
                    _ => false,
                };
                if !meet {
                    return Err(format!("{name}: rows {} and {} do not meet", pair[0].row, pair[1].row));
                }
            }
            if g.iter().filter(|r| r.category == "normal").count() != 1 {
                return Err(format!("{name}: exactly one normal band"));
            }
        }
    }
    Ok(d)
}

fn parse_centiles(json: &str) -> Result<Dataset<CentileRecord>, String> {
    let d = parse::<CentileRecord>(json)?;
    for r in &d.records {
        let at = format!("{} {}", r.metric, r.age_group);
        let def = metrics::find(&r.metric).ok_or_else(|| format!("{at}: metric not in the catalog"))?;
        if def.unit != r.unit {
            return Err(format!("{at}: unit {} is not the catalog's {}", r.unit, def.unit));
        }
        check_source(&d.meta, &r.source)?;
        if !r.ladder().windows(2).all(|w| w[0].1.is_finite() && w[0].1 <= w[1].1) {
            return Err(format!("{at}: centiles must increase"));
        }
        if r.age_from_days < 0 || r.age_to_days.is_some_and(|to| to <= r.age_from_days) {
            return Err(format!("{at}: empty age band"));
        }
    }
    for metric in ["heart_rate", "respiratory_rate"] {
        let bands: Vec<&CentileRecord> = d.records.iter().filter(|r| r.metric == metric).collect();
        if bands.first().is_none_or(|b| b.age_from_days != 0) {
            return Err(format!("{metric}: the centiles must start at birth"));
        }
        for pair in bands.windows(2) {
            if pair[0].age_to_days != Some(pair[1].age_from_days) {
                return Err(format!(
                    "{metric}: bands {} and {} do not meet",
                    pair[0].age_group, pair[1].age_group
                ));
            }
        }
    }
    Ok(d)
}

/// The ACC/AHA 2017 category of an adult reading (mm Hg): the most severe
/// category whose rule matches, which is the higher of the categories the
/// two values reach on their own. A non-finite value matches no threshold,
/// so the other value decides; stored readings are always finite.
pub fn bp_category(systolic: f64, diastolic: f64) -> Category {
    let systolic = if systolic.is_finite() { systolic } else { 0.0 };
    let diastolic = if diastolic.is_finite() { diastolic } else { 0.0 };
    CATALOG
        .blood_pressure
        .records
        .iter()
        .find(|r| r.matches(systolic, diastolic))
        .map_or(Category::Normal, |r| r.category)
}

/// The published normal range of `metric` (a catalog code) at `age_days`
/// days of age (awake, for heart rate); `None` when the dataset has none for
/// that metric and age (neonatal SpO2, a negative age, another metric).
pub fn vital_range(metric: &str, age_days: i64) -> Option<Range> {
    vital_record(metric, age_days).map(|r| Range { min: r.min, max: r.max })
}

/// The whole record behind [`vital_range`], with its age group, asleep
/// range and source.
pub fn vital_record(metric: &str, age_days: i64) -> Option<&'static VitalRangeRecord> {
    CATALOG
        .vital_ranges
        .records
        .iter()
        .find(|r| r.metric == metric && r.covers(age_days))
}

/// The class of a body temperature (°C) at `age_days` days of age: the
/// first rule that matches. A non-finite temperature is `Normal`: it
/// crosses no threshold, and stored readings are always finite.
pub fn temperature_class(celsius: f64, age_days: i64) -> Class {
    if !celsius.is_finite() {
        return Class::Normal;
    }
    CATALOG
        .temperature
        .records
        .iter()
        .find(|r| r.matches(celsius, age_days))
        .map_or(Class::Normal, |r| r.class)
}

/// The NEWS2 bands (adults) of `metric` and `component` at `age_days`,
/// lowest values first.
pub fn news2_bands(metric: &str, component: Option<&str>, age_days: i64) -> Vec<&'static BandRecord> {
    bands_of(&CATALOG.news2, metric, component, age_days)
}

/// The ADA glucose bands at `age_days`, lowest values first.
pub fn glucose_bands(age_days: i64) -> Vec<&'static BandRecord> {
    bands_of(&CATALOG.glucose, "blood_glucose", None, age_days)
}

/// The NICE NG143 temperature refinements that apply at `age_days`.
pub fn ng143_bands(age_days: i64) -> Vec<&'static BandRecord> {
    bands_of(&CATALOG.ng143, "body_temperature", None, age_days)
}

fn bands_of(
    d: &'static Dataset<BandRecord>,
    metric: &str,
    component: Option<&str>,
    age_days: i64,
) -> Vec<&'static BandRecord> {
    d.records
        .iter()
        .filter(|r| r.metric == metric && r.component.as_deref() == component && r.covers(age_days))
        .collect()
}

/// The Fleming 2011 centiles of `metric` at `age_days`, if the review
/// covers that age.
pub fn centiles(metric: &str, age_days: i64) -> Option<&'static CentileRecord> {
    CATALOG
        .centiles
        .records
        .iter()
        .find(|r| r.metric == metric && r.covers(age_days))
}

/// The rules of the temperature dataset, in the file's order.
pub fn temperature_rules() -> &'static [TemperatureRule] {
    &CATALOG.temperature.records
}

/// The category records of the blood-pressure dataset, most severe first.
pub fn bp_records() -> &'static [BpCategoryRecord] {
    &CATALOG.blood_pressure.records
}

/// The source `id` of dataset `name`, with its entry.
pub fn source(name: &str, id: &str) -> Option<&'static Source> {
    let c = &*CATALOG;
    let meta = [
        &c.blood_pressure.meta,
        &c.vital_ranges.meta,
        &c.temperature.meta,
        &c.news2.meta,
        &c.ng143.meta,
        &c.glucose.meta,
        &c.centiles.meta,
    ]
    .into_iter()
    .find(|m| m.name == name)?;
    meta.sources.iter().find(|s| s.id == id)
}

/// Names of the datasets, in the order they are listed.
pub const NAMES: [&str; 7] = [
    "blood-pressure-categories",
    "vital-sign-ranges",
    "temperature-thresholds",
    "news2-chart-1",
    "nice-ng143-traffic-light",
    "ada-glycaemic-thresholds",
    "paediatric-vital-centiles",
];

/// The description and records of the dataset called `name`.
pub fn find(name: &str) -> Option<(&'static Meta, Records)> {
    let c = &*CATALOG;
    if name == c.blood_pressure.meta.name {
        let mut records = c.blood_pressure.records.clone();
        // Served in the file's order, least severe first.
        records.sort_by_key(|r| r.rank);
        Some((&c.blood_pressure.meta, Records::BloodPressure(records)))
    } else if name == c.vital_ranges.meta.name {
        Some((
            &c.vital_ranges.meta,
            Records::VitalRanges(c.vital_ranges.records.clone()),
        ))
    } else if name == c.temperature.meta.name {
        Some((&c.temperature.meta, Records::Temperature(c.temperature.records.clone())))
    } else if name == c.news2.meta.name {
        Some((&c.news2.meta, Records::Bands(c.news2.records.clone())))
    } else if name == c.ng143.meta.name {
        Some((&c.ng143.meta, Records::Bands(c.ng143.records.clone())))
    } else if name == c.glucose.meta.name {
        Some((&c.glucose.meta, Records::Bands(c.glucose.records.clone())))
    } else if name == c.centiles.meta.name {
        Some((&c.centiles.meta, Records::Centiles(c.centiles.records.clone())))
    } else {
        None
    }
}

/// Every dataset with its record count, in [`NAMES`] order.
pub fn list() -> Vec<(&'static Meta, usize)> {
    NAMES
        .iter()
        .filter_map(|n| find(n).map(|(meta, records)| (meta, records.len())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guideline's rule written out independently of the data file: each
    /// value's own category, and the higher of the two.
    fn reference(s: f64, d: f64) -> Category {
        let by_s = if s > 180.0 {
            Category::HypertensiveCrisis
        } else if s >= 140.0 {
            Category::Stage2
        } else if s >= 130.0 {
            Category::Stage1
        } else if s >= 120.0 {
            Category::Elevated
        } else {
            Category::Normal
        };
        let by_d = if d > 120.0 {
            Category::HypertensiveCrisis
        } else if d >= 90.0 {
            Category::Stage2
        } else if d >= 80.0 {
            Category::Stage1
        } else {
            Category::Normal
        };
        by_s.max(by_d)
    }

    #[test]
    fn every_file_loads() {
        load().unwrap();
        assert_eq!(list().len(), NAMES.len());
        for name in NAMES {
            let (meta, records) = find(name).unwrap();
            assert_eq!(meta.name, name);
            assert!(!records.is_empty());
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn bp_boundaries() {
        use Category::*;
        let cases = [
            (119.0, 79.0, Normal),
            (0.0, 0.0, Normal),
            (120.0, 79.0, Elevated),
            (129.0, 79.0, Elevated),
            (129.9, 79.9, Elevated),
            (120.0, 80.0, Stage1),
            (119.0, 80.0, Stage1),
            (130.0, 79.0, Stage1),
            (139.0, 89.0, Stage1),
            (110.0, 89.0, Stage1),
            (140.0, 70.0, Stage2),
            (139.0, 90.0, Stage2),
            (100.0, 90.0, Stage2),
            (180.0, 120.0, Stage2),
            (181.0, 80.0, HypertensiveCrisis),
            (180.1, 60.0, HypertensiveCrisis),
            (150.0, 121.0, HypertensiveCrisis),
            (110.0, 120.5, HypertensiveCrisis),
            (200.0, 130.0, HypertensiveCrisis),
        ];
        for (s, d, want) in cases {
            assert_eq!(bp_category(s, d), want, "{s}/{d}");
        }
    }

    #[test]
    fn bp_matches_the_rule_everywhere() {
        for s10 in 0..=3000 {
            for d in 0..=200 {
                let s = f64::from(s10) / 10.0;
                let d = f64::from(d);
                assert_eq!(bp_category(s, d), reference(s, d), "{s}/{d}");
            }
        }
        for d10 in 0..=2000 {
            let d = f64::from(d10) / 10.0;
            for s in [90.0, 125.0, 135.0, 150.0, 185.0] {
                assert_eq!(bp_category(s, d), reference(s, d), "{s}/{d}");
            }
        }
    }

    #[test]
    fn bp_non_finite_values_do_not_decide() {
        assert_eq!(bp_category(f64::NAN, 95.0), Category::Stage2);
        assert_eq!(bp_category(125.0, f64::INFINITY), Category::Elevated);
    }

    #[test]
    fn vital_ranges_by_age() {
        let hr = |age| vital_range("heart_rate", age).map(|r| (r.min, r.max));
        assert_eq!(hr(0), Some((100.0, 205.0)));
        assert_eq!(hr(27), Some((100.0, 205.0)));
        assert_eq!(hr(28), Some((100.0, 180.0)));
        assert_eq!(hr(364), Some((100.0, 180.0)));
        assert_eq!(hr(365), Some((98.0, 140.0)));
        assert_eq!(hr(1096), Some((80.0, 120.0)));
        assert_eq!(hr(2192), Some((75.0, 118.0)));
        assert_eq!(hr(4383), Some((60.0, 100.0)));
        assert_eq!(hr(5844), Some((51.0, 90.0)));
        assert_eq!(hr(40_000), Some((51.0, 90.0)));
        assert_eq!(hr(-1), None);
        let rr = |age| vital_range("respiratory_rate", age).map(|r| (r.min, r.max));
        assert_eq!(rr(0), Some((30.0, 53.0)));
        assert_eq!(rr(400), Some((22.0, 37.0)));
        assert_eq!(rr(2000), Some((20.0, 28.0)));
        assert_eq!(rr(3000), Some((18.0, 25.0)));
        assert_eq!(rr(5000), Some((12.0, 20.0)));
        assert_eq!(rr(20_000), Some((12.0, 20.0)));
        assert_eq!(vital_range("spo2", 10), None);
        assert_eq!(vital_range("spo2", 28).map(|r| r.min), Some(90.0));
        assert_eq!(vital_range("spo2", 5843).map(|r| r.min), Some(90.0));
        assert_eq!(vital_range("spo2", 5844).map(|r| (r.min, r.max)), Some((96.0, 100.0)));
        assert_eq!(vital_range("blood_glucose", 5844), None);
        assert_eq!(vital_range("nope", 5844), None);
        let r = vital_record("heart_rate", 100).unwrap();
        assert_eq!((r.asleep_min, r.asleep_max), (Some(90.0), Some(160.0)));
        assert_eq!(r.age_group, "infant");
        assert!(vital_range("heart_rate", 30).unwrap().contains(180.0));
        assert!(!vital_range("heart_rate", 30).unwrap().contains(180.5));
    }

    #[test]
    fn every_age_has_a_heart_and_respiratory_rate() {
        for age in 0..40_000 {
            assert!(vital_range("heart_rate", age).is_some(), "{age}");
            assert!(vital_range("respiratory_rate", age).is_some(), "{age}");
            assert_eq!(vital_range("spo2", age).is_some(), age >= 28, "{age}");
        }
    }

    #[test]
    fn temperature_boundaries() {
        use Class::*;
        let cases = [
            (34.9, 10_000, Hypothermia),
            (34.99, 0, Hypothermia),
            (35.0, 10_000, Normal),
            (37.9, 10_000, Normal),
            (37.99, 30, Normal),
            (38.0, 10_000, Fever),
            (41.5, 10_000, Fever),
            (38.0, 0, FeverUnder3Months),
            (38.0, 90, FeverUnder3Months),
            (39.5, 45, FeverUnder3Months),
            (38.0, 91, Fever),
            (34.0, 30, Hypothermia),
            (36.8, 30, Normal),
            (f64::NAN, 30, Normal),
        ];
        for (t, age, want) in cases {
            assert_eq!(temperature_class(t, age), want, "{t} C at {age} days");
        }
        for age in [-5, 0, 90, 91, 5000] {
            for t10 in 200..=450 {
                let t = f64::from(t10) / 10.0;
                let want = if t < 35.0 {
                    Hypothermia
                } else if t < 38.0 {
                    Normal
                } else if (0..91).contains(&age) {
                    FeverUnder3Months
                } else {
                    Fever
                };
                assert_eq!(temperature_class(t, age), want, "{t} C at {age} days");
            }
        }
    }

    #[test]
    fn broken_files_are_refused() {
        let bp: serde_json::Value = serde_json::from_str(BLOOD_PRESSURE_JSON).unwrap();
        let mut missing = bp.clone();
        missing["records"].as_array_mut().unwrap().remove(1);
        assert!(
            parse_blood_pressure(&missing.to_string())
                .unwrap_err()
                .contains("elevated")
        );
        let mut bad_bound = bp.clone();
        bad_bound["records"][0]["systolic"] = serde_json::json!({"gte": 130, "lt": 120});
        assert!(parse_blood_pressure(&bad_bound.to_string()).is_err());
        let mut unknown_field = bp;
        unknown_field["records"][0]["colour"] = serde_json::json!("green");
        assert!(parse_blood_pressure(&unknown_field.to_string()).is_err());

        let vr: serde_json::Value = serde_json::from_str(VITAL_RANGES_JSON).unwrap();
        let mut gap = vr.clone();
        gap["records"][1]["age_from_days"] = serde_json::json!(30);
        assert!(
            parse_vital_ranges(&gap.to_string())
                .unwrap_err()
                .contains("do not meet")
        );
        let mut unit = vr.clone();
        unit["records"][0]["unit"] = serde_json::json!("Hz");
        assert!(parse_vital_ranges(&unit.to_string()).is_err());
        let mut source = vr;
        source["records"][0]["source"] = serde_json::json!("somebody");
        assert!(
            parse_vital_ranges(&source.to_string())
                .unwrap_err()
                .contains("unknown source")
        );

        let t: serde_json::Value = serde_json::from_str(TEMPERATURE_JSON).unwrap();
        let mut no_normal = t;
        no_normal["records"].as_array_mut().unwrap().pop();
        assert!(parse_temperature(&no_normal.to_string()).is_err());
    }

    #[test]
    fn broken_band_files_are_refused() {
        let news2: serde_json::Value = serde_json::from_str(NEWS2_JSON).unwrap();
        let mut gap = news2.clone();
        gap["records"][1]["value"] = serde_json::json!({"gte": 10, "lt": 12});
        assert!(parse_bands(&gap.to_string(), true).unwrap_err().contains("do not meet"));
        let mut overlap = news2.clone();
        overlap["records"][1]["value"] = serde_json::json!({"gt": 9, "lt": 12});
        assert!(
            parse_bands(&overlap.to_string(), true)
                .unwrap_err()
                .contains("do not meet")
        );
        let mut closed = news2.clone();
        closed["records"][0]["value"] = serde_json::json!({"gte": 0, "lt": 9});
        assert!(
            parse_bands(&closed.to_string(), true)
                .unwrap_err()
                .contains("open-ended")
        );
        let mut two_normal = news2.clone();
        two_normal["records"][1]["category"] = serde_json::json!("normal");
        assert!(parse_bands(&two_normal.to_string(), true).is_err());
        let mut unit = news2.clone();
        unit["records"][0]["unit"] = serde_json::json!("Hz");
        assert!(parse_bands(&unit.to_string(), true).unwrap_err().contains("unit"));
        let mut component = news2;
        component["records"][0]["component"] = serde_json::json!("systolic");
        assert!(
            parse_bands(&component.to_string(), true)
                .unwrap_err()
                .contains("component")
        );
        let ng: serde_json::Value = serde_json::from_str(NG143_JSON).unwrap();
        let mut bounded = ng;
        bounded["records"][0]["value"] = serde_json::json!({"gte": 38, "lt": 42});
        assert!(
            parse_bands(&bounded.to_string(), false)
                .unwrap_err()
                .contains("open upwards")
        );
        let c: serde_json::Value = serde_json::from_str(CENTILES_JSON).unwrap();
        let mut falling = c.clone();
        falling["records"][0]["p99"] = serde_json::json!(100);
        assert!(parse_centiles(&falling.to_string()).unwrap_err().contains("increase"));
        let mut hole = c;
        hole["records"][1]["age_from_days"] = serde_json::json!(100);
        assert!(parse_centiles(&hole.to_string()).unwrap_err().contains("do not meet"));
    }

    #[test]
    fn the_norms_lookups_find_their_bands() {
        assert_eq!(news2_bands("heart_rate", None, 5844).len(), 6);
        assert_eq!(news2_bands("heart_rate", None, 5843).len(), 0);
        assert_eq!(news2_bands("blood_pressure", Some("systolic"), 30_000).len(), 5);
        assert_eq!(glucose_bands(0).len(), 5);
        assert_eq!(ng143_bands(90).len(), 1);
        assert_eq!(ng143_bands(183).len(), 0);
        assert_eq!(centiles("heart_rate", 48).map(|c| c.p50), Some(143.0));
        assert_eq!(centiles("heart_rate", 6575), None);
        assert!(source("news2-chart-1", "news2-2017").is_some());
        assert!(source("news2-chart-1", "nope").is_none());
    }

    #[test]
    fn every_source_is_complete_and_cited_by_a_record() {
        let c = load().unwrap();
        let metas = [
            &c.blood_pressure.meta,
            &c.vital_ranges.meta,
            &c.temperature.meta,
            &c.news2.meta,
            &c.ng143.meta,
            &c.glucose.meta,
            &c.centiles.meta,
        ];
        for meta in metas {
            assert!(meta.notes.contains("REVIEW REQUIRED"), "{}", meta.name);
            for s in &meta.sources {
                assert!(s.url.is_some() || !s.citation.is_empty(), "{}", s.id);
            }
        }
        for s in &c.vital_ranges.meta.sources {
            assert!(
                c.vital_ranges.records.iter().any(|r| r.source == s.id),
                "{} unused",
                s.id
            );
        }
        for s in &c.temperature.meta.sources {
            assert!(
                c.temperature.records.iter().any(|r| r.source == s.id),
                "{} unused",
                s.id
            );
        }
    }
}
