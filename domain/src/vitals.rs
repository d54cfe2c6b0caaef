//! Realistic, reproducible vital signs for simulated subjects: what
//! `vitalfarm simulate`, the demo and the ingest benchmark send.
//!
//! Each subject gets a [`SubjectProfile`] (an age band and baselines, some
//! subjects hypertensive or diabetic) and a [`Generator`] that turns a metric
//! and a moment into a [`Sample`]. Curves follow the subject's local day: a
//! circadian rhythm (lowest heart rate and temperature around 04:30, highest
//! in the late afternoon), sleep, activity bursts, meals, and the occasional
//! fever episode or SpO2 dip, with measurement noise on top.
//!
//! Everything is seeded: episodes (activity, meals, fevers, dips) are pure
//! functions of the generator's seed and the time, and noise comes from the
//! generator's own small PRNG, so the same seed and the same calls give the
//! same readings on every machine. No external RNG crate, because the domain
//! crate stays free of I/O and heavy dependencies. Every value produced is
//! inside the catalog's plausible range, so a simulated reading is never
//! rejected by [`crate::metrics::normalize`].

use std::f64::consts::{PI, TAU};

use crate::subject::Sex;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The golden-ratio increment of splitmix64.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 finaliser: a cheap, well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of `(seed, stream, n)`: the same inputs always give the same
/// episode, whatever was sampled before.
fn hash(seed: u64, stream: u64, n: i64) -> u64 {
    mix(mix(seed ^ stream.wrapping_mul(GOLDEN)) ^ n as u64)
}

/// A uniform number in `[0, 1)` from 64 random bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Derives an independent seed from a parent seed and an index, e.g. one per
/// simulated device from the run's seed.
pub fn derive_seed(seed: u64, index: u64) -> u64 {
    mix(mix(seed) ^ index.wrapping_mul(GOLDEN))
}

/// A small, fast, seedable PRNG (splitmix64). Not for secrets: it only has
/// to be reproducible and statistically decent for noise.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A standard normal deviate (Box–Muller), cut at ±4 so that one
    /// unlucky draw cannot push a value far outside physiology.
    pub fn normal(&mut self) -> f64 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        ((-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()).clamp(-4.0, 4.0)
    }
}

/// The metrics the generator can produce: every numeric metric of the
/// catalog. ECG is a waveform kept as a farm file, never a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vital {
    HeartRate,
    BloodPressure,
    BodyTemperature,
    Spo2,
    RespiratoryRate,
    BloodGlucose,
    BodyWeight,
    Steps,
}

impl Vital {
    pub const ALL: [Vital; 8] = [
        Vital::HeartRate,
        Vital::BloodPressure,
        Vital::BodyTemperature,
        Vital::Spo2,
        Vital::RespiratoryRate,
        Vital::BloodGlucose,
        Vital::BodyWeight,
        Vital::Steps,
    ];

    /// The catalog code.
    pub const fn code(self) -> &'static str {
        match self {
            Vital::HeartRate => "heart_rate",
            Vital::BloodPressure => "blood_pressure",
            Vital::BodyTemperature => "body_temperature",
            Vital::Spo2 => "spo2",
            Vital::RespiratoryRate => "respiratory_rate",
            Vital::BloodGlucose => "blood_glucose",
            Vital::BodyWeight => "body_weight",
            Vital::Steps => "steps",
        }
    }

    /// The catalog's canonical unit, which every sample is given in.
    pub const fn unit(self) -> &'static str {
        match self {
            Vital::HeartRate | Vital::RespiratoryRate => "/min",
            Vital::BloodPressure => "mm[Hg]",
            Vital::BodyTemperature => "Cel",
            Vital::Spo2 => "%",
            Vital::BloodGlucose => "mg/dL",
            Vital::BodyWeight => "kg",
            Vital::Steps => "{steps}",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.code() == code)
    }
}

/// A measured value: one number, or named components (blood pressure).
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    Scalar(f64),
    Components(Vec<(&'static str, f64)>),
}

/// One simulated measurement, in the metric's canonical unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The catalog code, e.g. `heart_rate`.
    pub metric: &'static str,
    pub value: SampleValue,
    pub unit: &'static str,
}

impl Sample {
    /// The value of a scalar metric.
    pub fn scalar(&self) -> Option<f64> {
        match self.value {
            SampleValue::Scalar(v) => Some(v),
            SampleValue::Components(_) => None,
        }
    }

    /// The components of a component metric.
    pub fn components(&self) -> Option<&[(&'static str, f64)]> {
        match &self.value {
            SampleValue::Scalar(_) => None,
            SampleValue::Components(c) => Some(c),
        }
    }
}

/// Age bands with their own physiology: an infant's resting heart rate is
/// twice an adult's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgeBand {
    /// Under 2 years.
    Infant,
    /// 2 to 12 years.
    Child,
    /// 13 to 64 years.
    Adult,
    /// 65 years and older.
    Senior,
}

impl AgeBand {
    pub const fn of(age_years: u32) -> Self {
        match age_years {
            0..=1 => AgeBand::Infant,
            2..=12 => AgeBand::Child,
            13..=64 => AgeBand::Adult,
            _ => AgeBand::Senior,
        }
    }
}

/// Default chance that a fever episode starts on a given day: a few a year
/// for adults, more for small children.
pub const ADULT_FEVER_PER_DAY: f64 = 1.0 / 120.0;
pub const CHILD_FEVER_PER_DAY: f64 = 1.0 / 40.0;

/// Who a simulated subject is: baselines the generator varies around.
/// Fields are public so that a demo or a test can pin one (e.g. a higher
/// fever rate); [`SubjectProfile::random`] fills them plausibly.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectProfile {
    pub age_years: u32,
    pub sex: Sex,
    /// The subject's offset from UTC; the circadian rhythm follows local time.
    pub utc_offset_minutes: i32,
    /// Local hours the subject wakes up and goes to bed (bed may be past 24).
    pub wake_hour: f64,
    pub bed_hour: f64,
    /// Awake, at rest, mid-morning.
    pub resting_heart_rate: f64,
    pub systolic: f64,
    pub diastolic: f64,
    pub hypertensive: bool,
    pub diabetic: bool,
    /// Core temperature at the circadian mean, °C.
    pub temperature: f64,
    pub spo2: f64,
    pub respiratory_rate: f64,
    /// mg/dL.
    pub fasting_glucose: f64,
    pub weight_kg: f64,
    /// Scales how often activity bursts happen (0.5 sedentary to 1.5 sporty).
    pub activity: f64,
    /// Steps per minute while awake and not exercising.
    pub walking_cadence: f64,
    /// Frequent SpO2 dips during sleep.
    pub sleep_apnea: bool,
    /// Chance that a fever episode starts on a given local day.
    pub fever_per_day: f64,
}

impl SubjectProfile {
    /// A random adult or senior (18 to 90 years), the kind of subject a
    /// company's monitoring programme enrols.
    pub fn random(seed: u64) -> Self {
        let mut rng = Rng::new(derive_seed(seed, 0xA6E));
        // Skewed towards older subjects, as remote monitoring is.
        let age = 18 + (72.0 * rng.next_f64().sqrt()) as u32;
        Self::with_age(age, seed)
    }

    /// A random subject of the given age.
    pub fn with_age(age_years: u32, seed: u64) -> Self {
        let mut rng = Rng::new(derive_seed(seed, 0x9F0F11E));
        let band = AgeBand::of(age_years);
        let sex = if rng.chance(0.5) { Sex::Female } else { Sex::Male };
        let female = sex == Sex::Female;
        const OFFSETS: [i32; 8] = [-480, -300, -180, 0, 60, 120, 330, 540];
        let utc_offset_minutes = OFFSETS[(rng.next_u64() % OFFSETS.len() as u64) as usize];

        let (hypertension_rate, diabetes_rate, apnea_rate) = match band {
            AgeBand::Infant | AgeBand::Child => (0.0, 0.0, 0.0),
            AgeBand::Adult => (0.2, 0.08, 0.05),
            AgeBand::Senior => (0.5, 0.2, 0.15),
        };
        let hypertensive = rng.chance(hypertension_rate);
        let diabetic = rng.chance(diabetes_rate);
        let sleep_apnea = rng.chance(apnea_rate);

        let (resting_heart_rate, respiratory_rate) = match band {
            AgeBand::Infant => (rng.range(110.0, 140.0), rng.range(30.0, 40.0)),
            AgeBand::Child => (rng.range(80.0, 100.0), rng.range(18.0, 24.0)),
            AgeBand::Adult => (rng.range(60.0, 80.0), rng.range(12.0, 16.0)),
            AgeBand::Senior => (rng.range(62.0, 78.0), rng.range(14.0, 18.0)),
        };
        let (systolic, diastolic) = match band {
            AgeBand::Infant => (rng.range(75.0, 90.0), rng.range(45.0, 55.0)),
            AgeBand::Child => (rng.range(95.0, 110.0), rng.range(60.0, 70.0)),
            _ if hypertensive => (rng.range(135.0, 160.0), rng.range(85.0, 98.0)),
            AgeBand::Adult => (rng.range(108.0, 124.0), rng.range(68.0, 80.0)),
            AgeBand::Senior => (rng.range(115.0, 130.0), rng.range(70.0, 80.0)),
        };
        let spo2 = match band {
            AgeBand::Senior => rng.range(95.8, 97.5),
            _ => rng.range(96.8, 98.6),
        };
        let fasting_glucose = if diabetic {
            rng.range(125.0, 170.0)
        } else {
            rng.range(80.0, 98.0)
        };
        let weight_kg = match band {
            AgeBand::Infant => 3.5 + 0.55 * (age_years * 12) as f64 + rng.range(-0.5, 1.5),
            AgeBand::Child => 12.0 + 3.0 * (age_years - 2) as f64 + rng.range(-2.0, 4.0),
            _ if female => rng.range(50.0, 95.0),
            _ => rng.range(60.0, 110.0),
        };
        let (wake_hour, bed_hour) = match band {
            AgeBand::Infant => (6.0, 19.5),
            AgeBand::Child => (rng.range(6.5, 7.5), rng.range(19.5, 21.0)),
            _ => (rng.range(6.0, 7.5), rng.range(22.0, 23.8)),
        };
        let walking_cadence = match band {
            AgeBand::Infant => 0.0,
            AgeBand::Senior => rng.range(1.0, 4.0),
            _ => rng.range(2.0, 8.0),
        };
        Self {
            age_years,
            sex,
            utc_offset_minutes,
            wake_hour,
            bed_hour,
            resting_heart_rate,
            systolic,
            diastolic,
            hypertensive,
            diabetic,
            temperature: rng.range(36.6, 36.9),
            spo2,
            respiratory_rate,
            fasting_glucose,
            weight_kg,
            activity: rng.range(0.5, 1.5),
            walking_cadence,
            sleep_apnea,
            fever_per_day: match band {
                AgeBand::Infant | AgeBand::Child => CHILD_FEVER_PER_DAY,
                _ => ADULT_FEVER_PER_DAY,
            },
        }
    }

    pub const fn band(&self) -> AgeBand {
        AgeBand::of(self.age_years)
    }

    fn max_heart_rate(&self) -> f64 {
        match self.band() {
            AgeBand::Infant | AgeBand::Child => 200.0,
            _ => 220.0 - f64::from(self.age_years),
        }
    }
}

// Streams of the episode hash, one per kind of episode.
const ACTIVITY: u64 = 1;
const FEVER: u64 = 2;
const DIP: u64 = 3;
const MEAL: u64 = 4;

/// Length of one activity slot: a burst fills a slot.
const ACTIVITY_SLOT_MS: i64 = 15 * MINUTE_MS;
/// Length of one SpO2 dip slot.
const DIP_SLOT_MS: i64 = 5 * MINUTE_MS;
/// Longest fever episode, in days (an episode may start up to this many
/// days before the moment looked at).
const FEVER_MAX_DAYS: i64 = 2;

/// What the body is doing at one moment, shared by every metric.
struct Moment {
    /// Local hour of day, `[0, 24)`.
    hour: f64,
    /// −1 at 04:30 local, +1 at 16:30.
    circadian: f64,
    awake: bool,
    /// 0 at rest, up to 1 in a hard burst.
    exertion: f64,
    /// °C above the baseline.
    fever: f64,
}

/// Produces one subject's readings. Episodes are functions of the seed and
/// the time, so two generators with the same profile and seed agree, and
/// noise comes from the generator's own stream.
#[derive(Debug, Clone)]
pub struct Generator {
    profile: SubjectProfile,
    episodes: u64,
    noise: Rng,
    last_steps_ms: Option<i64>,
}

impl Generator {
    pub fn new(profile: SubjectProfile, seed: u64) -> Self {
        Self {
            profile,
            episodes: derive_seed(seed, 0xE915),
            noise: Rng::new(derive_seed(seed, 0x401CE)),
            last_steps_ms: None,
        }
    }

    pub fn profile(&self) -> &SubjectProfile {
        &self.profile
    }

    /// A measurement of `vital` taken at `at_ms` (Unix milliseconds).
    pub fn sample(&mut self, vital: Vital, at_ms: i64) -> Sample {
        let m = self.moment(at_ms);
        let value = match vital {
            Vital::HeartRate => SampleValue::Scalar(self.heart_rate(&m)),
            Vital::BloodPressure => {
                let (s, d) = self.blood_pressure(&m);
                SampleValue::Components(vec![("systolic", s), ("diastolic", d)])
            }
            Vital::BodyTemperature => SampleValue::Scalar(self.temperature(&m)),
            Vital::Spo2 => SampleValue::Scalar(self.spo2(&m, at_ms)),
            Vital::RespiratoryRate => SampleValue::Scalar(self.respiratory_rate(&m)),
            Vital::BloodGlucose => SampleValue::Scalar(self.glucose(&m, at_ms)),
            Vital::BodyWeight => SampleValue::Scalar(self.weight(&m, at_ms)),
            Vital::Steps => SampleValue::Scalar(self.steps(at_ms)),
        };
        Sample {
            metric: vital.code(),
            value,
            unit: vital.unit(),
        }
    }

    fn local_ms(&self, at_ms: i64) -> i64 {
        at_ms.saturating_add(i64::from(self.profile.utc_offset_minutes) * MINUTE_MS)
    }

    fn moment(&self, at_ms: i64) -> Moment {
        let local = self.local_ms(at_ms);
        let hour = local.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64;
        Moment {
            hour,
            circadian: -((hour - 4.5) * TAU / 24.0).cos(),
            awake: self.awake(hour),
            exertion: self.exertion(local),
            fever: self.fever(local),
        }
    }

    fn awake(&self, hour: f64) -> bool {
        let p = &self.profile;
        (hour >= p.wake_hour && hour < p.bed_hour.min(24.0)) || hour < p.bed_hour - 24.0
    }

    /// Exercise, a walk, stairs: bursts filling a 15-minute slot, more often
    /// in the late afternoon, almost never during sleep.
    fn exertion(&self, local_ms: i64) -> f64 {
        let slot = local_ms.div_euclid(ACTIVITY_SLOT_MS);
        let slot_start_hour = (slot * ACTIVITY_SLOT_MS).rem_euclid(DAY_MS) as f64 / HOUR_MS as f64;
        let base = if !self.awake(slot_start_hour) {
            0.005
        } else if (16.5..19.5).contains(&slot_start_hour) {
            0.25
        } else {
            0.1
        };
        let h = hash(self.episodes, ACTIVITY, slot);
        if unit(h) < base * self.profile.activity {
            0.3 + 0.7 * unit(mix(h))
        } else {
            0.0
        }
    }

    /// Fever above baseline at `local_ms`: an episode may start on any local
    /// day with the profile's chance, lasts 12 to 48 hours, rises over its
    /// first fifth, holds, and falls over its last third.
    fn fever(&self, local_ms: i64) -> f64 {
        let today = local_ms.div_euclid(DAY_MS);
        let mut worst: f64 = 0.0;
        for day in today - FEVER_MAX_DAYS..=today {
            let h = hash(self.episodes, FEVER, day);
            if unit(h) >= self.profile.fever_per_day {
                continue;
            }
            let onset = day * DAY_MS + (unit(mix(h)) * DAY_MS as f64) as i64;
            let duration = (12.0 + 36.0 * unit(mix(h ^ 1))) * HOUR_MS as f64;
            let peak = 1.5 + 1.0 * unit(mix(h ^ 2));
            let x = (local_ms - onset) as f64 / duration;
            let shape = if !(0.0..1.0).contains(&x) {
                0.0
            } else if x < 0.2 {
                x / 0.2
            } else if x > 2.0 / 3.0 {
                (1.0 - x) * 3.0
            } else {
                1.0
            };
            worst = worst.max(peak * shape);
        }
        worst
    }

    fn heart_rate(&mut self, m: &Moment) -> f64 {
        let p = &self.profile;
        let sleep = if m.awake { 3.0 } else { -5.0 };
        let effort = m.exertion * (p.max_heart_rate() - p.resting_heart_rate) * 0.6;
        let hr = p.resting_heart_rate + 5.0 * m.circadian + sleep + effort + 10.0 * m.fever + 2.0 * self.noise.normal();
        hr.round().clamp(30.0, 230.0)
    }

    fn blood_pressure(&mut self, m: &Moment) -> (f64, f64) {
        let p = &self.profile;
        // Healthy people's pressure dips about 10 % during sleep.
        let (sleep_s, sleep_d) = if m.awake { (0.0, 0.0) } else { (-10.0, -6.0) };
        let s = p.systolic + 4.0 * m.circadian + sleep_s + 25.0 * m.exertion + 4.0 * self.noise.normal();
        let d = p.diastolic + 2.5 * m.circadian + sleep_d + 6.0 * m.exertion + 3.0 * self.noise.normal();
        let s = s.round().clamp(60.0, 230.0);
        let d = d.round().clamp(35.0, 140.0).min(s - 20.0);
        (s, d)
    }

    fn temperature(&mut self, m: &Moment) -> f64 {
        let p = &self.profile;
        let normal = p.temperature + 0.25 * m.circadian + 0.15 * m.exertion + 0.06 * self.noise.normal();
        let normal = normal.clamp(36.3, 37.2);
        ((normal + m.fever) * 10.0).round().clamp(363.0, 415.0) / 10.0
    }

    fn spo2(&mut self, m: &Moment, at_ms: i64) -> f64 {
        let p = &self.profile;
        let slot = self.local_ms(at_ms).div_euclid(DIP_SLOT_MS);
        let dip_chance = match (m.awake, p.sleep_apnea) {
            (true, _) => 0.002,
            (false, false) => 0.01,
            (false, true) => 0.08,
        };
        let h = hash(self.episodes, DIP, slot);
        let value = p.spo2 - 0.4 * m.fever + 0.6 * self.noise.normal();
        if unit(h) < dip_chance {
            (value - 3.0 - 6.0 * unit(mix(h))).round().clamp(85.0, 99.0)
        } else {
            value.round().clamp(95.0, 99.0)
        }
    }

    fn respiratory_rate(&mut self, m: &Moment) -> f64 {
        let p = &self.profile;
        let sleep = if m.awake { 0.0 } else { -1.5 };
        let rr =
            p.respiratory_rate + m.circadian + sleep + 10.0 * m.exertion + 2.0 * m.fever + 0.8 * self.noise.normal();
        rr.round().clamp(8.0, 60.0)
    }

    /// Fasting level, a rise after each meal (peaking 45 minutes after it,
    /// later and higher for diabetics), a little dawn rise, lowered by
    /// exercise.
    fn glucose(&mut self, m: &Moment, at_ms: i64) -> f64 {
        let p = &self.profile;
        let local = self.local_ms(at_ms);
        let today = local.div_euclid(DAY_MS);
        let (peak_min, rise_lo, rise_hi) = if p.diabetic {
            (75.0, 60.0, 110.0)
        } else {
            (45.0, 25.0, 45.0)
        };
        let mut meals = 0.0;
        for day in [today - 1, today] {
            for (i, hour) in [7.5, 12.75, 19.0].into_iter().enumerate() {
                let h = hash(self.episodes, MEAL, day * 3 + i as i64);
                // Some meals are skipped.
                if unit(h) < 0.1 {
                    continue;
                }
                let at = day * DAY_MS + ((hour + unit(mix(h)) - 0.5) * HOUR_MS as f64) as i64;
                let x = (local - at) as f64 / MINUTE_MS as f64 / peak_min;
                if (0.0..8.0).contains(&x) {
                    let rise = rise_lo + (rise_hi - rise_lo) * unit(mix(h ^ 1));
                    meals += rise * x * (1.0 - x).exp();
                }
            }
        }
        let dawn = if (4.0..8.0).contains(&m.hour) {
            5.0 * ((m.hour - 4.0) * PI / 4.0).sin()
        } else {
            0.0
        };
        let g = p.fasting_glucose + meals + dawn - 10.0 * m.exertion + 3.0 * self.noise.normal();
        g.round().clamp(50.0, 400.0)
    }

    /// Slow monthly drift and heavier in the evening than in the morning.
    fn weight(&mut self, m: &Moment, at_ms: i64) -> f64 {
        let p = &self.profile;
        let days = self.local_ms(at_ms) as f64 / DAY_MS as f64;
        let scale = p.weight_kg / 70.0;
        let w =
            p.weight_kg + scale * (0.5 * (days * TAU / 30.0).sin() + 0.3 * m.circadian + 0.15 * self.noise.normal());
        (w * 10.0).round().clamp(3.0, 3000.0) / 10.0
    }

    /// Steps taken since this generator's previous steps sample (the minute
    /// before, for the first one; at most a day back), minute by minute.
    fn steps(&mut self, at_ms: i64) -> f64 {
        let since = self
            .last_steps_ms
            .filter(|&t| t <= at_ms)
            .unwrap_or(at_ms.saturating_sub(MINUTE_MS))
            .max(at_ms.saturating_sub(DAY_MS));
        self.last_steps_ms = Some(at_ms);
        let p = &self.profile;
        if p.band() == AgeBand::Infant {
            return 0.0;
        }
        let (from, to) = (self.local_ms(since), self.local_ms(at_ms));
        let mut total = 0.0;
        let mut t = from;
        while t < to {
            let next = ((t.div_euclid(MINUTE_MS) + 1) * MINUTE_MS).min(to);
            let hour = t.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64;
            if self.awake(hour) {
                let cadence = p.walking_cadence + 120.0 * self.exertion(t);
                total += cadence * (next - t) as f64 / MINUTE_MS as f64;
            }
            t = next;
        }
        (total * (1.0 + 0.05 * self.noise.normal()))
            .round()
            .clamp(0.0, 200_000.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::metrics::{self, MetricKind};

    /// 2026-03-02T00:00:00Z, a Monday.
    const T0: i64 = 1_772_409_600_000;

    fn check(sample: &Sample) -> Result<(), String> {
        let comps: Option<Vec<(String, f64)>> = sample
            .components()
            .map(|c| c.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect());
        metrics::normalize(sample.metric, sample.scalar(), comps.as_deref(), Some(sample.unit))
            .map(|_| ())
            .map_err(|e| format!("{sample:?}: {e:?}"))
    }

    /// UTC milliseconds of local `hour` on `day` days after T0, for `p`.
    fn local_at(p: &SubjectProfile, day: i64, hour: f64) -> i64 {
        T0 + day * DAY_MS + (hour * HOUR_MS as f64) as i64 - i64::from(p.utc_offset_minutes) * MINUTE_MS
    }

    fn scalar(g: &mut Generator, v: Vital, at: i64) -> f64 {
        g.sample(v, at).scalar().unwrap()
    }

    #[test]
    fn vitals_cover_the_numeric_catalog_in_canonical_units() {
        for def in metrics::catalog() {
            match Vital::parse(def.code) {
                Some(v) => {
                    assert_eq!(v.code(), def.code);
                    assert_eq!(v.unit(), def.unit, "{}", def.code);
                }
                None => assert_eq!(def.kind, MetricKind::Waveform, "{} has no generator", def.code),
            }
        }
    }

    #[test]
    fn same_seed_same_readings() {
        let run = |seed: u64| {
            let mut g = Generator::new(SubjectProfile::random(seed), seed);
            (0..500)
                .map(|i| g.sample(Vital::ALL[i % Vital::ALL.len()], T0 + i as i64 * 61_000))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert_eq!(SubjectProfile::random(42), SubjectProfile::random(42));
        assert_ne!(SubjectProfile::random(42), SubjectProfile::random(43));
    }

    #[test]
    fn night_is_calmer_than_late_afternoon() {
        let (mut hr_gap, mut temp_gap) = (0.0, 0.0);
        for seed in 0..20 {
            let mut p = SubjectProfile::random(seed);
            p.fever_per_day = 0.0;
            let mut g = Generator::new(p.clone(), seed);
            let (mut day_hr, mut night_hr, mut day_t, mut night_t) = (0.0, 0.0, 0.0, 0.0);
            for d in 0..30 {
                for k in 0..6 {
                    let night = local_at(&p, d, 3.5 + f64::from(k) * 0.1);
                    let day = local_at(&p, d, 16.5 + f64::from(k) * 0.1);
                    night_hr += scalar(&mut g, Vital::HeartRate, night);
                    day_hr += scalar(&mut g, Vital::HeartRate, day);
                    night_t += scalar(&mut g, Vital::BodyTemperature, night);
                    day_t += scalar(&mut g, Vital::BodyTemperature, day);
                }
            }
            let n = 180.0;
            let (hr, t) = ((day_hr - night_hr) / n, (day_t - night_t) / n);
            assert!(hr > 5.0, "seed {seed}: heart rate day - night = {hr}");
            assert!(t > 0.2, "seed {seed}: temperature day - night = {t}");
            hr_gap += hr;
            temp_gap += t;
        }
        assert!(hr_gap / 20.0 < 40.0, "{hr_gap}");
        assert!(temp_gap / 20.0 < 0.8, "{temp_gap}");
    }

    #[test]
    fn adults_sit_in_their_normal_ranges() {
        for seed in 0..200 {
            let mut p = SubjectProfile::with_age(40, seed);
            p.fever_per_day = 0.0;
            assert!((60.0..=80.0).contains(&p.resting_heart_rate));
            let mut g = Generator::new(p.clone(), seed);
            for i in 0..200 {
                let at = T0 + i * 7 * MINUTE_MS + 13;
                let t = scalar(&mut g, Vital::BodyTemperature, at);
                assert!((36.3..=37.2).contains(&t), "temperature {t}");
                let s = scalar(&mut g, Vital::Spo2, at);
                assert!((85.0..=99.0).contains(&s), "spo2 {s}");
                let hr = scalar(&mut g, Vital::HeartRate, at);
                assert!((40.0..=190.0).contains(&hr), "heart rate {hr}");
                let rr = scalar(&mut g, Vital::RespiratoryRate, at);
                assert!((8.0..=30.0).contains(&rr), "respiratory rate {rr}");
                let bp = g.sample(Vital::BloodPressure, at);
                let c = bp.components().unwrap();
                assert!(c[1].1 < c[0].1 - 19.0, "{c:?}");
                let glucose = scalar(&mut g, Vital::BloodGlucose, at);
                assert!((50.0..=400.0).contains(&glucose), "glucose {glucose}");
            }
        }
    }

    #[test]
    fn most_spo2_readings_are_95_to_99_and_dips_are_rare() {
        let (mut total, mut dips) = (0, 0);
        for seed in 0..50 {
            let mut g = Generator::new(SubjectProfile::with_age(40, seed), seed);
            for i in 0..2000 {
                total += 1;
                if scalar(&mut g, Vital::Spo2, T0 + i * 3 * MINUTE_MS) < 95.0 {
                    dips += 1;
                }
            }
        }
        let share = f64::from(dips) / f64::from(total);
        assert!(share > 0.0 && share < 0.03, "{dips} dips in {total}");
    }

    #[test]
    fn some_subjects_are_hypertensive() {
        let n = (0..1000).filter(|s| SubjectProfile::random(*s).hypertensive).count();
        assert!((150..500).contains(&n), "{n} of 1000");
        let p = (0..1000).map(SubjectProfile::random).find(|p| p.hypertensive).unwrap();
        assert!(p.systolic >= 135.0 && p.diastolic >= 85.0);
    }

    #[test]
    fn age_bands_shape_the_baselines() {
        let infant = SubjectProfile::with_age(0, 1);
        assert_eq!(infant.band(), AgeBand::Infant);
        assert!(infant.resting_heart_rate > 100.0);
        assert!(infant.weight_kg < 12.0);
        let mut g = Generator::new(infant, 1);
        assert_eq!(scalar(&mut g, Vital::Steps, T0 + 10 * HOUR_MS), 0.0);
        assert_eq!(SubjectProfile::with_age(70, 1).band(), AgeBand::Senior);
        let ages: Vec<u32> = (0..500).map(|s| SubjectProfile::random(s).age_years).collect();
        assert!(ages.iter().all(|a| (18..=90).contains(a)));
    }

    #[test]
    fn fever_episodes_occur_at_the_configured_rate() {
        for rate in [0.02, 0.05] {
            let mut episodes = 0;
            let days = 4000;
            for seed in 0..3u64 {
                let mut p = SubjectProfile::with_age(35, seed);
                p.fever_per_day = rate;
                let mut g = Generator::new(p, seed);
                let mut in_fever = false;
                for h in 0..days * 24 {
                    let t = scalar(&mut g, Vital::BodyTemperature, T0 + h * HOUR_MS);
                    // Outside a fever the temperature never exceeds 37.2, so
                    // an episode runs from crossing 37.6 until back to 37.2.
                    if !in_fever && t >= 37.6 {
                        episodes += 1;
                        in_fever = true;
                    } else if in_fever && t <= 37.2 {
                        in_fever = false;
                    }
                }
            }
            let expected = rate * 3.0 * days as f64;
            // Overlapping episodes merge, so slightly fewer are seen.
            let seen = f64::from(episodes);
            assert!(
                seen > expected * 0.8 && seen < expected * 1.15,
                "rate {rate}: {episodes} episodes, expected about {expected}"
            );
        }
        let mut p = SubjectProfile::with_age(35, 9);
        p.fever_per_day = 0.0;
        let mut g = Generator::new(p, 9);
        assert!((0..5000).all(|h| scalar(&mut g, Vital::BodyTemperature, T0 + h * HOUR_MS) <= 37.2));
    }

    #[test]
    fn glucose_rises_after_meals() {
        let mut fasting = 0.0;
        let mut after_lunch = 0.0;
        for seed in 0..30 {
            let p = SubjectProfile::with_age(45, seed);
            let mut g = Generator::new(p.clone(), seed);
            for d in 0..20 {
                fasting += scalar(&mut g, Vital::BloodGlucose, local_at(&p, d, 3.0));
                after_lunch += scalar(&mut g, Vital::BloodGlucose, local_at(&p, d, 13.5));
            }
        }
        assert!(after_lunch > fasting + 15.0 * 600.0, "{fasting} {after_lunch}");
    }

    #[test]
    fn steps_follow_the_day() {
        let p = SubjectProfile::with_age(30, 3);
        let mut g = Generator::new(p.clone(), 3);
        let mut night = 0.0;
        let mut day = 0.0;
        for d in 0..10 {
            // A first sample sets the window start; the second covers an hour.
            g.sample(Vital::Steps, local_at(&p, d, 2.0));
            night += scalar(&mut g, Vital::Steps, local_at(&p, d, 3.0));
            g.sample(Vital::Steps, local_at(&p, d, 15.0));
            day += scalar(&mut g, Vital::Steps, local_at(&p, d, 16.0));
        }
        assert_eq!(night, 0.0);
        assert!(day > 500.0, "{day}");
    }

    #[test]
    fn every_value_passes_the_catalog_over_many_seeds_and_times() {
        for seed in 0..300u64 {
            let age = (seed * 7 % 100) as u32;
            let mut p = SubjectProfile::with_age(age, seed);
            p.fever_per_day = 0.2;
            p.sleep_apnea = seed % 3 == 0;
            let mut g = Generator::new(p, seed);
            for i in 0..400i64 {
                let at = T0 + i * 17 * MINUTE_MS + seed as i64 * 3_301;
                for v in Vital::ALL {
                    check(&g.sample(v, at)).unwrap();
                }
            }
        }
    }

    proptest! {
        #[test]
        fn any_sample_passes_the_catalog(
            seed in any::<u64>(),
            age in 0u32..110,
            random_profile in any::<bool>(),
            fever in 0.0f64..1.0,
            times in prop::collection::vec(-2_000_000_000_000i64..5_000_000_000_000, 1..40),
        ) {
            let mut p = if random_profile { SubjectProfile::random(seed) } else { SubjectProfile::with_age(age, seed) };
            p.fever_per_day = fever;
            let mut g = Generator::new(p, seed);
            for (i, at) in times.into_iter().enumerate() {
                let v = Vital::ALL[(seed as usize).wrapping_add(i) % Vital::ALL.len()];
                let s = g.sample(v, at);
                prop_assert_eq!(s.metric, v.code());
                prop_assert!(check(&s).is_ok(), "{:?}", check(&s));
            }
        }
    }
}
