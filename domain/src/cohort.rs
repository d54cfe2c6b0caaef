//! Cohort aggregates: statistics of one metric over many subjects, grouped
//! by age band and sex, with small groups suppressed.
//!
//! # Why the numbers cannot single anyone out
//!
//! * A group is published only when at least `k` distinct subjects
//!   contributed readings to it (`k` is never below [`MIN_K`]). A mean,
//!   minimum or maximum over fewer people could be one person's values.
//! * A suppressed group is named (its age band and sex) but carries no
//!   count and no value, so nothing about its members is revealed beyond
//!   "fewer than k, at least one".
//! * The totals are sums over the *published* groups only. Totals over
//!   every subject would let a reader subtract the published groups and
//!   recover the suppressed one (differencing), so they are never given.
//! * Subjects without a birth date or sex fall into `unknown` groups, which
//!   obey the same threshold.
//!
//! What this does not stop: differencing *across* requests (two cohorts
//! whose subject lists or periods differ by one person). It need not: every
//! subject counted is one the caller may already read one by one (its own,
//! or shared by a consent covering the metric and the period), so the
//! threshold protects the people in what the caller publishes, not from the
//! caller itself.
//!
//! This module only groups and suppresses; what each subject contributes
//! (its readings' count, sum, sum of squares, min and max in the window the
//! caller may read) is computed by the database.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use crate::subject::Sex;

/// The smallest group size a caller may ask for.
pub const MIN_K: u32 = 3;
/// The group size when the caller does not say.
pub const DEFAULT_K: u32 = 5;
/// The age band edges when the caller does not say.
pub const DEFAULT_AGE_BANDS: [u32; 5] = [0, 18, 40, 65, 80];
/// Most edges a caller may give.
pub const MAX_AGE_EDGES: usize = 20;
/// Oldest edge a caller may give, in years.
pub const MAX_AGE_EDGE: u32 = 130;
/// The label of a group whose age or sex is not recorded.
pub const UNKNOWN: &str = "unknown";

/// What groups are formed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    AgeBand,
    Sex,
}

impl Dimension {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "age_band" => Some(Self::AgeBand),
            "sex" => Some(Self::Sex),
            _ => None,
        }
    }
}

/// The grouping of a cohort request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    by_age: bool,
    by_sex: bool,
    /// Lower edges of the age bands in years, strictly increasing,
    /// starting at 0.
    edges: Vec<u32>,
}

impl Grouping {
    /// `group_by` names (no repeats) and band `edges` (strictly
    /// increasing, at most [`MAX_AGE_EDGES`], none above
    /// [`MAX_AGE_EDGE`]); the error names the offending field. A first
    /// edge above 0 gets a band from 0 below it.
    pub fn new(group_by: &[String], edges: &[u32]) -> Result<Self, (&'static str, String)> {
        let mut by_age = false;
        let mut by_sex = false;
        for name in group_by {
            let flag = match Dimension::parse(name) {
                Some(Dimension::AgeBand) => &mut by_age,
                Some(Dimension::Sex) => &mut by_sex,
                None => return Err(("group_by", format!("`{name}` is not `age_band` or `sex`"))),
            };
            if *flag {
                return Err(("group_by", format!("`{name}` is listed twice")));
            }
            *flag = true;
        }
        if edges.is_empty() {
            return Err(("age_bands", "needs at least one edge".into()));
        }
        if edges.len() > MAX_AGE_EDGES {
            return Err(("age_bands", format!("at most {MAX_AGE_EDGES} edges")));
        }
        if edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(("age_bands", "edges must be strictly increasing".into()));
        }
        if edges.iter().any(|e| *e > MAX_AGE_EDGE) {
            return Err(("age_bands", format!("edges must be at most {MAX_AGE_EDGE} years")));
        }
        let mut all = Vec::with_capacity(edges.len() + 1);
        if edges[0] > 0 {
            all.push(0);
        }
        all.extend_from_slice(edges);
        Ok(Self {
            by_age,
            by_sex,
            edges: all,
        })
    }

    /// The label of the band of `age` years: `18-39`, or `80+` for the last.
    pub fn band(&self, age: u32) -> String {
        let i = self.edges.partition_point(|e| *e <= age).saturating_sub(1);
        match self.edges.get(i + 1) {
            Some(next) => format!("{}-{}", self.edges[i], next - 1),
            None => format!("{}+", self.edges[i]),
        }
    }

    /// The group of a subject born on `birth` with `sex`, ages taken on
    /// `on`.
    pub fn key(&self, birth: Option<NaiveDate>, sex: Option<Sex>, on: NaiveDate) -> GroupKey {
        GroupKey {
            age_band: self.by_age.then(|| match birth.and_then(|b| age_on(b, on)) {
                Some(age) => self.band(age),
                None => UNKNOWN.to_owned(),
            }),
            sex: self.by_sex.then(|| match sex {
                Some(Sex::Unknown) | None => UNKNOWN.to_owned(),
                Some(s) => s.as_str().to_owned(),
            }),
        }
    }
}

/// Whole years from `birth` to `on`; `None` when `on` is before `birth`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> Option<u32> {
    if on < birth {
        return None;
    }
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// A group: its age band and sex, each `None` when not grouped by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub age_band: Option<String>,
    pub sex: Option<String>,
}

/// What one subject's readings in its window add up to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contribution {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f64,
    pub max: f64,
}

/// A published group's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    pub key: GroupKey,
    pub subjects: u64,
    pub readings: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation of the readings; `None` below 2 readings.
    pub stddev: Option<f64>,
}

/// Totals over the published groups only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub subjects: u64,
    pub readings: u64,
    pub groups_published: u64,
    pub groups_suppressed: u64,
}

/// The outcome: published groups with numbers, suppressed ones without.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohort {
    pub groups: Vec<GroupStats>,
    pub suppressed: Vec<GroupKey>,
    pub totals: Totals,
}

#[derive(Default)]
struct Acc {
    subjects: u64,
    count: u64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
}

/// Groups the contributions (one per subject; a subject without readings
/// contributes nothing and is not counted) and suppresses every group with
/// fewer than `k` subjects. Groups come out in key order.
pub fn combine(contributions: impl IntoIterator<Item = (GroupKey, Contribution)>, k: u32) -> Cohort {
    let mut groups: BTreeMap<GroupKey, Acc> = BTreeMap::new();
    for (key, c) in contributions {
        if c.count == 0 {
            continue;
        }
        let acc = groups.entry(key).or_insert_with(|| Acc {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            ..Acc::default()
        });
        acc.subjects += 1;
        acc.count += c.count;
        acc.sum += c.sum;
        acc.sum_sq += c.sum_sq;
        acc.min = acc.min.min(c.min);
        acc.max = acc.max.max(c.max);
    }
    let mut out = Cohort {
        groups: Vec::new(),
        suppressed: Vec::new(),
        totals: Totals::default(),
    };
    for (key, acc) in groups {
        if acc.subjects < u64::from(k.max(MIN_K)) {
            out.suppressed.push(key);
            out.totals.groups_suppressed += 1;
            continue;
        }
        let n = acc.count as f64;
        let mean = acc.sum / n;
        // Sample variance from the sums; clamped at 0 against rounding.
        let stddev = (acc.count >= 2).then(|| ((acc.sum_sq - acc.sum * mean) / (n - 1.0)).max(0.0).sqrt());
        out.totals.subjects += acc.subjects;
        out.totals.readings += acc.count;
        out.totals.groups_published += 1;
        out.groups.push(GroupStats {
            key,
            subjects: acc.subjects,
            readings: acc.count,
            mean,
            min: acc.min,
            max: acc.max,
            stddev,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn both() -> Grouping {
        Grouping::new(&["age_band".into(), "sex".into()], &DEFAULT_AGE_BANDS).unwrap()
    }

    fn one(v: f64) -> Contribution {
        Contribution {
            count: 1,
            sum: v,
            sum_sq: v * v,
            min: v,
            max: v,
        }
    }

    #[test]
    fn ages_count_whole_years_to_the_birthday() {
        assert_eq!(age_on(d(1960, 5, 10), d(2026, 5, 9)), Some(65));
        assert_eq!(age_on(d(1960, 5, 10), d(2026, 5, 10)), Some(66));
        assert_eq!(age_on(d(2026, 5, 10), d(2026, 5, 9)), None);
        assert_eq!(age_on(d(2000, 2, 29), d(2001, 2, 28)), Some(0));
        assert_eq!(age_on(d(2000, 2, 29), d(2001, 3, 1)), Some(1));
    }

    #[test]
    fn bands_are_labelled_by_their_edges() {
        let g = both();
        assert_eq!(g.band(0), "0-17");
        assert_eq!(g.band(17), "0-17");
        assert_eq!(g.band(18), "18-39");
        assert_eq!(g.band(65), "65-79");
        assert_eq!(g.band(79), "65-79");
        assert_eq!(g.band(80), "80+");
        assert_eq!(g.band(120), "80+");
        let g = Grouping::new(&["age_band".into()], &[50]).unwrap();
        assert_eq!(g.band(10), "0-49");
        assert_eq!(g.band(50), "50+");
    }

    #[test]
    fn unknown_age_or_sex_forms_its_own_group() {
        let g = both();
        let on = d(2026, 11, 22);
        let k = g.key(None, Some(Sex::Female), on);
        assert_eq!(k.age_band.as_deref(), Some(UNKNOWN));
        assert_eq!(k.sex.as_deref(), Some("female"));
        let k = g.key(Some(d(1950, 1, 1)), Some(Sex::Unknown), on);
        assert_eq!(k.age_band.as_deref(), Some("65-79"));
        assert_eq!(k.sex.as_deref(), Some(UNKNOWN));
        // Not grouped by age: no age band at all.
        let g = Grouping::new(&["sex".into()], &DEFAULT_AGE_BANDS).unwrap();
        assert_eq!(g.key(None, None, on).age_band, None);
    }

    #[test]
    fn bad_grouping_names_the_field() {
        let bands = DEFAULT_AGE_BANDS;
        assert_eq!(Grouping::new(&["zip".into()], &bands).unwrap_err().0, "group_by");
        assert_eq!(
            Grouping::new(&["sex".into(), "sex".into()], &bands).unwrap_err().0,
            "group_by"
        );
        assert_eq!(Grouping::new(&[], &[]).unwrap_err().0, "age_bands");
        assert_eq!(Grouping::new(&[], &[0, 40, 18]).unwrap_err().0, "age_bands");
        assert_eq!(Grouping::new(&[], &[0, 18, 18]).unwrap_err().0, "age_bands");
        assert_eq!(Grouping::new(&[], &[0, 200]).unwrap_err().0, "age_bands");
        assert!(Grouping::new(&[], &bands).is_ok());
    }

    #[test]
    fn small_groups_are_suppressed_and_totals_cover_published_ones_only() {
        let big = GroupKey {
            age_band: Some("65-79".into()),
            sex: Some("female".into()),
        };
        let small = GroupKey {
            age_band: Some("18-39".into()),
            sex: Some("male".into()),
        };
        let mut contributions: Vec<_> = (0..7).map(|i| (big.clone(), one(60.0 + i as f64))).collect();
        contributions.push((small.clone(), one(100.0)));
        contributions.push((small.clone(), one(101.0)));
        // No readings: not a member of any group.
        contributions.push((
            small.clone(),
            Contribution {
                count: 0,
                sum: 0.0,
                sum_sq: 0.0,
                min: 0.0,
                max: 0.0,
            },
        ));
        let c = combine(contributions, 5);
        assert_eq!(c.groups.len(), 1);
        let g = &c.groups[0];
        assert_eq!(g.key, big);
        assert_eq!((g.subjects, g.readings), (7, 7));
        assert!((g.mean - 63.0).abs() < 1e-9);
        assert_eq!((g.min, g.max), (60.0, 66.0));
        // Sample stddev of 60..=66.
        assert!((g.stddev.unwrap() - (28.0f64 / 6.0).sqrt()).abs() < 1e-9);
        assert_eq!(c.suppressed, vec![small]);
        assert_eq!(
            c.totals,
            Totals {
                subjects: 7,
                readings: 7,
                groups_published: 1,
                groups_suppressed: 1
            }
        );
    }

    #[test]
    fn k_below_the_floor_is_raised_to_it() {
        let key = GroupKey {
            age_band: None,
            sex: None,
        };
        let c = combine(vec![(key.clone(), one(1.0)), (key, one(2.0))], 1);
        assert!(c.groups.is_empty());
        assert_eq!(c.totals.groups_suppressed, 1);
    }

    #[test]
    fn means_weigh_readings_not_subjects() {
        let key = GroupKey {
            age_band: None,
            sex: None,
        };
        let many = Contribution {
            count: 3,
            sum: 30.0,
            sum_sq: 300.0,
            min: 10.0,
            max: 10.0,
        };
        let c = combine(vec![(key.clone(), many), (key.clone(), one(50.0)), (key, one(50.0))], 3);
        assert_eq!(c.groups[0].readings, 5);
        assert!((c.groups[0].mean - 26.0).abs() < 1e-9);
        assert_eq!(c.groups[0].stddev.map(|s| s > 0.0), Some(true));
    }

    proptest! {
        #[test]
        fn no_published_group_has_fewer_than_k_subjects(
            members in proptest::collection::vec((0u8..4, 0u8..3, 0u64..4, -50.0f64..250.0), 0..80),
            k in 0u32..10,
        ) {
            let contributions = members.iter().map(|(a, s, n, v)| {
                let key = GroupKey { age_band: Some(a.to_string()), sex: Some(s.to_string()) };
                let n = *n;
                (key, Contribution { count: n, sum: v * n as f64, sum_sq: v * v * n as f64, min: *v, max: *v })
            });
            let c = combine(contributions, k);
            let floor = u64::from(k.max(MIN_K));
            for g in &c.groups {
                prop_assert!(g.subjects >= floor);
                prop_assert!(g.min <= g.mean + 1e-9 && g.mean <= g.max + 1e-9);
            }
            // Every group with readings is either published or suppressed,
            // never both, and totals add up over the published ones.
            for s in &c.suppressed {
                prop_assert!(!c.groups.iter().any(|g| &g.key == s));
                let members = members.iter()
                    .filter(|(a, x, n, _)| *n > 0 && Some(a.to_string()) == s.age_band && Some(x.to_string()) == s.sex)
                    .count() as u64;
                prop_assert!(members >= 1 && members < floor);
            }
            prop_assert_eq!(c.totals.subjects, c.groups.iter().map(|g| g.subjects).sum::<u64>());
            prop_assert_eq!(c.totals.readings, c.groups.iter().map(|g| g.readings).sum::<u64>());
            prop_assert_eq!(c.totals.groups_published, c.groups.len() as u64);
            prop_assert_eq!(c.totals.groups_suppressed, c.suppressed.len() as u64);
        }
    }
}
