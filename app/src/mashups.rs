//! Data gathering for the mashups: which subjects a company watches, and
//! the few indexed reads each judgement needs (the latest values of a
//! handful of metrics, the last reading of each readable metric, and the
//! times of one metric over 14 days for the subject's rhythm). Every read
//! goes through `sharing`, within the windows the consents open; the
//! decisions are `vitalfarm_domain::mashups`.

use std::collections::BTreeSet;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;
use vitalfarm_domain::consent::Access as ConsentAccess;
use vitalfarm_domain::mashups::elderly::{self, Inputs, Pressure, Timed};
use vitalfarm_domain::mashups::{Status, age_days};
use vitalfarm_domain::{MembershipId, SubjectId, SubjectKind};
use vitalfarm_openapi::mashups::{DatasetUse, PressureValue, TimedValue, WatchInputs, WatchReason, WatchedSubject};
use vitalfarm_storage::entity::reading;
use vitalfarm_storage::repo::subjects;

use crate::error::{AppError, AppResult};
use crate::sharing::{Receipt, Standing, SubjectRead};
use crate::state::AppState;
use crate::views::ms_to_time;

/// How far back the subject's rhythm and last reading are looked for.
pub const HISTORY_MS: i64 = elderly::HISTORY_MS;
/// At most this many reading times of one consent window feed the rhythm
/// (the latest ones): four metrics a minute for 4 days.
pub const RHYTHM_TIMES: u64 = 25_000;
/// The source of heart rates derived from ECG recordings (`routes::ecg`).
pub const ECG_SOURCE: &str = crate::readings::Source::Ecg.as_str();
/// Most subjects one run judges.
pub const MAX_SUBJECTS: usize = 5_000;
/// The sources whose readings show the person is active at home: their
/// own devices, entries made by hand, and heart rates from their own ECG
/// recordings. Imported records (`hospital`, from a FHIR import) are
/// measurements taken elsewhere, often long before they arrive, so they
/// never clear inactivity; neither does any source added later until it
/// is listed here.
pub const SIGN_OF_LIFE_SOURCES: [&str; 3] = ["device", "manual", ECG_SOURCE];

/// Which source of a metric's readings to read.
#[derive(Clone, Copy)]
enum SourceFilter {
    Any,
    Only(&'static str),
    Not(&'static str),
}

/// The rows (component, value) of the latest reading of `metric` in
/// `[from, to)`, with its time; one reverse index read.
async fn latest(
    state: &AppState,
    subject: SubjectId,
    metric: &str,
    from: i64,
    to: i64,
    source: SourceFilter,
) -> AppResult<Option<(i64, Vec<(String, f64)>)>> {
    if from >= to {
        return Ok(None);
    }
    let mut q = reading::Entity::find()
        .select_only()
        .columns([
            reading::Column::TsMs,
            reading::Column::Component,
            reading::Column::Value,
        ])
        .filter(reading::Column::SubjectId.eq(subject.as_uuid()))
        .filter(reading::Column::Metric.eq(metric))
        .filter(reading::Column::TsMs.gte(from))
        .filter(reading::Column::TsMs.lt(to));
    q = match source {
        SourceFilter::Any => q,
        SourceFilter::Only(s) => q.filter(reading::Column::Source.eq(s)),
        SourceFilter::Not(s) => q.filter(reading::Column::Source.ne(s)),
    };
    // A reading has at most a few components; eight rows hold the latest
    // one whole even when two devices measured at the same millisecond.
    let rows: Vec<(i64, String, f64)> = q
        .order_by_desc(reading::Column::TsMs)
        .limit(8)
        .into_tuple()
        .all(state.db.conn())
        .await
        .map_err(vitalfarm_storage::StorageError::from)?;
    let Some(&(ts, _, _)) = rows.first() else {
        return Ok(None);
    };
    Ok(Some((
        ts,
        rows.into_iter().filter(|r| r.0 == ts).map(|(_, c, v)| (c, v)).collect(),
    )))
}

/// Times of readings of any of `metrics` in `[from, to)` from one of
/// [`SIGN_OF_LIFE_SOURCES`], the latest `limit`: one range read of the
/// covering `(subject, metric, ts, .., source)` index per metric, merged
/// by the database (the source is in the index, so the filter needs no
/// table read).
async fn times(
    state: &AppState,
    subject: SubjectId,
    metrics: &[&str],
    from: i64,
    to: i64,
    limit: u64,
) -> AppResult<Vec<i64>> {
    let rows: Vec<i64> = reading::Entity::find()
        .select_only()
        .column(reading::Column::TsMs)
        .filter(reading::Column::SubjectId.eq(subject.as_uuid()))
        .filter(reading::Column::Metric.is_in(metrics.iter().copied()))
        .filter(reading::Column::TsMs.gte(from))
        .filter(reading::Column::TsMs.lt(to))
        .filter(reading::Column::Source.is_in(SIGN_OF_LIFE_SOURCES))
        .order_by_desc(reading::Column::TsMs)
        .limit(limit)
        .into_tuple()
        .all(state.db.conn())
        .await
        .map_err(vitalfarm_storage::StorageError::from)?;
    Ok(rows)
}

/// The company a principal runs the watch for: `asked`, or its only
/// company membership with a role that reads data.
pub async fn watching_company(
    state: &AppState,
    principal: &crate::principal::Principal,
    asked: Option<Uuid>,
) -> AppResult<MembershipId> {
    let acting = crate::sharing::acting_memberships(state, principal, vitalfarm_domain::Permission::ReadData).await?;
    let mut companies = Vec::new();
    for m in acting {
        if let Some((row, _)) = vitalfarm_storage::repo::accounts::find_membership(&state.db, m).await?
            && row.kind == "company"
        {
            companies.push(m);
        }
    }
    match asked {
        Some(id) => companies
            .into_iter()
            .find(|m| m.as_uuid() == id)
            .ok_or(AppError::NotFound("membership")),
        None => match companies.as_slice() {
            [one] => Ok(*one),
            [] => Err(AppError::Forbidden(
                "the elderly watch is run by a company; you read data for none".into(),
            )),
            _ => Err(AppError::InvalidParameter {
                field: "membership_id".into(),
                message: "you read data for several companies: name the one watching".into(),
            }),
        },
    }
}

/// The subjects `company` watches at `now_ms`: its own enrollees, then the
/// subjects of active consents given to it for the purpose `care`.
pub async fn watched_subjects(state: &AppState, company: MembershipId, now_ms: i64) -> AppResult<Vec<SubjectId>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut after = None;
    loop {
        let page = subjects::list(&state.db, company, Some(SubjectKind::Enrollee), after, 1000).await?;
        for s in &page.items {
            if seen.insert(s.id) {
                out.push(SubjectId::from_uuid(s.id));
            }
        }
        match page.next {
            Some(next) if !page.items.is_empty() => after = Some(next),
            _ => break,
        }
    }
    for s in crate::sharing::care_subjects(&state.db, company, now_ms).await? {
        if seen.insert(s.as_uuid()) {
            out.push(s);
        }
    }
    Ok(out)
}

fn reason_view(r: elderly::Reason) -> AppResult<WatchReason> {
    Ok(WatchReason {
        rule: r.rule.as_str().to_owned(),
        status: r.status.as_str().to_owned(),
        metric: r.metric.map(str::to_owned),
        values: r.values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        at: r.at_ms.map(ms_to_time).transpose()?,
        category: r.category,
        threshold: r.threshold,
        dataset: r.dataset.map(|d| DatasetUse {
            name: d.name.to_owned(),
            source: d.source,
            citation: d.citation,
        }),
        source: r.source,
    })
}

/// Whether a subject born on `birth` is on the board at `on`: from
/// `min_age_years` whole years of age, or always without a birth date
/// (then judged by adult ranges, and the answer says so). A subject born
/// after `on` is not.
pub fn old_enough(birth: Option<chrono::NaiveDate>, on: chrono::NaiveDate, min_age_years: u32) -> bool {
    birth.is_none_or(|b| on.years_since(b).is_some_and(|years| years >= min_age_years))
}

/// Judges one subject at `at_ms`, reading what the consents open, and
/// returns its line of the board with its status and the consents used;
/// `None`, reading nothing, when the subject is younger than
/// `min_age_years` at `at_ms` ([`old_enough`]).
pub async fn watch_subject(
    state: &AppState,
    read: &SubjectRead,
    at_ms: i64,
    lookback_ms: i64,
    min_age_years: u32,
) -> AppResult<Option<(WatchedSubject, Status, Receipt)>> {
    let at = ms_to_time(at_ms)?;
    if !old_enough(read.subject.birth_date, at.date_naive(), min_age_years) {
        return Ok(None);
    }
    let sid = read.subject_id();
    let mut receipt = read.subject_receipt();
    let mut not_shared = Vec::new();
    let end = at_ms.saturating_add(1);
    let recent = at_ms.saturating_sub(lookback_ms);
    // The window of `metric` in [from, end) the consents open, if any.
    let mut open = |metric: &'static str, from: i64, receipt: &mut Receipt| match read.window(
        metric,
        from,
        end,
        ConsentAccess::Read,
    ) {
        Ok(w) if !w.is_empty() => {
            receipt.extend(w.consent);
            Some((w.from, w.to))
        }
        _ => {
            if !not_shared.contains(&metric) {
                not_shared.push(metric);
            }
            None
        }
    };

    let mut inputs = Inputs {
        now_ms: at_ms,
        age_days: read.subject.birth_date.and_then(|b| age_days(b, at.date_naive())),
        ..Inputs::default()
    };
    if let Some((from, to)) = open("blood_pressure", recent, &mut receipt)
        && let Some((ts, rows)) = latest(state, sid, "blood_pressure", from, to, SourceFilter::Any).await?
    {
        let get = |c: &str| rows.iter().find(|r| r.0 == c).map(|r| r.1);
        if let (Some(systolic), Some(diastolic)) = (get("systolic"), get("diastolic")) {
            inputs.blood_pressure = Some(Pressure {
                systolic,
                diastolic,
                at_ms: ts,
            });
        }
    }
    let scalar = |found: Option<(i64, Vec<(String, f64)>)>| {
        found.and_then(|(ts, rows)| rows.first().map(|r| Timed { value: r.1, at_ms: ts }))
    };
    if let Some((from, to)) = open("body_temperature", recent, &mut receipt) {
        inputs.temperature = scalar(latest(state, sid, "body_temperature", from, to, SourceFilter::Any).await?);
    }
    if let Some((from, to)) = open("heart_rate", recent, &mut receipt) {
        inputs.heart_rate = scalar(latest(state, sid, "heart_rate", from, to, SourceFilter::Not(ECG_SOURCE)).await?);
        inputs.ecg_heart_rate =
            scalar(latest(state, sid, "heart_rate", from, to, SourceFilter::Only(ECG_SOURCE)).await?);
    }
    if let Some((from, to)) = open("spo2", recent, &mut receipt) {
        inputs.spo2 = scalar(latest(state, sid, "spo2", from, to, SourceFilter::Any).await?);
    }
    if let Some((from, to)) = open("blood_glucose", recent, &mut receipt) {
        inputs.glucose = scalar(latest(state, sid, "blood_glucose", from, to, SourceFilter::Any).await?);
    }

    // Silence: the latest reading of any readable metric within 14 days,
    // and the rhythm from the times of all of them (a metric measured
    // once, like a single blood pressure, has no rhythm of its own), both
    // from the person's own sources only (`times`). The metrics one
    // consent window covers are read together.
    let history = at_ms.saturating_sub(HISTORY_MS);
    let mut groups: Vec<MetricGroup<'_>> = Vec::new();
    for (metric, w) in read.readable_metrics(history, end, ConsentAccess::Read) {
        match groups.iter_mut().find(|g| g.0 == (w.from, w.to) && g.1 == w.consent) {
            Some(g) => g.2.push(metric),
            None => groups.push(((w.from, w.to), w.consent, vec![metric])),
        }
    }
    let mut all_times = Vec::new();
    for ((from, to), consent, metrics) in groups {
        let t = times(state, sid, &metrics, from, to, RHYTHM_TIMES).await?;
        if !t.is_empty() {
            receipt.extend(consent);
        }
        all_times.extend(t);
    }
    inputs.last_reading_ms = all_times.iter().copied().max();
    inputs.expected_gap_ms = elderly::expected_gap_ms(&all_times);

    let verdict = elderly::judge(&inputs);
    let not_judged = verdict
        .not_judged
        .iter()
        .map(|(m, why)| ((*m).to_owned(), why.clone()))
        .collect();
    let view = WatchedSubject {
        subject_id: sid.as_uuid(),
        display_name: Some(read.subject.display_name.clone()).filter(|n| !n.is_empty()),
        membership_id: read.subject.membership_id,
        status: verdict.status.as_str().to_owned(),
        reasons: verdict.reasons.into_iter().map(reason_view).collect::<AppResult<_>>()?,
        inputs: WatchInputs {
            age_days: inputs.age_days,
            age_known: read.subject.birth_date.is_some(),
            age_note: read
                .subject
                .birth_date
                .is_none()
                .then(|| elderly::AGE_UNKNOWN_NOTE.to_owned()),
            blood_pressure: inputs
                .blood_pressure
                .map(|p| {
                    Ok::<_, AppError>(PressureValue {
                        systolic: p.systolic,
                        diastolic: p.diastolic,
                        at: ms_to_time(p.at_ms)?,
                    })
                })
                .transpose()?,
            body_temperature: inputs.temperature.map(timed_view).transpose()?,
            heart_rate: inputs.heart_rate.map(timed_view).transpose()?,
            ecg_heart_rate: inputs.ecg_heart_rate.map(timed_view).transpose()?,
            spo2: inputs.spo2.map(timed_view).transpose()?,
            blood_glucose: inputs.glucose.map(timed_view).transpose()?,
            last_reading_at: inputs.last_reading_ms.map(ms_to_time).transpose()?,
            expected_gap_seconds: inputs.expected_gap_ms.map(|g| g / 1000),
            not_shared: not_shared.into_iter().map(str::to_owned).collect(),
            not_judged,
        },
    };
    if matches!(read.standing, Standing::Shared(_)) {
        read.record(state, "mashups/elderly-watch", &receipt).await?;
    }
    Ok(Some((view, verdict.status, receipt)))
}

/// Metrics read in one consent window: the window, its consent, the codes.
type MetricGroup<'a> = ((i64, i64), Option<vitalfarm_domain::ConsentId>, Vec<&'a str>);

fn timed_view(t: Timed) -> AppResult<TimedValue> {
    Ok(TimedValue {
        value: t.value,
        at: ms_to_time(t.at_ms)?,
    })
}
