//! Alert rules: what a membership wants to be told about its subjects'
//! readings (a threshold crossed, a value out of range, a change too fast,
//! silence for too long), parsed and validated once at the edge, and the
//! pure decision whether one reading breaches a rule.
//!
//! Storage keeps a rule's condition as the JSON `Condition::to_json` writes,
//! which `Condition::parse` reads back, so the evaluator never sees a form
//! the API would have refused.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::metrics;
use crate::{SubjectId, ValidationErrors};

/// The longest `per` or `for` a rule may name: a year.
pub const MAX_DURATION_MS: i64 = 366 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A comparison of a reading with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Op {
    pub const fn as_str(self) -> &'static str {
        match self {
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Op::Gt, Op::Gte, Op::Lt, Op::Lte].into_iter().find(|v| v.as_str() == s)
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Gte => value >= threshold,
            Op::Lt => value < threshold,
            Op::Lte => value <= threshold,
        }
    }
}

/// When a rule fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The reading compared with `value` by `op` holds.
    Threshold { op: Op, value: f64 },
    /// The reading lies outside `[min, max]`.
    Range { min: f64, max: f64 },
    /// The reading differs from the subject's previous one of the same
    /// series, taken at most `per_ms` earlier, by more than `delta`.
    RateOfChange { delta: f64, per_ms: i64 },
    /// No reading for longer than `for_ms`.
    NoData { for_ms: i64 },
}

impl Condition {
    pub const fn kind(&self) -> &'static str {
        match self {
            Condition::Threshold { .. } => "threshold",
            Condition::Range { .. } => "range",
            Condition::RateOfChange { .. } => "rate_of_change",
            Condition::NoData { .. } => "no_data",
        }
    }

    /// The canonical JSON form, as the API shows it and storage keeps it.
    pub fn to_json(&self) -> Value {
        match self {
            Condition::Threshold { op, value } => json!({"kind": "threshold", "op": op.as_str(), "value": value}),
            Condition::Range { min, max } => json!({"kind": "range", "min": min, "max": max}),
            Condition::RateOfChange { delta, per_ms } => {
                json!({"kind": "rate_of_change", "delta": delta, "per": format_duration_ms(*per_ms)})
            }
            Condition::NoData { for_ms } => json!({"kind": "no_data", "for": format_duration_ms(*for_ms)}),
        }
    }

    /// Reads a condition object; problems are reported under `field`
    /// (`condition.op`, ...).
    pub fn parse(raw: &Value, field: &str, errors: &mut ValidationErrors) -> Option<Condition> {
        let Some(obj) = raw.as_object() else {
            errors.add(field, "must be an object");
            return None;
        };
        let kind = obj.get("kind").and_then(Value::as_str);
        let allowed: &[&str] = match kind {
            Some("threshold") => &["kind", "op", "value"],
            Some("range") => &["kind", "min", "max"],
            Some("rate_of_change") => &["kind", "delta", "per"],
            Some("no_data") => &["kind", "for"],
            _ => {
                errors.add(
                    format!("{field}.kind"),
                    "must be one of threshold, range, rate_of_change, no_data",
                );
                return None;
            }
        };
        let before = errors.errors().len();
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                errors.add(format!("{field}.{key}"), "is not a field of this condition kind");
            }
        }
        let number = |name: &str, errors: &mut ValidationErrors| -> Option<f64> {
            match obj.get(name).and_then(Value::as_f64) {
                Some(v) if v.is_finite() => Some(v),
                _ => {
                    errors.add(format!("{field}.{name}"), "must be a number");
                    None
                }
            }
        };
        let duration = |name: &str, errors: &mut ValidationErrors| -> Option<i64> {
            match obj.get(name).and_then(Value::as_str).and_then(parse_duration_ms) {
                Some(ms) => Some(ms),
                None => {
                    errors.add(
                        format!("{field}.{name}"),
                        "must be an ISO 8601 duration such as PT30M, PT6H or P1D, at most a year",
                    );
                    None
                }
            }
        };
        let condition = match kind {
            Some("threshold") => {
                let op = obj.get("op").and_then(Value::as_str).and_then(Op::parse);
                if op.is_none() {
                    errors.add(format!("{field}.op"), "must be one of gt, gte, lt, lte");
                }
                let value = number("value", errors);
                Condition::Threshold { op: op?, value: value? }
            }
            Some("range") => {
                let (min, max) = (number("min", errors), number("max", errors));
                let (min, max) = (min?, max?);
                if min > max {
                    errors.add(format!("{field}.max"), "must not be below min");
                    return None;
                }
                Condition::Range { min, max }
            }
            Some("rate_of_change") => {
                let delta = number("delta", errors);
                if delta.is_some_and(|d| d <= 0.0) {
                    errors.add(format!("{field}.delta"), "must be greater than 0");
                }
                let per = duration("per", errors);
                Condition::RateOfChange {
                    delta: delta?,
                    per_ms: per?,
                }
            }
            _ => Condition::NoData {
                for_ms: duration("for", errors)?,
            },
        };
        (errors.errors().len() == before).then_some(condition)
    }
}

/// A validated rule (without its identity and owner).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// `None` only for a `no_data` rule over every metric.
    pub metric: Option<&'static str>,
    /// `""` for a single-valued metric, or for a `no_data` rule over every
    /// component.
    pub component: &'static str,
    /// `None`: every subject the membership may see.
    pub subjects: Option<BTreeSet<SubjectId>>,
    pub condition: Condition,
    pub severity: Severity,
}

/// A rule as the client sends it, before validation.
pub struct RuleInput<'a> {
    pub name: &'a str,
    pub metric: Option<&'a str>,
    pub component: Option<&'a str>,
    pub subject_ids: Option<&'a [uuid::Uuid]>,
    pub condition: &'a Value,
    pub severity: &'a str,
}

/// The most subjects one rule may name.
pub const MAX_RULE_SUBJECTS: usize = 1000;

impl Rule {
    /// Validates a rule; every problem is named by its field.
    pub fn parse(input: &RuleInput<'_>) -> Result<Rule, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = input.name.trim();
        errors.check("name", crate::validation::check_name(name, 200));
        let severity = Severity::parse(input.severity);
        if severity.is_none() {
            errors.add("severity", "must be one of info, warning, critical");
        }
        let condition = Condition::parse(input.condition, "condition", &mut errors);
        // Judged from the kind alone, so a bad `for` is not also a missing metric.
        let no_data = input.condition.get("kind").and_then(Value::as_str) == Some("no_data");
        let mut metric = None;
        let mut component = "";
        match input.metric {
            None if no_data => {
                if input.component.is_some() {
                    errors.add("component", "needs a metric");
                }
            }
            None => errors.add("metric", "is required for this condition kind"),
            Some(code) => match metrics::find(code).filter(|m| m.accepts_readings()) {
                None => errors.add(
                    "metric",
                    "must be a metric code from GET /v1/metrics that takes readings",
                ),
                Some(def) => {
                    metric = Some(def.code);
                    match (input.component, def.components.is_empty()) {
                        (Some(c), false) => match def.component(c) {
                            Some(comp) => component = comp.code,
                            None => errors.add("component", format!("is not a component of {}", def.code)),
                        },
                        (Some(_), true) => errors.add("component", format!("{} has no components", def.code)),
                        // A silence rule may watch a metric as a whole.
                        (None, false) if !no_data => {
                            errors.add("component", format!("is required for {}", def.code));
                        }
                        (None, _) => {}
                    }
                }
            },
        }
        let subjects = input.subject_ids.map(|ids| {
            if ids.is_empty() || ids.len() > MAX_RULE_SUBJECTS {
                errors.add(
                    "subject_ids",
                    format!("must list 1 to {MAX_RULE_SUBJECTS} subjects, or be left out for all"),
                );
            }
            ids.iter().map(|id| SubjectId::from_uuid(*id)).collect::<BTreeSet<_>>()
        });
        errors.into_result()?;
        match (condition, severity) {
            (Some(condition), Some(severity)) => Ok(Rule {
                name: name.to_owned(),
                metric,
                component,
                subjects,
                condition,
                severity,
            }),
            // Unreachable: a missing part has added an error above.
            _ => Err(ValidationErrors::new()),
        }
    }

    /// Whether a reading of `metric`/`component` is one this rule watches.
    pub fn watches(&self, metric: &str, component: &str) -> bool {
        match self.metric {
            None => true,
            Some(m) => m == metric && (self.component.is_empty() || self.component == component),
        }
    }

    /// Whether the rule names `subject` (or every subject).
    pub fn covers_subject(&self, subject: SubjectId) -> bool {
        self.subjects.as_ref().is_none_or(|s| s.contains(&subject))
    }
}

/// What one reading means for an alert of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The condition holds: open an alert, or count one more occurrence;
    /// `trigger` describes why (kind, value, thresholds).
    Breach { trigger: Value },
    /// The reading is back within bounds: an open alert resolves.
    Normal,
    /// The reading says nothing about this rule (no previous value to
    /// compare with, or a silence rule, which the due-time loop decides).
    Silent,
}

/// The verdict of `condition` on a reading `value` taken at `ts_ms`, given
/// the same series' previous reading (time, value), if any.
pub fn evaluate(condition: &Condition, value: f64, ts_ms: i64, previous: Option<(i64, f64)>) -> Verdict {
    match *condition {
        Condition::Threshold { op, value: threshold } => {
            if op.holds(value, threshold) {
                Verdict::Breach {
                    trigger: json!({"kind": "threshold", "value": value, "op": op.as_str(), "threshold": threshold}),
                }
            } else {
                Verdict::Normal
            }
        }
        Condition::Range { min, max } => {
            if value < min || value > max {
                Verdict::Breach {
                    trigger: json!({"kind": "range", "value": value, "min": min, "max": max}),
                }
            } else {
                Verdict::Normal
            }
        }
        Condition::RateOfChange { delta, per_ms } => match previous {
            Some((prev_ts, prev)) if prev_ts < ts_ms && ts_ms - prev_ts <= per_ms => {
                let change = value - prev;
                if change.abs() > delta {
                    Verdict::Breach {
                        trigger: json!({
                            "kind": "rate_of_change", "value": value, "previous_value": prev,
                            "change": change, "threshold": delta, "per": format_duration_ms(per_ms),
                        }),
                    }
                } else {
                    Verdict::Normal
                }
            }
            _ => Verdict::Silent,
        },
        Condition::NoData { .. } => Verdict::Silent,
    }
}

/// The trigger of a silence rule that has come due.
pub fn no_data_trigger(for_ms: i64, last_reading_ms: Option<i64>) -> Value {
    json!({"kind": "no_data", "for": format_duration_ms(for_ms), "last_reading_ms": last_reading_ms})
}

/// An ISO 8601 duration in days, hours, minutes and seconds (`P1D`,
/// `PT6H`, `PT1H30M`, `PT2S`, `P1DT12H`), in milliseconds; `None` for
/// anything else, zero, or more than `MAX_DURATION_MS`. Weeks, months and
/// years are left out: a month has no fixed length.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let body = text.strip_prefix('P')?;
    let (date, time) = match body.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return None;
            }
            (d, Some(t))
        }
        None => (body, None),
    };
    let mut total: i64 = 0;
    let mut parts = 0;
    let mut read = |s: &str, units: &[(char, i64)]| -> Option<()> {
        let mut digits = String::new();
        let mut next_unit = 0;
        for ch in s.chars() {
            if ch.is_ascii_digit() {
                digits.push(ch);
                if digits.len() > 9 {
                    return None;
                }
                continue;
            }
            let pos = units[next_unit..].iter().position(|(u, _)| *u == ch)? + next_unit;
            if digits.is_empty() {
                return None;
            }
            let n: i64 = digits.parse().ok()?;
            total = total.checked_add(n.checked_mul(units[pos].1)?)?;
            parts += 1;
            digits.clear();
            next_unit = pos + 1;
        }
        digits.is_empty().then_some(())
    };
    read(date, &[('D', 86_400_000)])?;
    if let Some(t) = time {
        read(t, &[('H', 3_600_000), ('M', 60_000), ('S', 1000)])?;
    }
    (parts > 0 && total > 0 && total <= MAX_DURATION_MS).then_some(total)
}

/// The canonical text of a duration `parse_duration_ms` read.
pub fn format_duration_ms(ms: i64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if rest > 0 || days == 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 || rest == 0 {
            out.push_str(&format!("{s}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input<'a>(metric: Option<&'a str>, component: Option<&'a str>, condition: &'a Value) -> RuleInput<'a> {
        RuleInput {
            name: "High systolic",
            metric,
            component,
            subject_ids: None,
            condition,
            severity: "critical",
        }
    }

    fn fields(e: ValidationErrors) -> Vec<String> {
        e.into_errors().into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_threshold_rule_on_a_component_parses() {
        let c = json!({"kind": "threshold", "op": "gt", "value": 180});
        let rule = Rule::parse(&input(Some("blood_pressure"), Some("systolic"), &c)).unwrap();
        assert_eq!(rule.metric, Some("blood_pressure"));
        assert_eq!(rule.component, "systolic");
        assert_eq!(rule.severity, Severity::Critical);
        assert_eq!(
            rule.condition,
            Condition::Threshold {
                op: Op::Gt,
                value: 180.0
            }
        );
        assert!(rule.watches("blood_pressure", "systolic"));
        assert!(!rule.watches("blood_pressure", "diastolic"));
        assert!(!rule.watches("heart_rate", ""));
    }

    #[test]
    fn bad_rules_name_their_fields() {
        let c = json!({"kind": "threshold", "op": "above", "value": "x"});
        let e = Rule::parse(&input(Some("blood_pressure"), None, &c)).unwrap_err();
        assert_eq!(fields(e), ["condition.op", "condition.value", "component"]);
        let c = json!({"kind": "range", "min": 5, "max": 1});
        let e = Rule::parse(&input(Some("heart_rate"), Some("x"), &c)).unwrap_err();
        assert_eq!(fields(e), ["condition.max", "component"]);
        let c = json!({"kind": "sometimes"});
        let e = Rule::parse(&input(Some("nonsense"), None, &c)).unwrap_err();
        assert_eq!(fields(e), ["condition.kind", "metric"]);
        let c = json!({"kind": "threshold", "op": "gt", "value": 1});
        let e = Rule::parse(&input(None, None, &c)).unwrap_err();
        assert_eq!(fields(e), ["metric"]);
        let c = json!({"kind": "no_data", "for": "PT0S", "extra": 1});
        let e = Rule::parse(&input(None, None, &c)).unwrap_err();
        assert_eq!(fields(e), ["condition.extra", "condition.for"]);
        let c = json!({"kind": "rate_of_change", "delta": -1, "per": "PT1H"});
        let e = Rule::parse(&input(Some("heart_rate"), None, &c)).unwrap_err();
        assert_eq!(fields(e), ["condition.delta"]);
    }

    #[test]
    fn a_silence_rule_may_watch_every_metric() {
        let c = json!({"kind": "no_data", "for": "PT6H"});
        let rule = Rule::parse(&input(None, None, &c)).unwrap();
        assert!(rule.watches("heart_rate", ""));
        assert_eq!(rule.condition.to_json(), c);
    }

    #[test]
    fn verdicts() {
        let t = Condition::Threshold {
            op: Op::Gte,
            value: 180.0,
        };
        assert!(matches!(evaluate(&t, 180.0, 0, None), Verdict::Breach { .. }));
        assert_eq!(evaluate(&t, 179.9, 0, None), Verdict::Normal);
        let r = Condition::Range { min: 36.0, max: 38.0 };
        assert!(matches!(evaluate(&r, 35.9, 0, None), Verdict::Breach { .. }));
        assert!(matches!(evaluate(&r, 38.5, 0, None), Verdict::Breach { .. }));
        assert_eq!(evaluate(&r, 37.0, 0, None), Verdict::Normal);
        let c = Condition::RateOfChange {
            delta: 20.0,
            per_ms: 3_600_000,
        };
        assert_eq!(evaluate(&c, 100.0, 10, None), Verdict::Silent);
        assert!(matches!(
            evaluate(&c, 100.0, 1000, Some((0, 70.0))),
            Verdict::Breach { .. }
        ));
        assert!(matches!(
            evaluate(&c, 40.0, 1000, Some((0, 70.0))),
            Verdict::Breach { .. }
        ));
        assert_eq!(evaluate(&c, 80.0, 1000, Some((0, 70.0))), Verdict::Normal);
        // Too far apart to compare.
        assert_eq!(evaluate(&c, 200.0, 3_600_001, Some((0, 70.0))), Verdict::Silent);
        assert_eq!(
            evaluate(&Condition::NoData { for_ms: 1000 }, 1.0, 0, None),
            Verdict::Silent
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("PT2S"), Some(2000));
        assert_eq!(parse_duration_ms("PT1H30M"), Some(5_400_000));
        assert_eq!(parse_duration_ms("P1DT12H"), Some(129_600_000));
        for bad in [
            "", "P", "PT", "P1W", "PT1S1H", "PT-1S", "P1M", "PT0S", "P400D", "1H", "PTH",
        ] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
        assert_eq!(format_duration_ms(2000), "PT2S");
        assert_eq!(format_duration_ms(129_600_000), "P1DT12H");
        assert_eq!(format_duration_ms(86_400_000), "P1D");
    }

    proptest! {
        #[test]
        fn durations_round_trip(ms in 1i64..=MAX_DURATION_MS / 1000) {
            let ms = ms * 1000;
            prop_assert_eq!(parse_duration_ms(&format_duration_ms(ms)), Some(ms));
        }

        #[test]
        fn range_breaches_exactly_outside(min in -500.0f64..500.0, width in 0.0f64..500.0, v in -1500.0f64..1500.0) {
            let max = min + width;
            let verdict = evaluate(&Condition::Range { min, max }, v, 0, None);
            prop_assert_eq!(matches!(verdict, Verdict::Breach { .. }), v < min || v > max);
        }

        #[test]
        fn conditions_round_trip_through_json(op in 0usize..4, value in -1e6f64..1e6) {
            let op = [Op::Gt, Op::Gte, Op::Lt, Op::Lte][op];
            let c = Condition::Threshold { op, value };
            let mut errors = ValidationErrors::new();
            prop_assert_eq!(Condition::parse(&c.to_json(), "condition", &mut errors), Some(c));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,20}") {
            let _ = parse_duration_ms(&s);
        }
    }
}
