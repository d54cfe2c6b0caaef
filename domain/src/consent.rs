//! Consents: an individual's explicit, scoped, revocable permission for
//! another membership to read some of its data, with the scope of FHIR's
//! Consent provisions: whose data (subjects), what (metrics, farm path
//! prefixes), why (purpose), how (read, or read and export), when access is
//! allowed (`valid_from`..`valid_until`) and which period of data it covers
//! (`data_from`..`data_until`).
//!
//! [`evaluate`] is the one decision every read of another membership's data
//! goes through. It is a pure function of the consent, the request and the
//! clock, so expiry needs no background job, and revocation (a timestamp)
//! takes effect on the very next evaluation.

use std::collections::BTreeSet;

use crate::ids::{MembershipId, SubjectId};

/// Why the data is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    Care,
    Service,
    Research,
    Emergency,
}

impl Purpose {
    pub const ALL: [Purpose; 4] = [Purpose::Care, Purpose::Service, Purpose::Research, Purpose::Emergency];

    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::Care => "care",
            Purpose::Service => "service",
            Purpose::Research => "research",
            Purpose::Emergency => "emergency",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// What the grantee may do with the data: read it through the API, or also
/// include it in its own exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    ReadExport,
}

impl Access {
    pub const fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::ReadExport => "read_export",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Access::Read),
            "read_export" => Some(Access::ReadExport),
            _ => None,
        }
    }

    /// Whether a consent with this access covers `needed`.
    pub fn covers(self, needed: Access) -> bool {
        match needed {
            Access::Read => true,
            Access::ReadExport => self == Access::ReadExport,
        }
    }
}

/// A half-open period `[from, until)` in epoch milliseconds; `None` bounds
/// are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

impl Period {
    pub const ALWAYS: Period = Period {
        from: None,
        until: None,
    };

    pub fn contains(&self, t: i64) -> bool {
        self.from.is_none_or(|f| t >= f) && self.until.is_none_or(|u| t < u)
    }

    /// The part of `[from, to)` inside this period (possibly empty:
    /// `from >= to`).
    pub fn clip(&self, from: i64, to: i64) -> (i64, i64) {
        (
            self.from.map_or(from, |f| from.max(f)),
            self.until.map_or(to, |u| to.min(u)),
        )
    }
}

/// A consent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub grantor: MembershipId,
    pub grantee: MembershipId,
    pub subjects: BTreeSet<SubjectId>,
    /// Metric codes of the catalog; empty: no readings.
    pub metrics: BTreeSet<String>,
    /// Folder prefixes in `parse_dir_prefix` form (`/ecg/`); empty: no
    /// files.
    pub farm_paths: BTreeSet<String>,
    pub purpose: Purpose,
    pub access: Access,
    /// When access is allowed.
    pub valid: Period,
    /// Which measurement times the data may have.
    pub data: Period,
    /// When the grantor revoked it; final.
    pub revoked_at: Option<i64>,
}

/// The state of a consent at a moment, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Active,
    Expired,
    Revoked,
}

impl State {
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Expired => "expired",
            State::Revoked => "revoked",
        }
    }
}

impl Consent {
    pub fn state(&self, now: i64) -> State {
        if self.revoked_at.is_some_and(|r| r <= now) {
            State::Revoked
        } else if self.valid.from.is_some_and(|f| now < f) {
            State::Pending
        } else if self.valid.until.is_some_and(|u| now >= u) {
            State::Expired
        } else {
            State::Active
        }
    }
}

/// What another membership's principal asks to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// Readings of one metric of one subject measured in `[from, to)`
    /// (raw, aggregated, summarised or as FHIR).
    Readings {
        subject: SubjectId,
        metric: &'a str,
        from: i64,
        to: i64,
        access: Access,
    },
    /// One file of the grantor's farm (download, metadata).
    File { path: &'a str, access: Access },
    /// A listing of the folder `prefix` (in `parse_dir_prefix` form).
    Listing { prefix: &'a str },
    /// The subject's record itself (name, birth date) as the context of
    /// shared readings.
    Subject { subject: SubjectId },
}

/// Why a consent does not permit a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    Revoked,
    NotYetValid,
    Expired,
    SubjectNotShared,
    MetricNotShared,
    PathNotShared,
    AccessTooLow,
}

/// A permitted request; for readings, the part of the asked period the
/// consent covers (the caller reads only that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    pub window: Option<(i64, i64)>,
}

/// Whether `file` lies under one of `prefixes` (`/ecg/` covers `/ecg/a`
/// and `/ecg/2026/b`, not `/ecg2/a`; `/` covers everything).
fn under(file: &str, prefixes: &BTreeSet<String>) -> bool {
    prefixes.iter().any(|p| file.starts_with(p.as_str()))
}

/// The decision: does `consent` permit `request` at `now`?
pub fn evaluate(consent: &Consent, request: &Request<'_>, now: i64) -> Result<Permit, Denial> {
    match consent.state(now) {
        State::Revoked => return Err(Denial::Revoked),
        State::Pending => return Err(Denial::NotYetValid),
        State::Expired => return Err(Denial::Expired),
        State::Active => {}
    }
    match *request {
        Request::Readings {
            subject,
            metric,
            from,
            to,
            access,
        } => {
            if !consent.subjects.contains(&subject) {
                return Err(Denial::SubjectNotShared);
            }
            if !consent.metrics.contains(metric) {
                return Err(Denial::MetricNotShared);
            }
            if !consent.access.covers(access) {
                return Err(Denial::AccessTooLow);
            }
            Ok(Permit {
                window: Some(consent.data.clip(from, to)),
            })
        }
        Request::File { path, access } => {
            if !under(path, &consent.farm_paths) {
                return Err(Denial::PathNotShared);
            }
            if !consent.access.covers(access) {
                return Err(Denial::AccessTooLow);
            }
            Ok(Permit { window: None })
        }
        Request::Listing { prefix } => {
            // A listing inside a shared folder, or of a folder above one
            // (the caller then shows only what lies under shared folders).
            let inside = under(prefix, &consent.farm_paths);
            let above = consent.farm_paths.iter().any(|p| p.starts_with(prefix));
            if inside || above {
                Ok(Permit { window: None })
            } else {
                Err(Denial::PathNotShared)
            }
        }
        Request::Subject { subject } => {
            if consent.subjects.contains(&subject) {
                Ok(Permit { window: None })
            } else {
                Err(Denial::SubjectNotShared)
            }
        }
    }
}

/// Among several consents, the one that permits `request` with the widest
/// window (the earliest-listed among equals), with its index; or the denial
/// of the first consent when none does (`None` when there are none).
pub fn evaluate_any<'c>(
    consents: impl IntoIterator<Item = &'c Consent>,
    request: &Request<'_>,
    now: i64,
) -> Option<Result<(usize, Permit), Denial>> {
    let mut best: Option<(usize, Permit)> = None;
    let mut first_denial = None;
    for (i, c) in consents.into_iter().enumerate() {
        match evaluate(c, request, now) {
            Ok(p) => {
                let width = |p: &Permit| p.window.map_or(i64::MAX, |(f, t)| t.saturating_sub(f));
                if best.as_ref().is_none_or(|(_, b)| width(&p) > width(b)) {
                    best = Some((i, p));
                }
            }
            Err(d) => {
                first_denial.get_or_insert(d);
            }
        }
    }
    match (best, first_denial) {
        (Some(b), _) => Some(Ok(b)),
        (None, Some(d)) => Some(Err(d)),
        (None, None) => None,
    }
}

/// The longest a consent or a requested duration may last.
pub const MAX_DURATION_SECS: i64 = 10 * 366 * 24 * 3600;

/// A requested access duration in the ISO 8601 forms `P<n>D`, `P<n>W` and
/// `PT<n>H`, in seconds; `None` for anything else, zero, or more than ten
/// years.
pub fn parse_duration(text: &str) -> Option<i64> {
    let (digits, unit) = if let Some(h) = text.strip_prefix("PT") {
        (h.strip_suffix('H')?, 3600)
    } else {
        let body = text.strip_prefix('P')?;
        match body.strip_suffix('D') {
            Some(d) => (d, 86_400),
            None => (body.strip_suffix('W')?, 7 * 86_400),
        }
    };
    if digits.is_empty() || digits.len() > 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = digits.parse::<i64>().ok()?.checked_mul(unit)?;
    (secs > 0 && secs <= MAX_DURATION_SECS).then_some(secs)
}

/// The canonical text of a duration in seconds, as `parse_duration` reads
/// it: whole weeks are still given in days, so `P14D` stays `P14D`.
pub fn format_duration(secs: i64) -> String {
    if secs % 86_400 == 0 {
        format!("P{}D", secs / 86_400)
    } else {
        format!("PT{}H", secs / 3600)
    }
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("P30D"), Some(30 * 86_400));
        assert_eq!(parse_duration("P2W"), Some(14 * 86_400));
        assert_eq!(parse_duration("PT12H"), Some(12 * 3600));
        for bad in [
            "",
            "P",
            "PD",
            "P0D",
            "30d",
            "P-1D",
            "P1.5D",
            "P1M",
            "PT1M",
            "P99999999D",
            "P3700D",
            " P1D",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(30 * 86_400), "P30D");
        assert_eq!(format_duration(12 * 3600), "PT12H");
        assert_eq!(parse_duration(&format_duration(14 * 86_400)), Some(14 * 86_400));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    fn subject(n: u8) -> SubjectId {
        SubjectId::from_uuid(Uuid::from_bytes([n; 16]))
    }

    /// Heart rate of the infant (subject 1), for 30 days from now, data
    /// from ten days ago on.
    fn infant_heart_rate() -> Consent {
        Consent {
            grantor: MembershipId::from_uuid(Uuid::from_bytes([9; 16])),
            grantee: MembershipId::from_uuid(Uuid::from_bytes([8; 16])),
            subjects: BTreeSet::from([subject(1)]),
            metrics: BTreeSet::from(["heart_rate".to_owned()]),
            farm_paths: BTreeSet::from(["/ecg/".to_owned()]),
            purpose: Purpose::Care,
            access: Access::Read,
            valid: Period {
                from: Some(NOW),
                until: Some(NOW + 30 * DAY),
            },
            data: Period {
                from: Some(NOW - 10 * DAY),
                until: None,
            },
            revoked_at: None,
        }
    }

    fn readings(subject: SubjectId, metric: &str, from: i64, to: i64) -> Request<'_> {
        Request::Readings {
            subject,
            metric,
            from,
            to,
            access: Access::Read,
        }
    }

    #[test]
    fn the_scoped_metric_of_the_scoped_subject_is_permitted_from_data_from_on() {
        let c = infant_heart_rate();
        let p = evaluate(&c, &readings(subject(1), "heart_rate", NOW - 20 * DAY, NOW), NOW + 1);
        assert_eq!(
            p,
            Ok(Permit {
                window: Some((NOW - 10 * DAY, NOW))
            })
        );
    }

    #[test]
    fn another_metric_another_subject_or_a_file_outside_the_paths_is_denied() {
        let c = infant_heart_rate();
        assert_eq!(
            evaluate(&c, &readings(subject(1), "blood_pressure", 0, NOW), NOW),
            Err(Denial::MetricNotShared)
        );
        assert_eq!(
            evaluate(&c, &readings(subject(2), "heart_rate", 0, NOW), NOW),
            Err(Denial::SubjectNotShared)
        );
        assert_eq!(
            evaluate(
                &c,
                &Request::File {
                    path: "/ecg2/a.bin",
                    access: Access::Read
                },
                NOW
            ),
            Err(Denial::PathNotShared)
        );
        assert!(
            evaluate(
                &c,
                &Request::File {
                    path: "/ecg/2026/a.bin",
                    access: Access::Read
                },
                NOW
            )
            .is_ok()
        );
    }

    #[test]
    fn export_needs_read_export() {
        let mut c = infant_heart_rate();
        let export = Request::Readings {
            subject: subject(1),
            metric: "heart_rate",
            from: 0,
            to: NOW,
            access: Access::ReadExport,
        };
        assert_eq!(evaluate(&c, &export, NOW), Err(Denial::AccessTooLow));
        c.access = Access::ReadExport;
        assert!(evaluate(&c, &export, NOW).is_ok());
    }

    #[test]
    fn validity_and_revocation_are_read_off_the_clock() {
        let mut c = infant_heart_rate();
        let r = readings(subject(1), "heart_rate", 0, NOW);
        assert_eq!(evaluate(&c, &r, NOW - 1), Err(Denial::NotYetValid));
        assert!(evaluate(&c, &r, NOW + 30 * DAY - 1).is_ok());
        assert_eq!(evaluate(&c, &r, NOW + 30 * DAY), Err(Denial::Expired));
        c.revoked_at = Some(NOW + DAY);
        assert!(evaluate(&c, &r, NOW + DAY - 1).is_ok());
        assert_eq!(evaluate(&c, &r, NOW + DAY), Err(Denial::Revoked));
        assert_eq!(c.state(NOW + DAY), State::Revoked);
    }

    #[test]
    fn listings_see_shared_folders_and_the_folders_above_them() {
        let c = infant_heart_rate();
        for ok in ["/", "/ecg/", "/ecg/2026/"] {
            assert!(evaluate(&c, &Request::Listing { prefix: ok }, NOW).is_ok(), "{ok}");
        }
        assert!(evaluate(&c, &Request::Listing { prefix: "/photos/" }, NOW).is_err());
    }

    #[test]
    fn among_several_consents_the_widest_window_wins() {
        let narrow = infant_heart_rate();
        let mut wide = infant_heart_rate();
        wide.data.from = Some(NOW - 100 * DAY);
        let r = readings(subject(1), "heart_rate", 0, NOW);
        assert_eq!(
            evaluate_any([&narrow, &wide], &r, NOW),
            Some(Ok((
                1,
                Permit {
                    window: Some((NOW - 100 * DAY, NOW))
                }
            )))
        );
        assert_eq!(evaluate_any([], &r, NOW), None);
    }

    fn arb_period() -> impl Strategy<Value = Period> {
        (proptest::option::of(-50i64..50), proptest::option::of(-50i64..50)).prop_map(|(f, u)| Period {
            from: f.map(|d| NOW + d * DAY),
            until: u.map(|d| NOW + d * DAY),
        })
    }

    prop_compose! {
        fn arb_consent()(
            subjects in proptest::collection::btree_set(0u8..4, 0..4),
            metrics in proptest::collection::btree_set(prop::sample::select(vec!["heart_rate", "spo2", "blood_pressure"]), 0..3),
            paths in proptest::collection::btree_set(prop::sample::select(vec!["/", "/ecg/", "/ecg/2026/", "/photos/"]), 0..3),
            export in any::<bool>(),
            valid in arb_period(),
            data in arb_period(),
            revoked in proptest::option::of(-50i64..50),
        ) -> Consent {
            Consent {
                grantor: MembershipId::from_uuid(Uuid::from_bytes([9; 16])),
                grantee: MembershipId::from_uuid(Uuid::from_bytes([8; 16])),
                subjects: subjects.into_iter().map(subject).collect(),
                metrics: metrics.into_iter().map(str::to_owned).collect(),
                farm_paths: paths.into_iter().map(str::to_owned).collect(),
                purpose: Purpose::Care,
                access: if export { Access::ReadExport } else { Access::Read },
                valid,
                data,
                revoked_at: revoked.map(|d| NOW + d * DAY),
            }
        }
    }

    fn arb_request() -> impl Strategy<Value = (u8, &'static str, &'static str, i64, i64, bool, u8)> {
        (
            0u8..4,
            prop::sample::select(vec!["heart_rate", "spo2", "blood_pressure"]),
            prop::sample::select(vec!["/ecg/a", "/ecg/2026/b", "/ecg2/c", "/photos/d", "/e"]),
            -60i64..60,
            -60i64..60,
            any::<bool>(),
            0u8..4,
        )
    }

    fn request_of<'a>(r: &'a (u8, &'static str, &'static str, i64, i64, bool, u8)) -> Request<'a> {
        let access = if r.5 { Access::ReadExport } else { Access::Read };
        match r.6 {
            0 => Request::Readings {
                subject: subject(r.0),
                metric: r.1,
                from: NOW + r.3 * DAY,
                to: NOW + r.4 * DAY,
                access,
            },
            1 => Request::File { path: r.2, access },
            2 => Request::Listing { prefix: "/ecg/" },
            _ => Request::Subject { subject: subject(r.0) },
        }
    }

    /// Narrows `c`: drops some subjects, metrics and paths, shortens both
    /// periods, may lower the access and may revoke.
    fn narrow(c: &Consent, keep: u8, shrink: i64, lower: bool, revoke: Option<i64>) -> Consent {
        let take = |i: usize| keep & (1 << (i % 8)) != 0;
        let tighten = |p: Period| Period {
            from: Some(p.from.map_or(NOW - shrink * DAY, |f| f + shrink * DAY)),
            until: Some(p.until.map_or(NOW + shrink * DAY, |u| u - shrink * DAY)),
        };
        Consent {
            subjects: c
                .subjects
                .iter()
                .enumerate()
                .filter(|(i, _)| take(*i))
                .map(|(_, s)| *s)
                .collect(),
            metrics: c
                .metrics
                .iter()
                .enumerate()
                .filter(|(i, _)| take(*i + 3))
                .map(|(_, m)| m.clone())
                .collect(),
            farm_paths: c
                .farm_paths
                .iter()
                .enumerate()
                .filter(|(i, _)| take(*i + 5))
                .map(|(_, p)| p.clone())
                .collect(),
            access: if lower { Access::Read } else { c.access },
            valid: tighten(c.valid),
            data: tighten(c.data),
            revoked_at: match (c.revoked_at, revoke) {
                (Some(a), Some(b)) => Some(a.min(NOW + b * DAY)),
                (a, b) => a.or(b.map(|d| NOW + d * DAY)),
            },
            ..c.clone()
        }
    }

    proptest! {
        #[test]
        fn a_revoked_consent_never_permits(c in arb_consent(), r in arb_request(), at in -60i64..60) {
            let now = NOW + at * DAY;
            let mut c = c;
            c.revoked_at = Some(now - 1);
            prop_assert_eq!(evaluate(&c, &request_of(&r), now), Err(Denial::Revoked));
        }

        #[test]
        fn nothing_is_permitted_outside_the_validity(c in arb_consent(), r in arb_request(), at in -60i64..60) {
            let now = NOW + at * DAY;
            if !c.valid.contains(now) {
                prop_assert!(evaluate(&c, &request_of(&r), now).is_err());
            }
        }

        #[test]
        fn a_permitted_window_lies_inside_both_the_request_and_the_data_period(
            c in arb_consent(), r in arb_request(), at in -60i64..60,
        ) {
            let req = request_of(&r);
            if let (Ok(Permit { window: Some((f, t)) }), Request::Readings { from, to, .. }) =
                (evaluate(&c, &req, NOW + at * DAY), &req)
            {
                prop_assert!(f >= *from && t <= *to);
                if f < t {
                    prop_assert!(c.data.contains(f) && c.data.contains(t - 1));
                }
            }
        }

        #[test]
        fn narrowing_a_scope_never_widens_access(
            c in arb_consent(), r in arb_request(), at in -60i64..60,
            keep in any::<u8>(), shrink in 0i64..20, lower in any::<bool>(), revoke in proptest::option::of(-50i64..50),
        ) {
            let now = NOW + at * DAY;
            let n = narrow(&c, keep, shrink, lower, revoke);
            let req = request_of(&r);
            if let Ok(narrow_permit) = evaluate(&n, &req, now) {
                let wide_permit = evaluate(&c, &req, now);
                prop_assert!(wide_permit.is_ok(), "narrowed permits but the original does not");
                if let (Some((nf, nt)), Ok(Permit { window: Some((wf, wt)) })) = (narrow_permit.window, wide_permit) {
                    prop_assert!(nf >= nt || (nf >= wf && nt <= wt));
                }
            }
        }
    }
}
