//! Analytics over a subject's readings: which series a code names (a metric,
//! or one component of one such as `blood_pressure.systolic`), pairing two
//! series by time window, Pearson's correlation coefficient, and the adult
//! normal ranges charts shade. Pure arithmetic; the HTTP layer decides what
//! may be read.

use std::collections::BTreeMap;

use crate::metrics::{self, MetricDef};

/// One series of numbers: a metric, or one component of a metric that has
/// components.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesCode {
    pub metric: &'static MetricDef,
    /// The component code; empty for a metric without components (as the
    /// readings table stores it).
    pub component: &'static str,
}

impl SeriesCode {
    /// `heart_rate` or `blood_pressure.systolic`; a metric with components
    /// must name one, a waveform is not a series of single values.
    pub fn parse(code: &str) -> Result<Self, String> {
        let (metric_code, component) = match code.split_once('.') {
            Some((m, c)) => (m, Some(c)),
            None => (code, None),
        };
        let metric = metrics::find(metric_code).ok_or_else(|| "unknown metric; see GET /v1/metrics".to_owned())?;
        if !metric.accepts_readings() {
            return Err(format!("{} is a waveform, not a series of values", metric.code));
        }
        match component {
            None if metric.components.is_empty() => Ok(SeriesCode { metric, component: "" }),
            None => Err(format!(
                "{} has components; name one, e.g. {}.{}",
                metric.code,
                metric.code,
                metric.components.first().map_or("", |c| c.code)
            )),
            Some(c) => metric
                .component(c)
                .map(|comp| SeriesCode {
                    metric,
                    component: comp.code,
                })
                .ok_or_else(|| format!("{} has no component {c:?}", metric.code)),
        }
    }

    /// The code as a client writes it.
    pub fn code(&self) -> String {
        if self.component.is_empty() {
            self.metric.code.to_owned()
        } else {
            format!("{}.{}", self.metric.code, self.component)
        }
    }
}

/// The width of the windows two series are paired in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairWindow {
    FiveMinutes,
    FifteenMinutes,
    Hour,
    Day,
}

impl PairWindow {
    pub const ALL: [PairWindow; 4] = [
        PairWindow::FiveMinutes,
        PairWindow::FifteenMinutes,
        PairWindow::Hour,
        PairWindow::Day,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == s)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            PairWindow::FiveMinutes => "5m",
            PairWindow::FifteenMinutes => "15m",
            PairWindow::Hour => "1h",
            PairWindow::Day => "1d",
        }
    }

    pub const fn millis(self) -> i64 {
        match self {
            PairWindow::FiveMinutes => 5 * 60 * 1000,
            PairWindow::FifteenMinutes => 15 * 60 * 1000,
            PairWindow::Hour => 60 * 60 * 1000,
            PairWindow::Day => 24 * 60 * 60 * 1000,
        }
    }
}

/// A window in which both series have a mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedPoint {
    /// Start of the window (ms since the epoch).
    pub t: i64,
    pub x: f64,
    pub y: f64,
}

/// Pairs per-window means `(window start, mean)` of two series: the windows
/// both have, in time order. A window listed twice keeps its last mean.
pub fn pair(x: &[(i64, f64)], y: &[(i64, f64)]) -> Vec<PairedPoint> {
    let ys: BTreeMap<i64, f64> = y.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    let xs: BTreeMap<i64, f64> = x.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    xs.into_iter()
        .filter_map(|(t, x)| ys.get(&t).map(|&y| PairedPoint { t, x, y }))
        .collect()
}

/// Fewest pairs a correlation is computed from: with two any line fits.
pub const MIN_PAIRS: usize = 3;

/// Pearson's r of the pairs; `None` with fewer than three pairs or when
/// either series does not vary (r is undefined then).
pub fn pearson(points: &[PairedPoint]) -> Option<f64> {
    if points.len() < MIN_PAIRS {
        return None;
    }
    // Two passes (means first) keep precision for values far from zero,
    // such as temperatures around 37.
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.x).sum::<f64>() / n;
    let my = points.iter().map(|p| p.y).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for p in points {
        let (dx, dy) = (p.x - mx, p.y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    // Relative to the scale of the data, a spread this small is rounding.
    let tiny = |s: f64, m: f64| s <= f64::EPSILON * n * (m * m).max(1e-300) * 16.0 || s == 0.0;
    if tiny(sxx, mx) || tiny(syy, my) {
        return None;
    }
    let r = sxy / (sxx.sqrt() * syy.sqrt());
    r.is_finite().then(|| r.clamp(-1.0, 1.0))
}

/// An adult's normal band of a series, in the catalog's unit, for charts
/// that do not know the subject's age: the band [`crate::norms`] uses when
/// the birth date is unknown (NEWS2 scoring 0 for the vital signs, ACC/AHA
/// normal above NEWS2's lowest systolic band for blood pressure, ADA time
/// in range for glucose). An open side is infinite. Charts of a known
/// subject should use [`crate::chart::normal_bands`] with the age.
pub fn normal_range(metric: &str, component: &str) -> Option<(f64, f64)> {
    crate::chart::normal_bands(metric, &[component], None, None)
        .into_iter()
        .next()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pts(v: &[(f64, f64)]) -> Vec<PairedPoint> {
        v.iter()
            .enumerate()
            .map(|(i, &(x, y))| PairedPoint { t: i as i64, x, y })
            .collect()
    }

    #[test]
    fn perfect_positive_and_negative() {
        let up = pts(&[(1.0, 3.0), (2.0, 5.0), (3.0, 7.0), (4.0, 9.0)]);
        assert!((pearson(&up).unwrap() - 1.0).abs() < 1e-12);
        let down = pts(&[(1.0, 9.0), (2.0, 7.0), (3.0, 5.0), (4.0, 3.0)]);
        assert!((pearson(&down).unwrap() + 1.0).abs() < 1e-12);
    }

    #[test]
    fn known_value() {
        // r of (1,2),(2,4),(3,5),(4,4),(5,5) is 0.7745966...
        let p = pts(&[(1.0, 2.0), (2.0, 4.0), (3.0, 5.0), (4.0, 4.0), (5.0, 5.0)]);
        assert!((pearson(&p).unwrap() - 0.774_596_669_241_483_4).abs() < 1e-12);
    }

    #[test]
    fn undefined_cases() {
        assert_eq!(pearson(&pts(&[(1.0, 2.0), (2.0, 3.0)])), None);
        assert_eq!(pearson(&[]), None);
        assert_eq!(pearson(&pts(&[(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)])), None);
        assert_eq!(pearson(&pts(&[(7.0, 1.0), (7.0, 2.0), (7.0, 3.0)])), None);
        assert_eq!(pearson(&pts(&[(36.6, 1.0), (36.6, 2.0), (36.6, 3.0)])), None);
    }

    #[test]
    fn pairs_only_shared_windows() {
        let x = [(0, 1.0), (300, 2.0), (600, 3.0)];
        let y = [(300, 20.0), (600, 30.0), (900, 40.0), (0, f64::NAN)];
        assert_eq!(
            pair(&x, &y),
            vec![
                PairedPoint {
                    t: 300,
                    x: 2.0,
                    y: 20.0
                },
                PairedPoint {
                    t: 600,
                    x: 3.0,
                    y: 30.0
                }
            ]
        );
    }

    #[test]
    fn series_codes() {
        let hr = SeriesCode::parse("heart_rate").unwrap();
        assert_eq!((hr.metric.code, hr.component), ("heart_rate", ""));
        let sys = SeriesCode::parse("blood_pressure.systolic").unwrap();
        assert_eq!(sys.component, "systolic");
        assert_eq!(sys.code(), "blood_pressure.systolic");
        assert!(SeriesCode::parse("blood_pressure").is_err());
        assert!(SeriesCode::parse("blood_pressure.mean").is_err());
        assert!(SeriesCode::parse("heart_rate.systolic").is_err());
        assert!(SeriesCode::parse("pulse").is_err());
        assert!(SeriesCode::parse("ecg").is_err());
    }

    #[test]
    fn windows_round_trip() {
        for w in PairWindow::ALL {
            assert_eq!(PairWindow::parse(w.as_str()), Some(w));
        }
        assert_eq!(PairWindow::parse("2h"), None);
    }

    #[test]
    fn ranges_are_ordered() {
        for (m, c) in [
            ("heart_rate", ""),
            ("spo2", ""),
            ("body_temperature", ""),
            ("respiratory_rate", ""),
            ("blood_pressure", "systolic"),
            ("blood_pressure", "diastolic"),
            ("blood_glucose", ""),
        ] {
            let (lo, hi) = normal_range(m, c).unwrap();
            assert!(lo < hi);
        }
        assert_eq!(normal_range("steps", ""), None);
    }

    proptest! {
        #[test]
        fn invariant_under_affine_maps(
            v in proptest::collection::vec((-1000.0f64..1000.0, -1000.0f64..1000.0), 3..40),
            a in 0.01f64..100.0, b in -1000.0f64..1000.0,
            c in 0.01f64..100.0, d in -1000.0f64..1000.0,
            flip in any::<bool>(),
        ) {
            let p = pts(&v);
            let Some(r) = pearson(&p) else { return Ok(()) };
            prop_assert!((-1.0..=1.0).contains(&r));
            let s = if flip { -1.0 } else { 1.0 };
            let q: Vec<PairedPoint> =
                p.iter().map(|p| PairedPoint { t: p.t, x: s * a * p.x + b, y: c * p.y + d }).collect();
            let r2 = pearson(&q).unwrap();
            prop_assert!((r2 - s * r).abs() < 1e-6, "{} vs {}", r2, s * r);
        }

        #[test]
        fn symmetric(v in proptest::collection::vec((-1e3f64..1e3, -1e3f64..1e3), 0..30)) {
            let p = pts(&v);
            let swapped: Vec<PairedPoint> = p.iter().map(|p| PairedPoint { t: p.t, x: p.y, y: p.x }).collect();
            match (pearson(&p), pearson(&swapped)) {
                (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-12),
                (a, b) => prop_assert_eq!(a.is_none(), b.is_none()),
            }
        }
    }
}
