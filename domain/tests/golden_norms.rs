//! The golden table of `norms::assess`: synthetic cases (age in days, sex,
//! metric, value) with the category, severity, NEWS2 score and source row
//! a clinician expects, in `golden_norms.csv` beside this file. The same
//! file is published as `docs/golden-norms.md` for review; the Markdown is
//! generated from it and a test fails when it is stale (regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p vitalfarm-domain --test golden_norms`).
//!
//! Every case is also put to the views that judge readings (the chart's
//! shaded band, the infant monitor, the elderly watch), which must agree
//! with the assessment.

// A test file: a malformed golden row must stop the test loudly.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;

use vitalfarm_domain::chart;
use vitalfarm_domain::datasets::Severity;
use vitalfarm_domain::mashups::{Status, elderly, infant};
use vitalfarm_domain::norms::{self, Assessment, Metric, NormError, Value};
use vitalfarm_domain::subject::Sex;

const CSV: &str = include_str!("golden_norms.csv");
const HEADER: &str = "age_days,sex,metric,value,category,severity,news2_score,dataset,table,row";

#[derive(Debug)]
struct Case {
    line: usize,
    age: Option<i64>,
    sex: Option<Sex>,
    metric: Metric,
    value: Value,
    raw: Vec<String>,
}

fn cases() -> Vec<Case> {
    let mut lines = CSV.lines();
    assert_eq!(lines.next(), Some(HEADER));
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            // The row of the source is last and may hold commas.
            let raw: Vec<String> = l.splitn(10, ',').map(str::to_owned).collect();
            assert_eq!(raw.len(), 10, "line {}: {l}", i + 2);
            let age = (!raw[0].is_empty()).then(|| raw[0].parse().unwrap());
            let sex = (!raw[1].is_empty()).then(|| Sex::parse(&raw[1]).unwrap());
            let metric = Metric::from_code(&raw[2]).unwrap_or_else(|| panic!("line {}: metric", i + 2));
            let value = match raw[3].split_once('/') {
                Some((s, d)) => Value::Pressure {
                    systolic: s.parse().unwrap(),
                    diastolic: d.parse().unwrap(),
                },
                None => Value::Scalar(raw[3].parse().unwrap()),
            };
            Case {
                line: i + 2,
                age,
                sex,
                metric,
                value,
                raw,
            }
        })
        .collect()
}

fn assess(c: &Case) -> Result<Assessment, NormError> {
    norms::assess(c.metric, c.value, c.age, c.sex)
}

/// The outcome columns (category to row) as the code gives them.
fn outcome(c: &Case) -> Vec<String> {
    match assess(c) {
        Ok(a) => vec![
            a.category,
            a.severity.as_str().to_owned(),
            a.score.map(|s| s.to_string()).unwrap_or_default(),
            a.source.dataset.to_owned(),
            a.source.table,
            a.source.row,
        ],
        Err(NormError::NoReference { .. }) => vec![
            "no_reference".to_owned(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ],
        Err(e) => panic!("line {}: {e}", c.line),
    }
}

#[test]
fn golden_table_holds() {
    let mut wrong = String::new();
    for c in cases() {
        let got = outcome(&c);
        if got[..] != c.raw[4..] {
            let _ = writeln!(
                wrong,
                "line {}: expected {:?}\n   got {}",
                c.line,
                &c.raw[4..],
                [&c.raw[..4], &got[..]].concat().join(",")
            );
        }
    }
    assert!(wrong.is_empty(), "{wrong}");
}

#[test]
fn the_table_is_big_enough_and_holds_the_cases_of_the_issue() {
    let all = cases();
    assert!(all.len() >= 60, "{}", all.len());
    let has = |prefix: &str| CSV.lines().any(|l| l.starts_with(prefix));
    for prefix in [
        "48,male,heart_rate,135,normal,",
        "48,male,heart_rate,160,normal,",
        "48,male,body_temperature,38.8,fever_under_3_months,severe,,nice-ng143-traffic-light,",
        "25568,male,blood_glucose,250,hyperglycaemia_level_1,",
        "25568,male,blood_glucose,50,hypoglycaemia_level_2,",
        "25568,female,blood_pressure,192/124,hypertensive_crisis,",
        "25568,female,heart_rate,130,above_range,moderate,2,",
        "25568,female,heart_rate,131,far_above_range,severe,3,",
    ] {
        assert!(has(prefix), "{prefix}");
    }
    // Every metric is in the table, at a child's and an adult's age.
    for m in Metric::ALL {
        assert!(
            all.iter().any(|c| c.metric == m && c.age.is_some_and(|a| a < 5844)),
            "{m:?}"
        );
        assert!(
            all.iter().any(|c| c.metric == m && c.age.is_none_or(|a| a >= 6575)),
            "{m:?}"
        );
    }
}

fn finite_or_inf(b: Option<(f64, bool)>, inf: f64) -> f64 {
    b.map_or(inf, |x| x.0)
}

/// The chart's shaded band, the infant monitor and the elderly watch say
/// what the assessment says, for every case of the table.
#[test]
fn every_view_agrees_with_the_table() {
    for c in cases() {
        let at = format!("line {}", c.line);
        let Ok(a) = assess(&c) else {
            assert!(
                chart::normal_bands(c.metric.code(), &[""], c.age, c.sex).is_empty(),
                "{at}"
            );
            continue;
        };
        // Chart: the shaded band is the normal band of the assessment.
        let components: Vec<&str> = match c.metric {
            Metric::BloodPressure => vec!["systolic", "diastolic"],
            _ => vec![""],
        };
        let shaded = chart::normal_bands(c.metric.code(), &components, c.age, c.sex);
        let want: Vec<(f64, f64)> = a
            .range
            .iter()
            .map(|r| {
                (
                    finite_or_inf(r.bounds.lower(), f64::NEG_INFINITY),
                    finite_or_inf(r.bounds.upper(), f64::INFINITY),
                )
            })
            .collect();
        assert_eq!(shaded, want, "{at}");

        // Infant monitor: children only, its three metrics.
        if let (Some(age), Value::Scalar(v)) = (c.age, c.value)
            && infant::applies(age)
            && infant::METRICS.contains(&c.metric.code())
        {
            let kind = infant::classify(c.metric.code(), v, age);
            assert_eq!(kind.is_none(), a.category == "normal", "{at}: {kind:?}");
            if a.category == "fever_under_3_months" {
                assert_eq!(kind, Some(infant::Kind::FeverUnder3Months), "{at}");
            }
            let norm = infant::norm(c.metric.code(), age).unwrap();
            assert_eq!(Some(norm.low), a.range[0].bounds.lower().map(|l| l.0), "{at}");
            if a.category == "normal" {
                assert_eq!(norm.dataset, a.source.dataset, "{at}");
            }
        }

        // Elderly watch: a reason with the same category when the severity
        // calls for one, none otherwise.
        let timed = |v: f64| elderly::Timed { value: v, at_ms: 1 };
        let mut inputs = elderly::Inputs {
            now_ms: 1,
            age_days: c.age,
            last_reading_ms: Some(1),
            ..elderly::Inputs::default()
        };
        match (c.metric, c.value) {
            (Metric::BloodPressure, Value::Pressure { systolic, diastolic }) => {
                inputs.blood_pressure = Some(elderly::Pressure {
                    systolic,
                    diastolic,
                    at_ms: 1,
                });
            }
            (Metric::HeartRate, Value::Scalar(v)) => inputs.heart_rate = Some(timed(v)),
            (Metric::BodyTemperature, Value::Scalar(v)) => inputs.temperature = Some(timed(v)),
            (Metric::Spo2, Value::Scalar(v)) => inputs.spo2 = Some(timed(v)),
            (Metric::BloodGlucose, Value::Scalar(v)) => inputs.glucose = Some(timed(v)),
            // Respiratory rate is not an input of the watch.
            _ => continue,
        }
        let verdict = elderly::judge(&inputs);
        let want = match a.severity {
            Severity::Normal | Severity::Mild => Status::Ok,
            Severity::Moderate => Status::Attention,
            Severity::Severe => Status::Emergency,
        };
        assert_eq!(verdict.status, want, "{at}: {verdict:?}");
        if want != Status::Ok {
            let r = &verdict.reasons[0];
            assert_eq!(r.category, a.category, "{at}");
            assert_eq!(r.dataset.as_ref().map(|d| d.name), Some(a.source.dataset), "{at}");
            assert!(r.threshold.contains(&a.source.row), "{at}");
            assert_eq!(r.threshold.starts_with("age unknown"), c.age.is_none(), "{at}");
        }
    }
}

fn age_label(raw: &str) -> String {
    let Ok(days) = raw.parse::<i64>() else {
        return "unknown (adult norms)".to_owned();
    };
    if days < 731 {
        format!("{days} d ({:.1} mo)", days as f64 / 30.44)
    } else {
        format!("{days} d ({:.1} y)", days as f64 / 365.25)
    }
}

fn markdown() -> String {
    let all = cases();
    let mut md = String::new();
    let _ = write!(
        md,
        "# Golden table of normal ranges and categories

This table is generated from `domain/tests/golden_norms.csv` by the test
`domain/tests/golden_norms.rs`, which also checks every row against the code
(`vitalfarm_domain::norms::assess`) and checks that the chart's shaded band,
the infant monitor and the elderly watch agree with it. Do not edit it by
hand: edit the CSV and run
`UPDATE_GOLDEN=1 cargo test -p vitalfarm-domain --test golden_norms`.

**For clinical review.** The cases are synthetic. The expected categories
were written by hand from the sources; the thresholds in `domain/data/` were
written from the developers' knowledge of the published tables and have
**not yet been checked by a clinician against the publishers' documents**;
each dataset says so in its notes. Every row names the dataset
(`GET /v1/public-datasets/{{name}}`), the table or section and the row of the
source that decided it.

How to read it:
- *Age* is in days (a year is 365.25 days); an empty age is a subject without
  a birth date, judged with adult norms and flagged `age_unknown`.
- *Sex* is given where a case states it; no shipped source distinguishes
  sex, so it changes nothing yet.
- *Severity* is the platform's reading of the source's grade: NEWS2 score 1
  mild, 2 moderate, 3 severe; NICE NG143 amber moderate, red severe; ACC/AHA
  elevated and stage 1 mild, stage 2 moderate, crisis severe; ADA level 1
  moderate, level 2 severe; a child's value outside the PALS range mild;
  WHO hypoxaemia and hypothermia severe. The elderly watch raises attention
  for moderate and an emergency for severe.
- *NEWS2* is the single-parameter score (adults, 16 years and over); for
  blood pressure it is the score of the systolic value.
- `no_reference`: no shipped source gives a norm for that metric at that
  age (neonatal SpO2, blood pressure under 18 years); the platform says so
  rather than guess.
- Whole-number rows (pulse 41-50) are read as half-open bands
  (41 <= pulse < 51); one-decimal temperature rows as (35.0, 36.0].
- Glucose: 250 mg/dL itself is *level 1* above range (ADA Table 6.2:
  181-250 mg/dL); level 2 starts above 250 mg/dL. Both raise a flag. The
  table numbers (6.2, 6.4) are those of the 2024 Standards and need checking
  against the edition in use.

{n} cases.

| # | Age | Sex | Metric | Value | Category | Severity | NEWS2 | Dataset | Table or section | Row |
|---|-----|-----|--------|-------|----------|----------|-------|---------|------------------|-----|
",
        n = all.len()
    );
    for (i, c) in all.iter().enumerate() {
        let r = &c.raw;
        let cell = |s: &str| s.replace('|', "\\|");
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} |",
            i + 1,
            age_label(&r[0]),
            cell(&r[1]),
            cell(&r[2]),
            cell(&r[3]),
            cell(&r[4]),
            cell(&r[5]),
            cell(&r[6]),
            cell(&r[7]),
            cell(&r[8]),
            cell(&r[9]),
        );
    }
    md
}

#[test]
fn the_published_table_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/golden-norms.md");
    let want = markdown();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/golden-norms.md is stale: run UPDATE_GOLDEN=1 cargo test -p vitalfarm-domain --test golden_norms"
    );
}
