//! Time-series charts as SVG, written by hand: a title, time and value axes
//! with ticks and labels, the normal range as a shaded band, one polyline
//! per series with a legend when there are several, and a message when
//! there is nothing to draw. All text is escaped; every number written is
//! finite, so the document is well-formed whatever the data.

use std::fmt::Write as _;

use chrono::DateTime;

use crate::norms::{self, Metric};
use crate::subject::Sex;

/// One line of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// `(ms since the epoch, value)`, in time order.
    pub points: Vec<(i64, f64)>,
}

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    /// The value axis label's unit (UCUM, e.g. `/min`).
    pub unit: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub series: Vec<Series>,
    /// Normal ranges `(low, high)`, shaded (one per series at most); an
    /// infinite side is shaded to the edge of the plot.
    pub bands: Vec<(f64, f64)>,
}

/// The normal bands to shade on a chart of `metric` with `components`
/// (`[""]` for a scalar metric) for a subject `age_days` old (`None`:
/// birth date unknown, adult norms): the bands [`norms::assess`] judges
/// readings by, so the shading agrees with the monitors. A metric or age
/// without a source gets no band.
pub fn normal_bands(metric: &str, components: &[&str], age_days: Option<i64>, sex: Option<Sex>) -> Vec<(f64, f64)> {
    let Some(m) = Metric::from_code(metric) else {
        return Vec::new();
    };
    components
        .iter()
        .filter_map(|c| {
            let component = Some(*c).filter(|c| !c.is_empty());
            let b = norms::normal_band(m, component, age_days, sex).ok()?;
            Some((
                b.lower().map_or(f64::NEG_INFINITY, |l| l.0),
                b.upper().map_or(f64::INFINITY, |u| u.0),
            ))
        })
        .collect()
}

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
/// Shown when no series has a point.
pub const EMPTY_MESSAGE: &str = "No readings in this period";

/// Escapes text for SVG element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A number for an SVG attribute: finite, two decimals.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "0".to_owned()
    }
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about `ticks` ticks.
fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = span / ticks;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let f = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * mag
}

/// Time tick steps, in ms, with the label format that suits them.
const TIME_STEPS: [(i64, &str); 12] = [
    (60_000, "%H:%M"),
    (5 * 60_000, "%H:%M"),
    (15 * 60_000, "%H:%M"),
    (30 * 60_000, "%H:%M"),
    (3_600_000, "%m-%d %H:%M"),
    (3 * 3_600_000, "%m-%d %H:%M"),
    (6 * 3_600_000, "%m-%d %H:%M"),
    (12 * 3_600_000, "%m-%d %H:%M"),
    (86_400_000, "%Y-%m-%d"),
    (2 * 86_400_000, "%Y-%m-%d"),
    (7 * 86_400_000, "%Y-%m-%d"),
    (30 * 86_400_000, "%Y-%m-%d"),
];

fn time_ticks(from: i64, to: i64) -> (Vec<i64>, &'static str) {
    let span = to.saturating_sub(from).max(1);
    let (step, fmt) = TIME_STEPS
        .iter()
        .copied()
        .find(|(s, _)| span / s <= 8)
        .unwrap_or((span / 6 + 1, "%Y-%m-%d"));
    let first = from.div_euclid(step) * step + if from.rem_euclid(step) == 0 { 0 } else { step };
    let ticks = (0..)
        .map(|i| first.saturating_add(i * step))
        .take_while(|t| *t <= to)
        .take(20)
        .collect();
    (ticks, fmt)
}

/// The value range: the data and the band, with a margin.
fn value_range(chart: &Chart) -> (f64, f64) {
    let values = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(chart.bands.iter().flat_map(|b| [b.0, b.1]))
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.1
    };
    (lo - pad, hi + pad)
}

/// The chart as a standalone SVG document.
pub fn render(chart: &Chart) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let (from, to) = if chart.to_ms > chart.from_ms {
        (chart.from_ms, chart.to_ms)
    } else {
        (chart.from_ms, chart.from_ms.saturating_add(1))
    };
    let (vlo, vhi) = value_range(chart);
    let x_of = |t: i64| LEFT + (t.saturating_sub(from)) as f64 / (to - from) as f64 * plot_w;
    let y_of = |v: f64| TOP + plot_h - (v - vlo) / (vhi - vlo) * plot_h;
    let clamp_y = |y: f64| y.clamp(TOP, TOP + plot_h);

    let mut s = String::new();
    let _ = write!(
        s,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<title>{title}</title>
<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>
<text x="{cx}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{title}</text>
"##,
        w = WIDTH,
        h = HEIGHT,
        cx = num(WIDTH / 2.0),
        title = escape(&chart.title),
    );
    for &(lo, hi) in chart
        .bands
        .iter()
        .filter(|(lo, hi)| !lo.is_nan() && !hi.is_nan() && lo < hi && (lo.is_finite() || hi.is_finite()))
    {
        let (y1, y2) = (clamp_y(y_of(hi)), clamp_y(y_of(lo)));
        let _ = writeln!(
            s,
            r##"<rect class="normal-range" x="{}" y="{}" width="{}" height="{}" fill="#2ca02c" fill-opacity="0.12"><title>normal range {} {}</title></rect>"##,
            num(LEFT),
            num(y1),
            num(plot_w),
            num((y2 - y1).max(0.0)),
            if !lo.is_finite() {
                format!("below {}", num(hi))
            } else if !hi.is_finite() {
                format!("from {}", num(lo))
            } else {
                format!("{}–{}", num(lo), num(hi))
            },
            escape(&chart.unit)
        );
    }
    // Axes.
    let _ = writeln!(
        s,
        r##"<path class="axes" d="M{l} {t} V{b} H{r}" fill="none" stroke="#333333"/>"##,
        l = num(LEFT),
        t = num(TOP),
        b = num(TOP + plot_h),
        r = num(LEFT + plot_w)
    );
    let step = nice_step(vhi - vlo, 6.0);
    let mut v = (vlo / step).ceil() * step;
    let mut n = 0;
    while v <= vhi && n < 30 {
        let y = y_of(v);
        let decimals = if step >= 1.0 {
            0
        } else {
            (-step.log10().floor()) as usize
        };
        let _ = writeln!(
            s,
            r##"<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="#dddddd"/><text x="{tx}" y="{ty}" text-anchor="end">{label}</text>"##,
            x1 = num(LEFT - 4.0),
            x2 = num(LEFT + plot_w),
            y = num(y),
            tx = num(LEFT - 8.0),
            ty = num(y + 4.0),
            label = escape(&format!("{v:.decimals$}")),
        );
        v += step;
        n += 1;
    }
    let (ticks, fmt) = time_ticks(from, to);
    for t in ticks {
        let x = x_of(t);
        let label = DateTime::from_timestamp_millis(t)
            .map(|d| d.format(fmt).to_string())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" stroke="#333333"/><text x="{x}" y="{ty}" text-anchor="middle">{label}</text>"##,
            x = num(x),
            y1 = num(TOP + plot_h),
            y2 = num(TOP + plot_h + 4.0),
            ty = num(TOP + plot_h + 18.0),
            label = escape(&label),
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{x}" y="{y}" text-anchor="middle">time (UTC)</text>"#,
        x = num(LEFT + plot_w / 2.0),
        y = num(HEIGHT - 8.0)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{y}" text-anchor="middle" transform="rotate(-90 16 {y})">{unit}</text>"#,
        y = num(TOP + plot_h / 2.0),
        unit = escape(&chart.unit)
    );
    let has_data = chart.series.iter().any(|s| !s.points.is_empty());
    if has_data {
        for (i, series) in chart.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<String> = series
                .points
                .iter()
                .filter(|(t, v)| v.is_finite() && *t >= from && *t <= to)
                .map(|&(t, v)| format!("{},{}", num(x_of(t)), num(y_of(v))))
                .collect();
            if !points.is_empty() {
                let _ = writeln!(
                    s,
                    r#"<polyline class="series" fill="none" stroke="{color}" stroke-width="1.5" points="{}"><title>{}</title></polyline>"#,
                    points.join(" "),
                    escape(&series.label)
                );
            }
        }
        if chart.series.len() > 1 {
            for (i, series) in chart.series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let y = TOP + 12.0 + i as f64 * 16.0;
                let x = LEFT + plot_w - 130.0;
                let _ = writeln!(
                    s,
                    r#"<g class="legend"><line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{color}" stroke-width="3"/><text x="{tx}" y="{ty}">{label}</text></g>"#,
                    x1 = num(x),
                    x2 = num(x + 20.0),
                    y = num(y),
                    tx = num(x + 26.0),
                    ty = num(y + 4.0),
                    label = escape(&series.label),
                );
            }
        }
    } else {
        let _ = writeln!(
            s,
            r##"<text class="empty" x="{x}" y="{y}" text-anchor="middle" font-size="14" fill="#666666">{EMPTY_MESSAGE}</text>"##,
            x = num(LEFT + plot_w / 2.0),
            y = num(TOP + plot_h / 2.0)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small well-formedness check: tags nest and close, attributes are
    /// quoted, and text holds no raw `<` or stray `&`.
    fn well_formed(doc: &str) -> Result<Vec<String>, String> {
        let body = doc
            .strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
            .ok_or("no declaration")?;
        let mut stack: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = body;
        let check_text = |t: &str| -> Result<(), String> {
            let mut r = t;
            while let Some(i) = r.find('&') {
                let after = &r[i + 1..];
                let end = after.find(';').ok_or("unterminated entity")?;
                let ent = &after[..end];
                if !matches!(ent, "amp" | "lt" | "gt" | "quot" | "#39") {
                    return Err(format!("unknown entity {ent}"));
                }
                r = &after[end + 1..];
            }
            if t.contains('>') {
                return Err("raw > in text".into());
            }
            Ok(())
        };
        while let Some(open) = rest.find('<') {
            check_text(&rest[..open])?;
            let close = rest[open..].find('>').ok_or("unclosed tag")? + open;
            let tag = &rest[open + 1..close];
            if tag.contains('<') {
                return Err(format!("< inside tag {tag}"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                let top = stack.pop().ok_or("close without open")?;
                if top != name {
                    return Err(format!("</{name}> closes <{top}>"));
                }
            } else {
                let self_closing = tag.ends_with('/');
                let inner = tag.trim_end_matches('/');
                let name = inner.split_whitespace().next().ok_or("empty tag")?.to_owned();
                // Attribute values are quoted; quotes come in pairs.
                if inner.matches('"').count() % 2 != 0 {
                    return Err(format!("unbalanced quotes in {tag}"));
                }
                for value in inner.split('"').skip(1).step_by(2) {
                    check_text(value)?;
                }
                seen.push(name.clone());
                if !self_closing {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        check_text(rest)?;
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        Ok(seen)
    }

    fn numbers_finite(doc: &str) -> bool {
        !doc.contains("NaN") && !doc.contains("inf")
    }

    fn bp() -> Chart {
        let h = 3_600_000;
        Chart {
            title: "Ann <script>&\"x\" — Blood pressure".into(),
            unit: "mm[Hg]".into(),
            from_ms: 1_700_000_000_000,
            to_ms: 1_700_000_000_000 + 24 * h,
            series: vec![
                Series {
                    label: "systolic".into(),
                    points: (0..24).map(|i| (1_700_000_000_000 + i * h, 110.0 + i as f64)).collect(),
                },
                Series {
                    label: "diastolic".into(),
                    points: (0..24)
                        .map(|i| (1_700_000_000_000 + i * h, 70.0 + i as f64 / 2.0))
                        .collect(),
                },
            ],
            bands: vec![(90.0, 120.0), (60.0, 80.0)],
        }
    }

    #[test]
    fn the_shaded_band_is_the_subjects_own() {
        assert_eq!(normal_bands("heart_rate", &[""], Some(48), None), vec![(100.0, 180.0)]);
        assert_eq!(
            normal_bands("heart_rate", &[""], Some(40 * 365), None),
            vec![(51.0, 91.0)]
        );
        assert_eq!(normal_bands("heart_rate", &[""], None, None), vec![(51.0, 91.0)]);
        assert_eq!(
            normal_bands("blood_pressure", &["systolic", "diastolic"], None, None),
            vec![(91.0, 120.0), (f64::NEG_INFINITY, 80.0)]
        );
        assert_eq!(
            normal_bands("body_temperature", &[""], Some(48), None),
            vec![(35.0, 38.0)]
        );
        assert_eq!(normal_bands("spo2", &[""], Some(10), None), Vec::<(f64, f64)>::new());
        assert_eq!(normal_bands("steps", &[""], None, None), Vec::<(f64, f64)>::new());
        let mut c = bp();
        c.bands = normal_bands("blood_pressure", &["systolic", "diastolic"], None, None);
        let doc = render(&c);
        well_formed(&doc).unwrap();
        assert!(numbers_finite(&doc));
        assert_eq!(doc.matches(r#"class="normal-range""#).count(), 2);
        assert!(doc.contains("normal range below 80.00"));
    }

    #[test]
    fn well_formed_with_band_series_and_legend() {
        let doc = render(&bp());
        let tags = well_formed(&doc).unwrap();
        assert_eq!(tags.iter().filter(|t| *t == "polyline").count(), 2);
        assert_eq!(doc.matches(r#"class="normal-range""#).count(), 2);
        assert_eq!(doc.matches(r#"class="legend""#).count(), 2);
        assert!(numbers_finite(&doc));
        assert!(doc.contains("Ann &lt;script&gt;&amp;&quot;x&quot;"));
        assert!(!doc.contains("<script"));
        assert!(doc.contains("mm[Hg]"));
        assert!(!doc.contains(EMPTY_MESSAGE));
    }

    #[test]
    fn empty_state() {
        let mut c = bp();
        c.series.iter_mut().for_each(|s| s.points.clear());
        let doc = render(&c);
        well_formed(&doc).unwrap();
        assert!(doc.contains(EMPTY_MESSAGE));
        assert!(!doc.contains("<polyline"));
        assert!(doc.contains(r#"class="normal-range""#));
    }

    #[test]
    fn degenerate_inputs_stay_finite() {
        let cases = [
            Chart {
                title: String::new(),
                unit: "/min".into(),
                from_ms: 5,
                to_ms: 5,
                series: vec![Series {
                    label: "x".into(),
                    points: vec![(5, 70.0), (5, f64::NAN), (5, f64::INFINITY)],
                }],
                bands: Vec::new(),
            },
            Chart {
                title: "flat\u{1}".into(),
                unit: "%".into(),
                from_ms: 0,
                to_ms: 1000 * 86_400_000,
                series: vec![Series {
                    label: "spo2".into(),
                    points: vec![(0, 98.0), (86_400_000, 98.0)],
                }],
                bands: vec![(f64::NAN, 100.0)],
            },
        ];
        for c in cases {
            let doc = render(&c);
            well_formed(&doc).unwrap();
            assert!(numbers_finite(&doc), "{doc}");
            assert!(!doc.contains('\u{1}'));
        }
    }

    #[test]
    fn checker_rejects_broken_documents() {
        assert!(well_formed(r#"<?xml version="1.0" encoding="UTF-8"?><svg><g></svg>"#).is_err());
        assert!(well_formed(r#"<?xml version="1.0" encoding="UTF-8"?><svg>a < b</svg>"#).is_err());
        assert!(well_formed(r#"<?xml version="1.0" encoding="UTF-8"?><svg>a & b</svg>"#).is_err());
    }

    #[test]
    fn ticks() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(1.0, 4.0), 0.5);
        let (t, _) = time_ticks(0, 86_400_000);
        assert!(t.len() >= 3 && t.len() <= 9, "{t:?}");
        assert!(t.iter().all(|x| (0..=86_400_000).contains(x)));
    }
}
