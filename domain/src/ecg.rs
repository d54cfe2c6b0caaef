//! Single-lead ECG recordings: the CSV format they are uploaded in, and QRS
//! (R-peak) detection with the algorithm of Pan and Tompkins ("A Real-Time
//! QRS Detection Algorithm", IEEE Trans. Biomed. Eng. 32(3), 1985), from
//! which the heart rate follows.
//!
//! # The CSV format
//!
//! UTF-8 text, one sample per line, values in millivolts:
//!
//! ```text
//! # sampling_rate_hz=250
//! # start=2026-11-21T08:00:00Z
//! mv
//! 0.012
//! -0.034
//! ```
//!
//! - Lines starting with `#` are `key=value` settings: `sampling_rate_hz`
//!   (a number, 50 to 1000) and `start` (optional, RFC 3339, the time of
//!   the first sample). Unknown keys are refused so a typo is not ignored.
//! - An optional column header line: `mv`, or `t,mv`.
//! - Data lines: `mv`, or `t,mv` where `t` is the time in seconds since the
//!   first sample. With a `t` column the sampling rate may be left out; it
//!   is derived from `t`, whose steps must then be even (within 10%).
//! - Blank lines are skipped. At most 10 minutes of samples, at least 2
//!   seconds (the detector learns its thresholds from the first 2 seconds).
//!
//! Errors name the 1-based line they were found on.
//!
//! # Detection
//!
//! The published steps, adapted to any sampling rate and run offline, so
//! each filter runs forward and backward (zero phase) instead of carrying
//! the real-time version's fixed delays:
//!
//! 1. band-pass 5–15 Hz (second-order Butterworth high- and low-pass);
//! 2. five-point derivative, squared;
//! 3. moving-window integration over 150 ms;
//! 4. candidate peaks of the integrated signal, each the largest within the
//!    200 ms refractory period on either side;
//! 5. adaptive thresholds from running signal and noise peak estimates
//!    (`SPKI`, `NPKI`), learned over the first 2 seconds;
//! 6. a candidate within 360 ms of the last beat whose steepest slope is
//!    less than half that beat's is a T wave;
//! 7. search-back: when no beat was found for 166% of the average RR
//!    interval, the largest skipped candidate above the lower threshold is
//!    taken as the missed beat.
//!
//! The R peak is then placed at the largest absolute value of the band-passed
//! signal within 75 ms of the integrated peak. Only the integrated signal's
//! thresholds are used (the original also thresholds the band-passed
//! signal); an absolute floor on the band-passed amplitude keeps pure noise
//! from being counted as beats.

use std::fmt;

/// Lowest and highest accepted sampling rates. Below 50 Hz the 15 Hz
/// band edge is too close to Nyquist for the filters to mean anything.
pub const MIN_RATE_HZ: f64 = 50.0;
pub const MAX_RATE_HZ: f64 = 1000.0;
/// Longest recording accepted, in seconds.
pub const MAX_DURATION_S: f64 = 600.0;
/// Shortest recording accepted, in seconds: the learning phase.
pub const MIN_DURATION_S: f64 = 2.0;
/// Most samples in a recording: 10 minutes at the highest rate.
pub const MAX_SAMPLES: usize = 600_000;

const REFRACTORY_S: f64 = 0.2;
const T_WAVE_WINDOW_S: f64 = 0.36;
const INTEGRATION_S: f64 = 0.15;
const LEARNING_S: f64 = 2.0;
/// A QRS complex smaller than this (band-passed, in mV) is not a beat.
const MIN_QRS_MV: f64 = 0.08;
/// Plausible values beyond which a sample is a file error, not a signal.
const MAX_ABS_MV: f64 = 100.0;

/// A parsed recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub sampling_rate_hz: f64,
    /// The time of the first sample, in ms since the epoch, when stated.
    pub start_ms: Option<i64>,
    /// Samples in millivolts.
    pub samples: Vec<f64>,
}

impl Recording {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.sampling_rate_hz
    }
}

/// Why a file is not a recording, with the 1-based line (0: the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

// Errors name the line and the field, never what the file holds there:
// the recording is health data, and the error goes back to whoever asked,
// who may not be allowed to read the file itself.
fn number(line: usize, what: &str, text: &str) -> Result<f64, ParseError> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(err(line, format!("{what} must be a number"))),
    }
}

/// Parses a recording in the format described at the top of this module.
pub fn parse_csv(text: &str) -> Result<Recording, ParseError> {
    let mut rate: Option<(usize, f64)> = None;
    let mut start_ms = None;
    let mut columns: Option<usize> = None;
    let mut samples = Vec::new();
    let mut times: Vec<(usize, f64)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(setting) = line.strip_prefix('#') {
            if !samples.is_empty() {
                return Err(err(line_no, "settings must come before the samples"));
            }
            let (key, value) = setting
                .split_once('=')
                .ok_or_else(|| err(line_no, "a setting must read `# key=value`"))?;
            match key.trim() {
                "sampling_rate_hz" => {
                    let hz = number(line_no, "sampling_rate_hz", value)?;
                    if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&hz) {
                        return Err(err(
                            line_no,
                            format!("sampling_rate_hz must be between {MIN_RATE_HZ} and {MAX_RATE_HZ}"),
                        ));
                    }
                    rate = Some((line_no, hz));
                }
                "start" => {
                    let t = chrono::DateTime::parse_from_rfc3339(value.trim())
                        .map_err(|_| err(line_no, "start must be an RFC 3339 time such as 2026-11-21T08:00:00Z"))?;
                    start_ms = Some(t.timestamp_millis());
                }
                _ => {
                    return Err(err(
                        line_no,
                        "unknown setting; the known ones are sampling_rate_hz and start",
                    ));
                }
            }
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if columns.is_none() && samples.is_empty() && fields.iter().all(|f| f.chars().all(char::is_alphabetic)) {
            match fields.as_slice() {
                ["mv"] => columns = Some(1),
                ["t", "mv"] => columns = Some(2),
                _ => return Err(err(line_no, "the column header must be `mv` or `t,mv`")),
            }
            continue;
        }
        let want = *columns.get_or_insert(fields.len());
        if fields.len() != want || !(1..=2).contains(&fields.len()) {
            return Err(err(
                line_no,
                format!("expected {want} column(s) (`mv` or `t,mv`), found {}", fields.len()),
            ));
        }
        if samples.len() >= MAX_SAMPLES {
            return Err(err(line_no, format!("at most {MAX_SAMPLES} samples")));
        }
        if want == 2 {
            let t = number(line_no, "t", fields[0])?;
            if let Some(&(_, prev)) = times.last()
                && t <= prev
            {
                return Err(err(line_no, "t must increase from line to line"));
            }
            times.push((line_no, t));
        }
        let mv = number(line_no, "mv", fields[want - 1])?;
        if mv.abs() > MAX_ABS_MV {
            return Err(err(line_no, format!("mv must be within ±{MAX_ABS_MV}")));
        }
        samples.push(mv);
    }
    let hz = match (rate, times.as_slice()) {
        (Some((_, hz)), _) => hz,
        (None, [(_, first), .., (_, last)]) => {
            let hz = (times.len() - 1) as f64 / (last - first);
            if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&hz) {
                return Err(err(
                    0,
                    format!(
                        "the sampling rate derived from t ({hz:.1} Hz) must be between {MIN_RATE_HZ} and {MAX_RATE_HZ}"
                    ),
                ));
            }
            hz
        }
        (None, _) => {
            return Err(err(
                0,
                "the sampling rate is missing: add `# sampling_rate_hz=...` or a `t` column",
            ));
        }
    };
    let step = 1.0 / hz;
    for pair in times.windows(2) {
        let ((_, p), (line, t)) = (pair[0], pair[1]);
        if ((t - p) - step).abs() > 0.1 * step {
            return Err(err(line, format!("t must step evenly by 1/{hz:.1} s")));
        }
    }
    let duration = samples.len() as f64 / hz;
    if duration > MAX_DURATION_S + 1e-9 {
        return Err(err(0, format!("at most {} minutes of samples", MAX_DURATION_S / 60.0)));
    }
    if duration < MIN_DURATION_S {
        return Err(err(0, format!("at least {MIN_DURATION_S} seconds of samples")));
    }
    Ok(Recording {
        sampling_rate_hz: hz,
        start_ms,
        samples,
    })
}

/// The beats found in a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Sample index of each R peak, in order.
    pub r_peaks: Vec<usize>,
    /// The intervals between consecutive R peaks, in ms.
    pub rr_ms: Vec<f64>,
    /// Mean heart rate over the beats (60000 / mean RR), with the slowest
    /// and fastest beat-to-beat rates; none with fewer than two beats.
    pub heart_rate_bpm: Option<f64>,
    pub hr_min: Option<f64>,
    pub hr_max: Option<f64>,
}

/// A second-order section (RBJ audio-EQ cookbook form).
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

impl Biquad {
    fn butterworth(fs: f64, cutoff: f64, high: bool) -> Self {
        let w0 = 2.0 * std::f64::consts::PI * cutoff / fs;
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        let b = if high {
            [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0]
        } else {
            [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0]
        };
        Biquad {
            b: [b[0] / a0, b[1] / a0, b[2] / a0],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
        }
    }

    fn run(&self, x: &mut [f64]) {
        let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
        for v in x.iter_mut() {
            let x0 = *v;
            let y0 = self.b[0] * x0 + self.b[1] * x1 + self.b[2] * x2 - self.a[0] * y1 - self.a[1] * y2;
            x2 = x1;
            x1 = x0;
            y2 = y1;
            y1 = y0;
            *v = y0;
        }
    }

    /// Forward and backward: no phase shift, so peaks stay where they are.
    fn zero_phase(&self, x: &mut [f64]) {
        self.run(x);
        x.reverse();
        self.run(x);
        x.reverse();
    }
}

fn band_pass(samples: &[f64], fs: f64) -> Vec<f64> {
    let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
    let mut x: Vec<f64> = samples.iter().map(|v| v - mean).collect();
    Biquad::butterworth(fs, 5.0, true).zero_phase(&mut x);
    Biquad::butterworth(fs, 15.0, false).zero_phase(&mut x);
    x
}

/// The five-point derivative of the paper, centred.
fn derivative(x: &[f64], fs: f64) -> Vec<f64> {
    let at = |i: isize| -> f64 { usize::try_from(i).ok().and_then(|i| x.get(i)).copied().unwrap_or(0.0) };
    (0..x.len())
        .map(|i| {
            let i = i as isize;
            (2.0 * at(i + 1) + at(i + 2) - at(i - 2) - 2.0 * at(i - 1)) * fs / 8.0
        })
        .collect()
}

/// The centred moving average of `x` over `width` samples.
fn integrate(x: &[f64], width: usize) -> Vec<f64> {
    let half = width / 2;
    let mut prefix = Vec::with_capacity(x.len() + 1);
    prefix.push(0.0);
    for v in x {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + v);
    }
    (0..x.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(x.len());
            (prefix[hi] - prefix[lo]) / width as f64
        })
        .collect()
}

/// Local maxima of `x`, each the largest within `reach` samples.
fn candidates(x: &[f64], reach: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 1..x.len().saturating_sub(1) {
        if !(x[i] > x[i - 1] && x[i] >= x[i + 1]) {
            continue;
        }
        let lo = i.saturating_sub(reach);
        let hi = (i + reach + 1).min(x.len());
        // Ties go to the first index, so a plateau yields one candidate.
        let largest = x[lo..i].iter().all(|v| *v < x[i]) && x[i + 1..hi].iter().all(|v| *v <= x[i]);
        if largest {
            out.push(i);
        }
    }
    out
}

fn max_abs_in(x: &[f64], centre: usize, reach: usize) -> (usize, f64) {
    let lo = centre.saturating_sub(reach);
    let hi = (centre + reach + 1).min(x.len());
    let mut best = (centre, 0.0);
    for (i, v) in x.iter().enumerate().take(hi).skip(lo) {
        if v.abs() > best.1 {
            best = (i, v.abs());
        }
    }
    best
}

struct Beat {
    /// Index of the integrated peak.
    at: usize,
    slope: f64,
}

/// Finds the R peaks of `samples` (mV) sampled at `fs` Hz.
pub fn detect(samples: &[f64], fs: f64) -> Detection {
    let secs = |s: f64| ((s * fs).round() as usize).max(1);
    let filtered = band_pass(samples, fs);
    let slope = derivative(&filtered, fs);
    let squared: Vec<f64> = slope.iter().map(|d| d * d).collect();
    let integrated = integrate(&squared, secs(INTEGRATION_S));
    let refractory = secs(REFRACTORY_S);
    let half_window = secs(INTEGRATION_S / 2.0);

    let learning = secs(LEARNING_S).min(integrated.len());
    let first = &integrated[..learning];
    let mut spki = 0.25 * first.iter().copied().fold(0.0, f64::max);
    let mut npki = 0.5 * first.iter().sum::<f64>() / learning.max(1) as f64;

    let mut beats: Vec<Beat> = Vec::new();
    // Candidates classified as noise since the last beat, for search-back.
    let mut skipped: Vec<usize> = Vec::new();
    let mut rr: Vec<usize> = Vec::new();

    for peak in candidates(&integrated, refractory) {
        let value = integrated[peak];
        let (_, amplitude) = max_abs_in(&filtered, peak, half_window);
        if amplitude < MIN_QRS_MV {
            continue;
        }
        // Search-back: a beat overdue by 166% of the average RR was missed.
        if let Some(last) = beats.last().map(|b| b.at)
            && !rr.is_empty()
        {
            let recent = &rr[rr.len().saturating_sub(8)..];
            let average = recent.iter().sum::<usize>() as f64 / recent.len() as f64;
            if (peak - last) as f64 > 1.66 * average {
                let threshold2 = 0.5 * (npki + 0.25 * (spki - npki));
                let missed = skipped
                    .iter()
                    .copied()
                    .filter(|&s| s >= last + refractory && integrated[s] > threshold2)
                    .max_by(|a, b| integrated[*a].total_cmp(&integrated[*b]));
                if let Some(m) = missed {
                    spki = 0.25 * integrated[m] + 0.75 * spki;
                    rr.push(m - last);
                    beats.push(Beat {
                        at: m,
                        slope: max_abs_in(&slope, m, half_window).1,
                    });
                    skipped.retain(|&s| s > m);
                }
            }
        }
        let threshold1 = npki + 0.25 * (spki - npki);
        let peak_slope = max_abs_in(&slope, peak, half_window).1;
        let is_beat = value > threshold1
            && match beats.last() {
                Some(last) if peak - last.at < refractory => false,
                Some(last) if peak - last.at < secs(T_WAVE_WINDOW_S) => peak_slope >= 0.5 * last.slope,
                _ => true,
            };
        if is_beat {
            spki = 0.125 * value + 0.875 * spki;
            if let Some(last) = beats.last() {
                rr.push(peak - last.at);
            }
            beats.push(Beat {
                at: peak,
                slope: peak_slope,
            });
            skipped.clear();
        } else {
            npki = 0.125 * value + 0.875 * npki;
            skipped.push(peak);
        }
    }

    let r_peaks: Vec<usize> = beats
        .iter()
        .map(|b| max_abs_in(&filtered, b.at, half_window).0)
        .collect();
    summarise(r_peaks, fs)
}

fn summarise(r_peaks: Vec<usize>, fs: f64) -> Detection {
    let rr_ms: Vec<f64> = r_peaks.windows(2).map(|w| (w[1] - w[0]) as f64 * 1000.0 / fs).collect();
    let (heart_rate_bpm, hr_min, hr_max) = if rr_ms.is_empty() {
        (None, None, None)
    } else {
        let mean = rr_ms.iter().sum::<f64>() / rr_ms.len() as f64;
        let longest = rr_ms.iter().copied().fold(f64::MIN, f64::max);
        let shortest = rr_ms.iter().copied().fold(f64::MAX, f64::min);
        (
            Some(60_000.0 / mean),
            Some(60_000.0 / longest),
            Some(60_000.0 / shortest),
        )
    };
    Detection {
        r_peaks,
        rr_ms,
        heart_rate_bpm,
        hr_min,
        hr_max,
    }
}

/// Synthetic ECGs with known beats, for tests here and of the API.
pub mod synthetic {
    /// A P-QRS-T complex as Gaussians `(offset from R in s, width in s,
    /// amplitude in mV)`; the T wave moves with the RR interval.
    fn waves(rr_s: f64) -> [(f64, f64, f64); 5] {
        let t_offset = 0.16 + 0.12 * rr_s;
        [
            (-0.16, 0.025, 0.15),
            (-0.025, 0.008, -0.12),
            (0.0, 0.010, 1.2),
            (0.025, 0.008, -0.25),
            (t_offset, 0.04, 0.3),
        ]
    }

    /// A small deterministic generator, so tests need no dependency.
    pub struct Noise(u64);

    impl Noise {
        pub fn new(seed: u64) -> Self {
            Noise(seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1))
        }

        /// Uniform in [0, 1).
        pub fn uniform(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Standard normal (Box-Muller).
        pub fn gauss(&mut self) -> f64 {
            let u = self.uniform().max(1e-12);
            let v = self.uniform();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    /// An ECG of `duration_s` at `fs` Hz with R peaks at `beats_s`, plus
    /// 0.3 mV of 0.25 Hz baseline wander, 0.05 mV of 50 Hz mains and
    /// Gaussian noise of `noise_mv` standard deviation.
    pub fn ecg(fs: f64, duration_s: f64, beats_s: &[f64], noise_mv: f64, seed: u64) -> Vec<f64> {
        let n = (duration_s * fs) as usize;
        let mut noise = Noise::new(seed);
        let mut out: Vec<f64> = (0..n)
            .map(|i| {
                let t = i as f64 / fs;
                0.3 * (2.0 * std::f64::consts::PI * 0.25 * t).sin()
                    + 0.05 * (2.0 * std::f64::consts::PI * 50.0 * t).sin()
                    + noise_mv * noise.gauss()
            })
            .collect();
        for (k, &beat) in beats_s.iter().enumerate() {
            let rr = match (k.checked_sub(1).map(|p| beats_s[p]), beats_s.get(k + 1)) {
                (_, Some(next)) => next - beat,
                (Some(prev), None) => beat - prev,
                (None, None) => 1.0,
            };
            for (offset, width, amplitude) in waves(rr) {
                let centre = beat + offset;
                let lo = (((centre - 4.0 * width) * fs).floor().max(0.0)) as usize;
                let hi = (((centre + 4.0 * width) * fs).ceil().max(0.0) as usize).min(n);
                for (i, v) in out.iter_mut().enumerate().take(hi).skip(lo) {
                    let d = (i as f64 / fs - centre) / width;
                    *v += amplitude * (-0.5 * d * d).exp();
                }
            }
        }
        out
    }

    /// Beat times from `first_s` on, the rate moving linearly from
    /// `from_bpm` to `to_bpm` over `duration_s`; beats end 0.5 s before it.
    pub fn beats(duration_s: f64, first_s: f64, from_bpm: f64, to_bpm: f64) -> Vec<f64> {
        let mut out = Vec::new();
        let mut t = first_s;
        while t < duration_s - 0.5 {
            out.push(t);
            let bpm = from_bpm + (to_bpm - from_bpm) * t / duration_s;
            t += 60.0 / bpm;
        }
        out
    }

    /// `samples` as the one-column CSV format.
    pub fn csv(fs: f64, samples: &[f64]) -> String {
        let mut s = format!("# sampling_rate_hz={fs}\nmv\n");
        for v in samples {
            s.push_str(&format!("{v:.4}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::synthetic::{beats, csv, ecg};
    use super::*;
    use proptest::prelude::*;

    /// Every known beat found within `tolerance` samples, and nothing else.
    fn assert_matches(found: &[usize], beats_s: &[f64], fs: f64, tolerance: usize) {
        let expected: Vec<usize> = beats_s.iter().map(|t| (t * fs).round() as usize).collect();
        assert_eq!(found.len(), expected.len(), "found {found:?}, expected {expected:?}");
        for (f, e) in found.iter().zip(&expected) {
            assert!(
                f.abs_diff(*e) <= tolerance,
                "found {f}, expected {e}: {found:?} vs {expected:?}"
            );
        }
    }

    #[test]
    fn finds_every_beat_from_60_to_120_bpm() {
        let fs = 250.0;
        let times = beats(60.0, 0.6, 60.0, 120.0);
        let signal = ecg(fs, 60.0, &times, 0.03, 7);
        let d = detect(&signal, fs);
        // ±2 samples: 8 ms at 250 Hz.
        assert_matches(&d.r_peaks, &times, fs, 2);
        let hr = d.heart_rate_bpm.unwrap();
        let expected = 60.0 * (times.len() - 1) as f64 / (times[times.len() - 1] - times[0]);
        assert!((hr - expected).abs() < 1.0, "{hr} vs {expected}");
        assert!(d.hr_min.unwrap() > 58.0 && d.hr_min.unwrap() < 63.0, "{:?}", d.hr_min);
        assert!(d.hr_max.unwrap() > 112.0 && d.hr_max.unwrap() < 122.0, "{:?}", d.hr_max);
        assert_eq!(d.rr_ms.len(), d.r_peaks.len() - 1);
    }

    #[test]
    fn works_at_other_sampling_rates() {
        for fs in [100.0, 360.0, 500.0, 1000.0] {
            let times = beats(20.0, 0.4, 75.0, 75.0);
            let signal = ecg(fs, 20.0, &times, 0.02, 3);
            let tolerance = (fs * 0.008).ceil() as usize;
            assert_matches(&detect(&signal, fs).r_peaks, &times, fs, tolerance);
        }
    }

    #[test]
    fn a_flat_line_has_no_beats() {
        let d = detect(&vec![0.4; 2500], 250.0);
        assert!(d.r_peaks.is_empty());
        assert_eq!(d.heart_rate_bpm, None);
        let mut noise = synthetic::Noise::new(1);
        let quiet: Vec<f64> = (0..2500).map(|_| 0.01 * noise.gauss()).collect();
        assert!(detect(&quiet, 250.0).r_peaks.is_empty());
    }

    #[test]
    fn search_back_recovers_a_small_beat() {
        let fs = 250.0;
        let times = beats(20.0, 0.5, 70.0, 70.0);
        let mut signal = ecg(fs, 20.0, &times, 0.01, 5);
        // Shrink one complex to a fifth: under the main threshold.
        let k = times.len() / 2;
        let centre = (times[k] * fs) as usize;
        for v in &mut signal[centre - 30..centre + 30] {
            *v *= 0.45;
        }
        assert_matches(&detect(&signal, fs).r_peaks, &times, fs, 2);
    }

    #[test]
    fn parses_the_one_column_form() {
        let r = parse_csv(
            "# sampling_rate_hz=250\n# start=2026-11-21T08:00:00Z\nmv\n"
                .to_owned()
                .as_str(),
        );
        assert_eq!(r.unwrap_err().message, "at least 2 seconds of samples");
        let text = csv(250.0, &vec![0.1; 600]);
        let r = parse_csv(&text).unwrap();
        assert_eq!(r.sampling_rate_hz, 250.0);
        assert_eq!(r.samples.len(), 600);
        assert_eq!(r.start_ms, None);
        let with_start = format!("# start=2026-11-21T08:00:00Z\n{text}");
        assert_eq!(parse_csv(&with_start).unwrap().start_ms, Some(1_795_248_000_000));
    }

    #[test]
    fn derives_the_rate_from_t() {
        let mut text = String::from("t,mv\n");
        for i in 0..1000 {
            text.push_str(&format!("{},{}\n", f64::from(i) / 200.0, 0.0));
        }
        let r = parse_csv(&text).unwrap();
        assert!((r.sampling_rate_hz - 200.0).abs() < 1e-6);
        assert_eq!(r.samples.len(), 1000);
    }

    #[test]
    fn errors_never_echo_the_file() {
        let secret = "PATIENT-SECRET-Ana-diagnosis";
        for text in [
            format!("# sampling_rate_hz=250\nmv\n{secret}\n"),
            format!("# {secret}=1\n"),
            format!("# sampling_rate_hz={secret}\n"),
            format!("t,mv\n{secret},1\n"),
        ] {
            let e = parse_csv(&text).unwrap_err();
            assert!(!e.to_string().contains("PATIENT"), "{e}");
            assert!(!e.to_string().contains("Ana"), "{e}");
        }
    }

    #[test]
    fn refuses_malformed_files_by_line() {
        let base = "# sampling_rate_hz=250\nmv\n0.1\n";
        let cases = [
            (format!("{base}abc1\n"), 4, "mv must be a number"),
            (format!("{base}0.1,0.2\n"), 4, "expected 1 column"),
            ("# sampling_rate_hz=20\n".to_owned(), 1, "between"),
            ("# rate=20\n".to_owned(), 1, "unknown setting"),
            ("# start=yesterday\n".to_owned(), 1, "RFC 3339"),
            ("nonsense\n".to_owned(), 1, "column header"),
            (format!("{base}1e9\n"), 4, "within"),
            (format!("{base}NaN\n"), 4, "must be a number"),
            ("t,mv\n0,1\n0.005,1\n0.004,1\n".to_owned(), 4, "increase"),
            (
                "# sampling_rate_hz=200\nt,mv\n0,1\n0.005,1\n0.02,1\n".to_owned(),
                5,
                "evenly",
            ),
        ];
        for (text, line, needle) in cases {
            let e = parse_csv(&text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
        assert_eq!(parse_csv("mv\n0.1\n").unwrap_err().line, 0);
        let long = csv(1000.0, &vec![0.0; MAX_SAMPLES + 1]);
        assert!(parse_csv(&long).unwrap_err().message.contains("at most"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn finds_beats_at_any_rate_from_40_to_180_bpm(bpm in 40.0f64..180.0, seed in 0u64..1000, fs in prop::sample::select(vec![250.0, 360.0, 500.0])) {
            let times = beats(30.0, 0.5, bpm, bpm);
            let signal = ecg(fs, 30.0, &times, 0.03, seed);
            let d = detect(&signal, fs);
            let tolerance = (fs * 0.008).ceil() as usize;
            assert_matches(&d.r_peaks, &times, fs, tolerance);
            let hr = d.heart_rate_bpm.unwrap();
            prop_assert!((hr - bpm).abs() < 0.02 * bpm, "{} vs {}", hr, bpm);
        }
    }
}
