//! The catalog of vital-sign metrics vitalfarm accepts, and the one place that
//! decides whether a reading is plausible and how it is stored.
//!
//! HTTP ingest, MQTT ingest, device models and `GET /v1/metrics` all read this
//! table, so a device maker sees exactly the rules their readings are held to.
//! Readings are stored in each metric's canonical UCUM unit; an accepted
//! alternative unit is converted on the way in so that aggregates never mix
//! units.

use serde::{Deserialize, Serialize};

use crate::validation::ValidationErrors;

/// How a metric's readings are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// One number per reading, e.g. heart rate.
    Scalar,
    /// Several named numbers measured together, e.g. systolic and diastolic
    /// blood pressure.
    Components,
    /// A waveform kept as a file in the farm; never a numeric reading.
    Waveform,
}

impl MetricKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Components => "components",
            Self::Waveform => "waveform",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scalar" => Some(Self::Scalar),
            "components" => Some(Self::Components),
            "waveform" => Some(Self::Waveform),
            _ => None,
        }
    }
}

/// One named part of a [`MetricKind::Components`] metric. Each component is
/// stored as its own row, so it carries its own LOINC code and range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Component {
    pub code: &'static str,
    pub name: &'static str,
    pub loinc: &'static str,
    /// Canonical UCUM unit; always the owning metric's unit, because a
    /// reading carries a single `unit` for all its components.
    pub unit: &'static str,
    /// Plausible range in `unit`, inclusive.
    pub min: f64,
    pub max: f64,
    /// The code of a sibling component this one must be strictly below
    /// (diastolic below systolic); a reading breaking it is a mis-measurement
    /// or swapped fields, not a patient state.
    pub below: Option<&'static str>,
}

/// A unit accepted besides the canonical one, with an affine conversion:
/// `canonical = value * factor + offset`. Affine because °F → °C needs an
/// offset; every other conversion has `offset == 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitAlternative {
    pub unit: &'static str,
    pub factor: f64,
    pub offset: f64,
}

impl UnitAlternative {
    /// Converts a value given in this unit to the canonical unit.
    pub fn to_canonical(&self, value: f64) -> f64 {
        value * self.factor + self.offset
    }

    /// Converts a canonical value back to this unit, e.g. to display a chart
    /// in the unit a user prefers.
    pub fn from_canonical(&self, canonical: f64) -> f64 {
        (canonical - self.offset) / self.factor
    }
}

/// One entry of the catalog.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// Stable code used in readings, device models and URLs.
    pub code: &'static str,
    pub name: &'static str,
    /// LOINC code used for the FHIR `Observation.code`; for component metrics
    /// the panel code, each component having its own.
    pub loinc: &'static str,
    /// Canonical UCUM unit; readings are stored and served in it.
    pub unit: &'static str,
    pub kind: MetricKind,
    /// Plausible range in `unit`, inclusive. `None` for component metrics
    /// (each component has its own) and for waveforms.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Whether only whole numbers are meaningful (a count such as steps).
    pub integer: bool,
    pub alternatives: &'static [UnitAlternative],
    pub components: &'static [Component],
}

impl MetricDef {
    /// Whether readings of this metric may be ingested as numbers at all.
    pub fn accepts_readings(&self) -> bool {
        self.kind != MetricKind::Waveform
    }

    pub fn component(&self, code: &str) -> Option<&'static Component> {
        self.components.iter().find(|c| c.code == code)
    }

    pub fn alternative(&self, unit: &str) -> Option<&'static UnitAlternative> {
        self.alternatives.iter().find(|a| a.unit == unit)
    }

    /// The units a reading of this metric may carry: the canonical one first,
    /// then the alternatives. Empty for waveforms, which take no readings.
    pub fn accepted_units(&self) -> Vec<&'static str> {
        if !self.accepts_readings() {
            return Vec::new();
        }
        std::iter::once(self.unit)
            .chain(self.alternatives.iter().map(|a| a.unit))
            .collect()
    }
}

const MM_HG: &str = "mm[Hg]";

static CATALOG: [MetricDef; 9] = [
    MetricDef {
        code: "heart_rate",
        name: "Heart rate",
        loinc: "8867-4",
        unit: "/min",
        kind: MetricKind::Scalar,
        min: Some(20.0),
        max: Some(300.0),
        integer: false,
        alternatives: &[],
        components: &[],
    },
    MetricDef {
        code: "blood_pressure",
        name: "Blood pressure",
        // "Blood pressure panel with all children optional", the panel the
        // FHIR vital-signs profile uses.
        loinc: "85354-9",
        unit: MM_HG,
        kind: MetricKind::Components,
        min: None,
        max: None,
        integer: false,
        alternatives: &[],
        components: &[
            Component {
                code: "systolic",
                name: "Systolic blood pressure",
                loinc: "8480-6",
                unit: MM_HG,
                min: 40.0,
                max: 300.0,
                below: None,
            },
            Component {
                code: "diastolic",
                name: "Diastolic blood pressure",
                loinc: "8462-4",
                unit: MM_HG,
                min: 20.0,
                max: 200.0,
                below: Some("systolic"),
            },
        ],
    },
    MetricDef {
        code: "body_temperature",
        name: "Body temperature",
        loinc: "8310-5",
        unit: "Cel",
        kind: MetricKind::Scalar,
        min: Some(25.0),
        max: Some(45.0),
        integer: false,
        // °C = (°F − 32) × 5/9 = °F × 5/9 − 160/9.
        alternatives: &[UnitAlternative {
            unit: "[degF]",
            factor: 5.0 / 9.0,
            offset: -160.0 / 9.0,
        }],
        components: &[],
    },
    MetricDef {
        code: "spo2",
        name: "Oxygen saturation by pulse oximetry",
        // The pulse-oximetry code, since that is what devices measure; the
        // FHIR vital-signs profile pairs it with 2708-6 (arterial blood),
        // which the FHIR export can add.
        loinc: "59408-5",
        unit: "%",
        kind: MetricKind::Scalar,
        min: Some(50.0),
        max: Some(100.0),
        integer: false,
        alternatives: &[],
        components: &[],
    },
    MetricDef {
        code: "respiratory_rate",
        name: "Respiratory rate",
        loinc: "9279-1",
        unit: "/min",
        kind: MetricKind::Scalar,
        min: Some(2.0),
        max: Some(100.0),
        integer: false,
        alternatives: &[],
        components: &[],
    },
    MetricDef {
        code: "blood_glucose",
        name: "Blood glucose",
        // Glucose [Mass/volume] in Blood.
        loinc: "2339-0",
        unit: "mg/dL",
        kind: MetricKind::Scalar,
        min: Some(10.0),
        max: Some(1000.0),
        integer: false,
        // Molar mass of glucose 180.156 g/mol: 1 mmol/L = 18.0156 mg/dL.
        alternatives: &[UnitAlternative {
            unit: "mmol/L",
            factor: 18.0156,
            offset: 0.0,
        }],
        components: &[],
    },
    MetricDef {
        code: "body_weight",
        name: "Body weight",
        loinc: "29463-7",
        unit: "kg",
        kind: MetricKind::Scalar,
        min: Some(0.2),
        max: Some(700.0),
        integer: false,
        alternatives: &[
            // The international avoirdupois pound is defined as exactly
            // 0.45359237 kg.
            UnitAlternative {
                unit: "[lb_av]",
                factor: 0.453_592_37,
                offset: 0.0,
            },
            // Grams, for infant scales.
            UnitAlternative {
                unit: "g",
                factor: 0.001,
                offset: 0.0,
            },
        ],
        components: &[],
    },
    MetricDef {
        code: "steps",
        name: "Steps",
        // Number of steps in unspecified time Pedometer.
        loinc: "55423-8",
        unit: "{steps}",
        kind: MetricKind::Scalar,
        min: Some(0.0),
        max: Some(200_000.0),
        integer: true,
        alternatives: &[],
        components: &[],
    },
    MetricDef {
        code: "ecg",
        name: "Electrocardiogram",
        // "EKG study": a generic code for the recording itself. No LOINC code
        // fits a raw multi-lead waveform better (8601-7 is the interpretation,
        // not the trace), so this is a best fit to revisit if the FHIR export
        // moves to MDC codes.
        loinc: "11524-6",
        // The unit of the waveform's samples in the farm file; no reading is
        // ever stored in it.
        unit: "mV",
        kind: MetricKind::Waveform,
        min: None,
        max: None,
        integer: false,
        alternatives: &[],
        components: &[],
    },
];

/// Every metric vitalfarm knows, in a stable order (the order of the API
/// listing).
pub fn catalog() -> &'static [MetricDef] {
    &CATALOG
}

/// Looks a metric up by its code. Codes are case-sensitive, like the JSON
/// field values they come from.
pub fn find(code: &str) -> Option<&'static MetricDef> {
    CATALOG.iter().find(|m| m.code == code)
}

/// The earliest time a reading may carry: 2000-01-01T00:00:00Z. Earlier
/// times come from devices whose clock was never set (1970, the epoch, is
/// the usual one) far more often than from real measurements, and stored
/// they would sit in every history as a decades-long gap.
pub const EARLIEST_READING_MS: i64 = 946_684_800_000;

/// How far ahead of the server's clock a reading may be: device clocks
/// drift a little, never this much.
pub const FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// Why a reading's time is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("must be on or after 2000-01-01T00:00:00Z (is the device clock set?)")]
    TooEarly,
    #[error("must not be more than 5 minutes in the future")]
    InFuture,
}

/// The one bound on a reading's time, for every way readings arrive
/// (HTTP, MQTT, imports): between `EARLIEST_READING_MS` and a little past
/// `now_ms`.
pub fn check_reading_time(ts_ms: i64, now_ms: i64) -> Result<(), TimeError> {
    if ts_ms < EARLIEST_READING_MS {
        return Err(TimeError::TooEarly);
    }
    if ts_ms > now_ms.saturating_add(FUTURE_SKEW_MS) {
        return Err(TimeError::InFuture);
    }
    Ok(())
}

/// A validated reading in canonical units, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub metric: &'static MetricDef,
    /// The canonical unit the values are in.
    pub unit: &'static str,
    /// One `(component, value)` per stored row, in catalog order; the
    /// component is `""` for scalar metrics.
    pub values: Vec<(&'static str, f64)>,
}

impl Normalized {
    /// The value of a scalar metric; `None` for component metrics.
    pub fn scalar(&self) -> Option<f64> {
        match self.values.as_slice() {
            [("", v)] => Some(*v),
            _ => None,
        }
    }

    /// The value of one component, e.g. `systolic`.
    pub fn component(&self, code: &str) -> Option<f64> {
        self.values.iter().find(|(c, _)| *c == code).map(|(_, v)| *v)
    }
}

/// Longest piece of client input echoed back in an error message or field
/// path, so a hostile body cannot make the error response arbitrarily large.
const MAX_ECHO_CHARS: usize = 64;

fn echo(s: &str) -> String {
    if s.chars().count() <= MAX_ECHO_CHARS {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX_ECHO_CHARS).collect();
        out.push('…');
        out
    }
}

/// Formats a converted value for a message: conversions leave float noise
/// (50.00000000000001) that would only confuse a reader.
fn approx(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

fn known_codes() -> String {
    CATALOG.iter().map(|m| m.code).collect::<Vec<_>>().join(", ")
}

fn component_codes(metric: &MetricDef) -> String {
    metric.components.iter().map(|c| c.code).collect::<Vec<_>>().join(", ")
}

/// The unit a reading was sent in, as far as `normalize` is concerned.
enum Unit {
    Canonical,
    Alternative(&'static UnitAlternative),
    /// Refused: values can still be checked for shape and finiteness, but not
    /// against a range.
    Refused,
}

/// What one number is held to: its canonical unit and plausible range.
struct Limits<'a> {
    unit: &'a str,
    min: f64,
    max: f64,
    integer: bool,
}

/// Checks one number and converts it to the canonical unit. `None` when it
/// fails (the error is recorded) or when the unit is refused.
fn check_value(errors: &mut ValidationErrors, field: &str, raw: f64, unit: &Unit, limits: &Limits<'_>) -> Option<f64> {
    let Limits {
        unit: canonical_unit,
        min,
        max,
        integer,
    } = *limits;
    if !raw.is_finite() {
        errors.add(field, "must be a finite number");
        return None;
    }
    let (value, got) = match unit {
        Unit::Refused => return None,
        Unit::Canonical => (raw, format!("{raw} {canonical_unit}")),
        Unit::Alternative(alt) => {
            let v = alt.to_canonical(raw);
            (v, format!("{raw} {} = {} {canonical_unit}", alt.unit, approx(v)))
        }
    };
    // `!(a <= v)` rather than `v < a` so that an overflow to infinity from a
    // conversion lands here too.
    if !(min <= value && value <= max) {
        errors.add(
            field,
            format!("must be between {min} and {max} {canonical_unit} (got {got})"),
        );
        return None;
    }
    if integer && value.fract() != 0.0 {
        errors.add(field, format!("must be a whole number of {canonical_unit} (got {got})"));
        return None;
    }
    Some(value)
}

/// Validates a reading as sent (`metric`, then either `value` or
/// `components`, and an optional `unit`) and converts it to the canonical
/// unit. Every problem is reported at once, each under the field it concerns:
/// `metric`, `value`, `components`, `components.<code>` or `unit`.
///
/// An absent `unit` means the canonical one. The same `unit` applies to every
/// component.
pub fn normalize(
    metric: &str,
    value: Option<f64>,
    components: Option<&[(String, f64)]>,
    unit: Option<&str>,
) -> Result<Normalized, ValidationErrors> {
    let mut errors = ValidationErrors::new();

    let Some(def) = find(metric) else {
        errors.add(
            "metric",
            format!("unknown metric `{}`; known metrics: {}", echo(metric), known_codes()),
        );
        return Err(errors);
    };
    if def.kind == MetricKind::Waveform {
        errors.add(
            "metric",
            format!(
                "{} is a waveform, not a numeric reading: upload ECG waveforms to the farm \
                 (PUT /v1/farms/{{fid}}/files/{{path}}) and send derived heart rate as heart_rate",
                def.code
            ),
        );
        return Err(errors);
    }

    let unit = match unit {
        None => Unit::Canonical,
        Some(u) if u == def.unit => Unit::Canonical,
        Some(u) => match def.alternative(u) {
            Some(alt) => Unit::Alternative(alt),
            None => {
                errors.add(
                    "unit",
                    format!(
                        "unit `{}` is not accepted for {}; accepted units: {}",
                        echo(u),
                        def.code,
                        def.accepted_units().join(", ")
                    ),
                );
                Unit::Refused
            }
        },
    };

    let values = match def.kind {
        MetricKind::Components => normalize_components(&mut errors, def, value, components, &unit),
        // Waveforms were refused above; treating them as scalars here keeps
        // the match exhaustive without a panic path.
        MetricKind::Scalar | MetricKind::Waveform => normalize_scalar(&mut errors, def, value, components, &unit),
    };

    match values {
        Some(values) if errors.is_empty() => Ok(Normalized {
            metric: def,
            unit: def.unit,
            values,
        }),
        _ => Err(errors),
    }
}

fn normalize_scalar(
    errors: &mut ValidationErrors,
    def: &'static MetricDef,
    value: Option<f64>,
    components: Option<&[(String, f64)]>,
    unit: &Unit,
) -> Option<Vec<(&'static str, f64)>> {
    if components.is_some() {
        errors.add(
            "components",
            format!("{} takes a single `value`, not `components`", def.code),
        );
    }
    let Some(raw) = value else {
        errors.add("value", format!("{} needs a numeric `value`", def.code));
        return None;
    };
    // A scalar metric without a range would be a catalog bug; refusing the
    // reading is safer than storing an unchecked value.
    let (Some(min), Some(max)) = (def.min, def.max) else {
        errors.add("metric", format!("{} has no plausible range", def.code));
        return None;
    };
    let limits = Limits {
        unit: def.unit,
        min,
        max,
        integer: def.integer,
    };
    let v = check_value(errors, "value", raw, unit, &limits)?;
    Some(vec![("", v)])
}

fn normalize_components(
    errors: &mut ValidationErrors,
    def: &'static MetricDef,
    value: Option<f64>,
    components: Option<&[(String, f64)]>,
    unit: &Unit,
) -> Option<Vec<(&'static str, f64)>> {
    if value.is_some() {
        errors.add(
            "value",
            format!(
                "{} takes `components` ({}), not a single `value`",
                def.code,
                component_codes(def)
            ),
        );
    }
    let Some(given) = components else {
        errors.add(
            "components",
            format!("{} needs `components`: {}", def.code, component_codes(def)),
        );
        return None;
    };

    for (i, (name, _)) in given.iter().enumerate() {
        if def.component(name).is_none() {
            errors.add(
                format!("components.{}", echo(name)),
                format!(
                    "unknown component of {}; its components are {}",
                    def.code,
                    component_codes(def)
                ),
            );
        } else if given[..i].iter().any(|(earlier, _)| earlier == name) {
            errors.add(format!("components.{name}"), "given more than once");
        }
    }

    // Checked in catalog order, so stored rows and messages come out in the
    // same order whatever order the client sent.
    let mut values: Vec<(&'static str, f64)> = Vec::with_capacity(def.components.len());
    let mut complete = true;
    for c in def.components {
        let field = format!("components.{}", c.code);
        let Some((_, raw)) = given.iter().find(|(name, _)| name == c.code) else {
            errors.add(field, format!("required: {} needs {}", def.code, component_codes(def)));
            complete = false;
            continue;
        };
        let limits = Limits {
            unit: c.unit,
            min: c.min,
            max: c.max,
            integer: false,
        };
        match check_value(errors, &field, *raw, unit, &limits) {
            Some(v) => values.push((c.code, v)),
            None => complete = false,
        }
    }
    if !complete {
        return None;
    }

    for c in def.components {
        let Some(upper_code) = c.below else { continue };
        let lower = values.iter().find(|(code, _)| *code == c.code);
        let upper = values.iter().find(|(code, _)| *code == upper_code);
        if let (Some((_, lower)), Some((_, upper))) = (lower, upper)
            && lower >= upper
        {
            errors.add(
                format!("components.{}", c.code),
                format!(
                    "must be below {upper_code} (got {} {} with {upper_code} {} {})",
                    approx(*lower),
                    c.unit,
                    approx(*upper),
                    c.unit
                ),
            );
        }
    }
    Some(values)
}

/// A plausible range, inclusive, in the canonical unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RangeView {
    pub min: f64,
    pub max: f64,
}

/// A unit a reading may carry, with its conversion to the canonical unit:
/// `canonical = value * factor + offset` (factor 1, offset 0 for the canonical
/// unit itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnitView {
    /// UCUM unit code, e.g. `[degF]`.
    pub unit: String,
    pub factor: f64,
    pub offset: f64,
}

/// One part of a component metric, stored as its own row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComponentView {
    /// Key of the component in a reading's `components`, e.g. `systolic`.
    pub code: String,
    pub name: String,
    pub loinc: String,
    /// Canonical UCUM unit.
    pub unit: String,
    pub range: RangeView,
    /// The sibling component this one must be strictly below, if any.
    pub below: Option<String>,
}

/// A metric as listed by `GET /v1/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "code": "body_temperature",
    "name": "Body temperature",
    "loinc": "8310-5",
    "unit": "Cel",
    "kind": "scalar",
    "range": {"min": 25.0, "max": 45.0},
    "integer": false,
    "accepted_units": [
        {"unit": "Cel", "factor": 1.0, "offset": 0.0},
        {"unit": "[degF]", "factor": 0.5555555555555556, "offset": -17.77777777777778}
    ],
    "components": []
})))]
pub struct MetricView {
    /// Code used in readings and device models, e.g. `heart_rate`.
    pub code: String,
    pub name: String,
    /// LOINC code (for component metrics, the panel's code).
    pub loinc: String,
    /// Canonical UCUM unit; readings are stored and served in it.
    pub unit: String,
    pub kind: MetricKind,
    /// Plausible range in `unit`; readings outside it are rejected. Null for
    /// component metrics (see each component) and waveforms.
    pub range: Option<RangeView>,
    /// Whether values must be whole numbers.
    pub integer: bool,
    /// Units accepted on ingest, canonical first. Empty for waveforms, which
    /// are uploaded to the farm rather than sent as readings.
    pub accepted_units: Vec<UnitView>,
    /// The parts of a component metric; empty otherwise.
    pub components: Vec<ComponentView>,
}

impl From<&MetricDef> for MetricView {
    fn from(m: &MetricDef) -> Self {
        let range = match (m.min, m.max) {
            (Some(min), Some(max)) => Some(RangeView { min, max }),
            _ => None,
        };
        let accepted_units = if m.accepts_readings() {
            std::iter::once(UnitView {
                unit: m.unit.to_owned(),
                factor: 1.0,
                offset: 0.0,
            })
            .chain(m.alternatives.iter().map(|a| UnitView {
                unit: a.unit.to_owned(),
                factor: a.factor,
                offset: a.offset,
            }))
            .collect()
        } else {
            Vec::new()
        };
        Self {
            code: m.code.to_owned(),
            name: m.name.to_owned(),
            loinc: m.loinc.to_owned(),
            unit: m.unit.to_owned(),
            kind: m.kind,
            range,
            integer: m.integer,
            accepted_units,
            components: m
                .components
                .iter()
                .map(|c| ComponentView {
                    code: c.code.to_owned(),
                    name: c.name.to_owned(),
                    loinc: c.loinc.to_owned(),
                    unit: c.unit.to_owned(),
                    range: RangeView { min: c.min, max: c.max },
                    below: c.below.map(str::to_owned),
                })
                .collect(),
        }
    }
}

/// The whole catalog as served by `GET /v1/metrics`.
pub fn catalog_view() -> Vec<MetricView> {
    CATALOG.iter().map(MetricView::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn comps(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    /// The fields of the errors, in order, for terse assertions.
    fn fields(r: Result<Normalized, ValidationErrors>) -> Vec<String> {
        r.unwrap_err().into_errors().into_iter().map(|e| e.field).collect()
    }

    fn message(r: Result<Normalized, ValidationErrors>, field: &str) -> String {
        r.unwrap_err()
            .into_errors()
            .into_iter()
            .find(|e| e.field == field)
            .unwrap_or_else(|| panic!("no error on {field}"))
            .message
    }

    /// LOINC codes end in a mod-10 check digit (the Luhn scheme); checking it
    /// catches a mistyped code, though not a wrong but valid one.
    fn loinc_is_well_formed(code: &str) -> bool {
        let Some((body, check)) = code.split_once('-') else {
            return false;
        };
        if body.is_empty()
            || check.len() != 1
            || !body.bytes().all(|b| b.is_ascii_digit())
            || !check.bytes().all(|b| b.is_ascii_digit())
        {
            return false;
        }
        let sum: u32 = body
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 0 {
                    let d2 = d * 2;
                    d2 / 10 + d2 % 10
                } else {
                    d
                }
            })
            .sum();
        (10 - sum % 10) % 10 == u32::from(check.as_bytes()[0] - b'0')
    }

    #[test]
    fn loinc_check_digit_helper_works() {
        assert!(loinc_is_well_formed("8867-4"));
        assert!(!loinc_is_well_formed("8867-5"));
        assert!(!loinc_is_well_formed("8867"));
        assert!(!loinc_is_well_formed("88a7-4"));
        assert!(!loinc_is_well_formed("8867-44"));
    }

    #[test]
    fn catalog_is_self_consistent() {
        let mut codes = HashSet::new();
        for m in catalog() {
            assert!(codes.insert(m.code), "duplicate code {}", m.code);
            assert!(loinc_is_well_formed(m.loinc), "{}: bad LOINC {}", m.code, m.loinc);
            assert!(!m.name.is_empty() && !m.unit.is_empty(), "{}", m.code);
            assert!(
                m.code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.code
            );
            assert_eq!(find(m.code), Some(m));
            match m.kind {
                MetricKind::Scalar => {
                    let (min, max) = (m.min.unwrap(), m.max.unwrap());
                    assert!(min.is_finite() && max.is_finite() && min < max, "{}", m.code);
                    assert!(m.components.is_empty(), "{}", m.code);
                    if m.integer {
                        assert_eq!(min.fract(), 0.0, "{}", m.code);
                        assert_eq!(max.fract(), 0.0, "{}", m.code);
                    }
                }
                MetricKind::Components => {
                    assert!(m.min.is_none() && m.max.is_none(), "{}", m.code);
                    assert!(!m.components.is_empty(), "{}", m.code);
                    assert!(!m.integer, "{}", m.code);
                    let mut comp_codes = HashSet::new();
                    for c in m.components {
                        assert!(comp_codes.insert(c.code), "{}.{}", m.code, c.code);
                        assert!(loinc_is_well_formed(c.loinc), "{}.{}", m.code, c.code);
                        assert!(c.min.is_finite() && c.max.is_finite() && c.min < c.max);
                        // One `unit` per reading covers all components.
                        assert_eq!(c.unit, m.unit, "{}.{}", m.code, c.code);
                        if let Some(upper) = c.below {
                            let upper = m.component(upper).unwrap();
                            // Some value pair must satisfy the ordering.
                            assert!(c.min < upper.max, "{}.{}", m.code, c.code);
                        }
                    }
                }
                MetricKind::Waveform => {
                    assert!(m.min.is_none() && m.max.is_none(), "{}", m.code);
                    assert!(m.components.is_empty() && m.alternatives.is_empty());
                    assert!(!m.accepts_readings());
                }
            }
            let mut units = HashSet::new();
            units.insert(m.unit);
            for a in m.alternatives {
                assert!(units.insert(a.unit), "{}: duplicate unit {}", m.code, a.unit);
                assert!(a.factor.is_finite() && a.factor > 0.0, "{}", m.code);
                assert!(a.offset.is_finite(), "{}", m.code);
            }
        }
        let expected = [
            "heart_rate",
            "blood_pressure",
            "body_temperature",
            "spo2",
            "respiratory_rate",
            "blood_glucose",
            "body_weight",
            "steps",
            "ecg",
        ];
        assert_eq!(catalog().iter().map(|m| m.code).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn metric_kind_round_trips() {
        for k in [MetricKind::Scalar, MetricKind::Components, MetricKind::Waveform] {
            assert_eq!(MetricKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(k.as_str().to_owned())
            );
        }
        assert_eq!(MetricKind::parse("Scalar"), None);
    }

    #[test]
    fn fahrenheit_converts_to_celsius() {
        let n = normalize("body_temperature", Some(98.6), None, Some("[degF]")).unwrap();
        assert_eq!(n.unit, "Cel");
        assert!((n.scalar().unwrap() - 37.0).abs() < 1e-9);
        let n = normalize("body_temperature", Some(104.0), None, Some("[degF]"));
        assert!((n.unwrap().scalar().unwrap() - 40.0).abs() < 1e-9);
    }

    #[test]
    fn mmol_per_litre_converts_to_mg_per_decilitre() {
        let n = normalize("blood_glucose", Some(5.5), None, Some("mmol/L")).unwrap();
        assert_eq!(n.unit, "mg/dL");
        assert!((n.scalar().unwrap() - 99.0858).abs() < 1e-9);
    }

    #[test]
    fn pounds_and_grams_convert_to_kilograms() {
        let n = normalize("body_weight", Some(150.0), None, Some("[lb_av]")).unwrap();
        assert_eq!(n.unit, "kg");
        assert!((n.scalar().unwrap() - 68.038_855_5).abs() < 1e-9);
        let n = normalize("body_weight", Some(3250.0), None, Some("g")).unwrap();
        assert!((n.scalar().unwrap() - 3.25).abs() < 1e-12);
    }

    #[test]
    fn canonical_unit_given_explicitly_or_absent_is_the_same() {
        let a = normalize("heart_rate", Some(72.0), None, None).unwrap();
        let b = normalize("heart_rate", Some(72.0), None, Some("/min")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.values, vec![("", 72.0)]);
        assert_eq!(a.metric.code, "heart_rate");
        assert_eq!(a.component("systolic"), None);
    }

    #[test]
    fn blood_pressure_is_stored_per_component_in_catalog_order() {
        let c = comps(&[("diastolic", 80.0), ("systolic", 120.0)]);
        let n = normalize("blood_pressure", None, Some(&c), None).unwrap();
        assert_eq!(n.unit, "mm[Hg]");
        assert_eq!(n.values, vec![("systolic", 120.0), ("diastolic", 80.0)]);
        assert_eq!(n.component("diastolic"), Some(80.0));
        assert_eq!(n.scalar(), None);
        let n = normalize("blood_pressure", None, Some(&c), Some("mm[Hg]")).unwrap();
        assert_eq!(n.values.len(), 2);
    }

    #[test]
    fn range_bounds_are_inclusive() {
        assert!(normalize("heart_rate", Some(20.0), None, None).is_ok());
        assert!(normalize("heart_rate", Some(300.0), None, None).is_ok());
        assert!(normalize("steps", Some(0.0), None, None).is_ok());
        assert!(normalize("body_weight", Some(0.2), None, None).is_ok());
        assert!(normalize("spo2", Some(100.0), None, None).is_ok());
    }

    #[test]
    fn unknown_metric_lists_the_known_ones() {
        let r = normalize("pulse", Some(70.0), None, None);
        let msg = message(r.clone(), "metric");
        assert_eq!(fields(r), ["metric"]);
        assert!(msg.contains("`pulse`"), "{msg}");
        for m in catalog() {
            assert!(msg.contains(m.code), "{msg}");
        }
        // Case matters: codes are exact.
        assert_eq!(fields(normalize("Heart_Rate", Some(70.0), None, None)), ["metric"]);
    }

    #[test]
    fn unknown_metric_echo_is_bounded() {
        let long = "x".repeat(10_000);
        let msg = message(normalize(&long, Some(1.0), None, None), "metric");
        assert!(msg.len() < 400, "{}", msg.len());
    }

    #[test]
    fn ecg_is_refused_with_a_pointer_to_the_farm() {
        let r = normalize("ecg", Some(0.5), None, None);
        let msg = message(r.clone(), "metric");
        assert_eq!(fields(r), ["metric"]);
        assert!(msg.contains("upload ECG waveforms to the farm"), "{msg}");
        assert!(msg.contains("heart_rate"), "{msg}");
        assert_eq!(fields(normalize("ecg", None, None, Some("mV"))), ["metric"]);
    }

    #[test]
    fn scalar_needs_a_value_and_no_components() {
        assert_eq!(fields(normalize("heart_rate", None, None, None)), ["value"]);
        let c = comps(&[("systolic", 120.0)]);
        assert_eq!(
            fields(normalize("heart_rate", Some(70.0), Some(&c), None)),
            ["components"]
        );
        assert_eq!(
            fields(normalize("heart_rate", None, Some(&c), None)),
            ["components", "value"]
        );
        // Present-but-empty components are still components.
        assert_eq!(
            fields(normalize("heart_rate", Some(70.0), Some(&[]), None)),
            ["components"]
        );
    }

    #[test]
    fn component_metric_needs_components_and_no_value() {
        assert_eq!(
            fields(normalize("blood_pressure", Some(120.0), None, None)),
            ["value", "components"]
        );
        assert_eq!(fields(normalize("blood_pressure", None, None, None)), ["components"]);
        let c = comps(&[("systolic", 120.0), ("diastolic", 80.0)]);
        assert_eq!(
            fields(normalize("blood_pressure", Some(120.0), Some(&c), None)),
            ["value"]
        );
    }

    #[test]
    fn missing_unknown_and_duplicate_components_are_named() {
        let c = comps(&[("systolic", 120.0)]);
        let r = normalize("blood_pressure", None, Some(&c), None);
        assert!(message(r.clone(), "components.diastolic").contains("required"));
        assert_eq!(fields(r), ["components.diastolic"]);

        let c = comps(&[("systolic", 120.0), ("diastolic", 80.0), ("pulse", 70.0)]);
        let r = normalize("blood_pressure", None, Some(&c), None);
        let msg = message(r.clone(), "components.pulse");
        assert!(msg.contains("systolic, diastolic"), "{msg}");
        assert_eq!(fields(r), ["components.pulse"]);

        let c = comps(&[("systolic", 120.0), ("diastolic", 80.0), ("systolic", 121.0)]);
        assert_eq!(
            fields(normalize("blood_pressure", None, Some(&c), None)),
            ["components.systolic"]
        );

        assert_eq!(
            fields(normalize("blood_pressure", None, Some(&[]), None)),
            ["components.systolic", "components.diastolic"]
        );
    }

    #[test]
    fn other_units_are_refused_naming_the_accepted_ones() {
        let r = normalize("body_temperature", Some(37.0), None, Some("degC"));
        let msg = message(r.clone(), "unit");
        assert_eq!(fields(r), ["unit"]);
        assert!(msg.contains("Cel, [degF]"), "{msg}");
        // UCUM is case-sensitive, and an empty unit is not "no unit".
        assert_eq!(fields(normalize("body_weight", Some(70.0), None, Some("KG"))), ["unit"]);
        assert_eq!(fields(normalize("heart_rate", Some(70.0), None, Some(""))), ["unit"]);
        // A refused unit still lets shape problems through.
        let c = comps(&[("systolic", 120.0)]);
        assert_eq!(
            fields(normalize("blood_pressure", None, Some(&c), Some("kPa"))),
            ["unit", "components.diastolic"]
        );
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let r = normalize("heart_rate", Some(v), None, None);
            assert!(message(r.clone(), "value").contains("finite"));
            assert_eq!(fields(r), ["value"]);
            let c = comps(&[("systolic", v), ("diastolic", 80.0)]);
            assert_eq!(
                fields(normalize("blood_pressure", None, Some(&c), None)),
                ["components.systolic"]
            );
            // Checked even when the unit is refused.
            assert_eq!(
                fields(normalize("heart_rate", Some(v), None, Some("Hz"))),
                ["unit", "value"]
            );
        }
    }

    #[test]
    fn out_of_range_is_refused_with_the_range_in_canonical_units() {
        let r = normalize("heart_rate", Some(301.0), None, None);
        let msg = message(r.clone(), "value");
        assert_eq!(fields(r), ["value"]);
        assert!(msg.contains("between 20 and 300 /min"), "{msg}");
        assert!(msg.contains("301"), "{msg}");

        let r = normalize("body_temperature", Some(122.0), None, Some("[degF]"));
        let msg = message(r.clone(), "value");
        assert_eq!(fields(r), ["value"]);
        assert!(msg.contains("between 25 and 45 Cel"), "{msg}");
        assert!(msg.contains("122 [degF] = 50 Cel"), "{msg}");

        assert_eq!(fields(normalize("spo2", Some(100.5), None, None)), ["value"]);
        assert_eq!(fields(normalize("body_weight", Some(0.1), None, None)), ["value"]);
        assert_eq!(
            fields(normalize("body_weight", Some(150.0), None, Some("g"))),
            ["value"]
        );
        assert_eq!(fields(normalize("respiratory_rate", Some(1.0), None, None)), ["value"]);
        assert_eq!(
            fields(normalize("blood_glucose", Some(60.0), None, Some("mmol/L"))),
            ["value"]
        );
        // Overflow in a conversion is out of range, not infinity stored.
        assert_eq!(
            fields(normalize("blood_glucose", Some(f64::MAX), None, Some("mmol/L"))),
            ["value"]
        );

        let c = comps(&[("systolic", 310.0), ("diastolic", 10.0)]);
        let r = normalize("blood_pressure", None, Some(&c), None);
        assert!(message(r.clone(), "components.systolic").contains("between 40 and 300 mm[Hg]"));
        assert!(message(r.clone(), "components.diastolic").contains("between 20 and 200 mm[Hg]"));
        assert_eq!(fields(r), ["components.systolic", "components.diastolic"]);
    }

    #[test]
    fn integer_metrics_refuse_fractions() {
        let r = normalize("steps", Some(10.5), None, None);
        let msg = message(r.clone(), "value");
        assert_eq!(fields(r), ["value"]);
        assert!(msg.contains("whole number"), "{msg}");
        assert!(normalize("steps", Some(10_000.0), None, None).is_ok());
        assert_eq!(fields(normalize("steps", Some(-1.0), None, None)), ["value"]);
        // Fractions are fine where they are meaningful.
        assert!(normalize("heart_rate", Some(72.5), None, None).is_ok());
    }

    #[test]
    fn diastolic_must_be_below_systolic() {
        for (s, d) in [(120.0, 120.0), (100.0, 130.0)] {
            let c = comps(&[("systolic", s), ("diastolic", d)]);
            let r = normalize("blood_pressure", None, Some(&c), None);
            let msg = message(r.clone(), "components.diastolic");
            assert_eq!(fields(r), ["components.diastolic"]);
            assert!(msg.contains("below systolic"), "{msg}");
        }
        let c = comps(&[("systolic", 120.0), ("diastolic", 119.9)]);
        assert!(normalize("blood_pressure", None, Some(&c), None).is_ok());
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let c = comps(&[("systolic", f64::NAN), ("mean", 90.0)]);
        assert_eq!(
            fields(normalize("blood_pressure", Some(1.0), Some(&c), Some("kPa"))),
            [
                "unit",
                "value",
                "components.mean",
                "components.systolic",
                "components.diastolic"
            ]
        );
    }

    #[test]
    fn view_describes_every_metric() {
        let view = catalog_view();
        assert_eq!(view.len(), catalog().len());
        for (v, m) in view.iter().zip(catalog()) {
            assert_eq!(v.code, m.code);
            assert_eq!(v.loinc, m.loinc);
            assert_eq!(v.kind, m.kind);
            let units: Vec<&str> = v.accepted_units.iter().map(|u| u.unit.as_str()).collect();
            assert_eq!(units, m.accepted_units());
        }

        let json = serde_json::to_value(&view).unwrap();
        let temp = &json[2];
        assert_eq!(temp["code"], "body_temperature");
        assert_eq!(temp["kind"], "scalar");
        assert_eq!(temp["range"], serde_json::json!({"min": 25.0, "max": 45.0}));
        assert_eq!(temp["accepted_units"][0]["unit"], "Cel");
        assert_eq!(temp["accepted_units"][1]["unit"], "[degF]");

        let bp = &json[1];
        assert_eq!(bp["kind"], "components");
        assert!(bp["range"].is_null());
        assert_eq!(bp["components"][1]["code"], "diastolic");
        assert_eq!(bp["components"][1]["loinc"], "8462-4");
        assert_eq!(bp["components"][1]["below"], "systolic");
        assert_eq!(
            bp["components"][1]["range"],
            serde_json::json!({"min": 20.0, "max": 200.0})
        );

        let ecg = &json[8];
        assert_eq!(ecg["kind"], "waveform");
        assert!(ecg["range"].is_null());
        assert_eq!(ecg["accepted_units"], serde_json::json!([]));

        assert_eq!(json[7]["integer"], true);
    }

    /// Every (metric, alternative unit) pair in the catalog.
    fn alternatives() -> Vec<(&'static MetricDef, &'static UnitAlternative)> {
        catalog()
            .iter()
            .flat_map(|m| m.alternatives.iter().map(move |a| (m, a)))
            .collect()
    }

    fn scalar_metrics() -> Vec<&'static MetricDef> {
        catalog().iter().filter(|m| m.kind == MetricKind::Scalar).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    proptest! {
        #[test]
        fn in_range_canonical_values_are_accepted_unchanged(
            i in 0usize..64,
            t in 0.0f64..=1.0,
            explicit_unit in any::<bool>(),
        ) {
            let metrics = scalar_metrics();
            let m = metrics[i % metrics.len()];
            let (min, max) = (m.min.unwrap(), m.max.unwrap());
            let mut v = (min + t * (max - min)).clamp(min, max);
            if m.integer {
                v = v.round();
            }
            let unit = explicit_unit.then_some(m.unit);
            let n = normalize(m.code, Some(v), None, unit).unwrap();
            prop_assert_eq!(n.unit, m.unit);
            prop_assert_eq!(n.values.len(), 1);
            prop_assert_eq!(n.values[0].0, "");
            prop_assert_eq!(n.values[0].1.to_bits(), v.to_bits());
        }

        #[test]
        fn in_range_blood_pressure_is_accepted_unchanged(s in 40.0f64..=300.0, t in 0.0f64..1.0) {
            // Diastolic anywhere in its range strictly below systolic.
            let hi = s.min(200.0);
            let d = 20.0 + t * (hi - 20.0);
            prop_assume!(d < s);
            let c = comps(&[("systolic", s), ("diastolic", d)]);
            let n = normalize("blood_pressure", None, Some(&c), None).unwrap();
            prop_assert_eq!(n.values, vec![("systolic", s), ("diastolic", d)]);
        }

        #[test]
        fn alternative_unit_round_trip_is_stable(i in 0usize..64, x in -1.0e6f64..1.0e6) {
            let alts = alternatives();
            let (_, a) = alts[i % alts.len()];
            prop_assert!(close(a.from_canonical(a.to_canonical(x)), x));
            prop_assert!(close(a.to_canonical(a.from_canonical(x)), x));
        }

        #[test]
        fn in_range_values_sent_in_an_alternative_unit_are_accepted(
            i in 0usize..64,
            t in 0.0f64..=1.0,
        ) {
            let alts = alternatives();
            let (m, a) = alts[i % alts.len()];
            let (min, max) = (m.min.unwrap(), m.max.unwrap());
            // Kept off the exact bounds: a bound converted out and back may
            // land one ulp outside, which is correctly refused.
            let margin = (max - min) * 1e-9;
            let canonical = min + margin + t * (max - min - 2.0 * margin);
            let sent = a.from_canonical(canonical);
            let n = normalize(m.code, Some(sent), None, Some(a.unit)).unwrap();
            prop_assert_eq!(n.unit, m.unit);
            prop_assert!(close(n.scalar().unwrap(), canonical));
        }

        #[test]
        fn normalize_never_panics(
            metric in prop::sample::select(vec![
                "heart_rate", "blood_pressure", "body_temperature", "spo2", "respiratory_rate",
                "blood_glucose", "body_weight", "steps", "ecg", "nope", "",
            ]),
            value in prop::option::of(any::<f64>()),
            comp in prop::option::of(prop::collection::vec(
                (prop::sample::select(vec!["systolic", "diastolic", "x"]), any::<f64>()),
                0..4,
            )),
            unit in prop::option::of(prop::sample::select(vec![
                "/min", "mm[Hg]", "Cel", "[degF]", "%", "mg/dL", "mmol/L", "kg", "[lb_av]", "g",
                "{steps}", "mV", "",
            ])),
        ) {
            let comp = comp.map(|c| c.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Vec<_>>());
            match normalize(metric, value, comp.as_deref(), unit) {
                Ok(n) => {
                    prop_assert!(n.metric.accepts_readings());
                    prop_assert!(n.values.iter().all(|(_, v)| v.is_finite()));
                }
                Err(e) => prop_assert!(!e.is_empty()),
            }
        }
    }

    #[test]
    fn reading_times_are_bounded() {
        let now = 1_795_000_000_000;
        assert_eq!(check_reading_time(0, now), Err(TimeError::TooEarly));
        assert_eq!(
            check_reading_time(EARLIEST_READING_MS - 1, now),
            Err(TimeError::TooEarly)
        );
        assert_eq!(check_reading_time(EARLIEST_READING_MS, now), Ok(()));
        assert_eq!(check_reading_time(now + FUTURE_SKEW_MS, now), Ok(()));
        assert_eq!(
            check_reading_time(now + FUTURE_SKEW_MS + 1, now),
            Err(TimeError::InFuture)
        );
        assert_eq!(check_reading_time(i64::MIN, i64::MAX), Err(TimeError::TooEarly));
    }
}
