//! Mashups (`/v1/mashups`): the catalog of compound services, the elderly
//! watch of a company's people and the infant monitor of one child. Reads
//! go through `sharing` (consents, audit, receipts); the decisions are
//! `vitalfarm_domain::mashups`, the gathering `vitalfarm_app::mashups`.

use std::collections::BTreeMap;

use actix_web::http::Method;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{CustomizeResponder, HttpRequest, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;
use vitalfarm_domain::consent::Access as ConsentAccess;
use vitalfarm_domain::mashups::{Status, age_days, infant};
use vitalfarm_domain::oauth::Scope;
use vitalfarm_domain::{ConsentId, SubjectId};
use vitalfarm_openapi::doc::{ForbiddenResponse, NotFoundResponse};
use vitalfarm_openapi::mashups::{
    ElderlyWatchRequest, ElderlyWatchResponse, EpisodeWorst, InfantEpisode, InfantMetric, InfantMonitorResponse,
    InfantNorm, MashupCatalog, MashupEntry, WatchSummary,
};
use vitalfarm_storage::repo::readings;

use super::RouteSet;
use crate::error::{ApiError, ApiResult, AppError, AppResult};
use crate::extract::{Auth, PathSubjectId, Query};
use vitalfarm_app::authz::Claimed;
use vitalfarm_app::mashups;
use vitalfarm_app::sharing::{self, Receipt};
use vitalfarm_app::state::AppState;
use vitalfarm_app::views::ms_to_time;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/mashups", catalog);
    r.add(Method::POST, "/v1/mashups/elderly-watch/run", elderly_watch);
    r.add(Method::GET, "/v1/mashups/infant-monitor/{sid}", infant_monitor);
}

/// Subjects of the elderly watch judged at the same time.
const WATCH_CONCURRENCY: usize = 8;

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    (AppError::InvalidParameter {
        field: field.into(),
        message: message.into(),
    })
    .into()
}

fn entry(
    name: &str,
    title: &str,
    description: &str,
    method: &str,
    path: &str,
    inputs: &[&str],
    datasets: &[&str],
) -> MashupEntry {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    MashupEntry {
        name: name.into(),
        title: title.into(),
        description: description.into(),
        method: method.into(),
        path: path.into(),
        inputs: owned(inputs),
        datasets: owned(datasets),
        scope: crate::scopes::lookup(method, path)
            .flatten()
            .map_or_else(|| Scope::AnalyticsRead.as_str().to_owned(), |s| s.as_str().to_owned()),
    }
}

/// The compound services over personal, shared and public data, with the
/// metrics they read and the public datasets they use.
#[utoipa::path(get, path = "/v1/mashups", tag = "analytics",
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The catalog.", body = MashupCatalog)))]
pub async fn catalog(_auth: Auth) -> web::Json<MashupCatalog> {
    const BP: &str = "blood-pressure-categories";
    const VITALS: &str = "vital-sign-ranges";
    const TEMP: &str = "temperature-thresholds";
    const NEWS2: &str = "news2-chart-1";
    const NG143: &str = "nice-ng143-traffic-light";
    const GLUCOSE: &str = "ada-glycaemic-thresholds";
    web::Json(MashupCatalog {
        items: vec![
            entry(
                "elderly-watch",
                "Elderly watch",
                "One status (ok, attention, emergency) per person a company watches, from the latest blood pressure, \
                 temperature, heart rate (device and ECG), SpO2 and blood glucose against the public datasets, and \
                 from silence longer than the person's own rhythm; with the reasons and the values used.",
                "POST",
                "/v1/mashups/elderly-watch/run",
                &[
                    "blood_pressure",
                    "body_temperature",
                    "heart_rate",
                    "spo2",
                    "blood_glucose",
                ],
                &[BP, TEMP, VITALS, NEWS2, NG143, GLUCOSE],
            ),
            entry(
                "infant-monitor",
                "Infant monitor",
                "Temperature, SpO2 and heart rate of a child over a period against the child's age band, with the \
                 episodes of fever, hypothermia, low SpO2, tachycardia and bradycardia.",
                "GET",
                "/v1/mashups/infant-monitor/{sid}",
                &["body_temperature", "spo2", "heart_rate"],
                &[TEMP, VITALS],
            ),
            entry(
                "ecg",
                "ECG analysis",
                "R peaks and heart rate of a single-lead ECG recording in a farm.",
                "POST",
                "/v1/subjects/{sid}/ecg/analyze",
                &["ecg", "heart_rate"],
                &[],
            ),
            entry(
                "correlation",
                "Correlation",
                "Pearson correlation of two series of a subject, paired by time window.",
                "GET",
                "/v1/analytics/correlation",
                &["heart_rate", "blood_pressure"],
                &[],
            ),
            entry(
                "cohort",
                "Cohort",
                "Statistics of one metric over many subjects, judged against the public datasets.",
                "POST",
                "/v1/analytics/cohort",
                &["heart_rate"],
                &[VITALS],
            ),
        ],
    })
}

/// `PT24H`, `PT90M`, `PT1H30M` in milliseconds: more than zero, at most 720 hours.
fn parse_lookback(text: &str) -> Option<i64> {
    let rest = text.strip_prefix("PT")?;
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut units = 0;
    for c in rest.chars() {
        match c {
            '0'..='9' if digits.len() < 6 => digits.push(c),
            'H' | 'M' if !digits.is_empty() => {
                let n: i64 = digits.parse().ok()?;
                total += n * if c == 'H' { 3_600_000 } else { 60_000 };
                digits.clear();
                units += 1;
            }
            _ => return None,
        }
    }
    (digits.is_empty() && units > 0 && total > 0 && total <= 720 * 3_600_000).then_some(total)
}

/// Judges the people a company watches: its enrollees and the subjects
/// shared with it by an active consent for the purpose `care`. Each gets
/// `ok`, `attention` or `emergency`, the worst of the rules that fired.
/// The latest blood pressure, temperature, heart rate (from devices and
/// from ECG), SpO2 and blood glucose are each judged by the person's norms
/// for their age (ACC/AHA 2017, NEWS2 for adults, NICE NG143 and PALS for
/// children, ADA for glucose): a category of moderate severity raises
/// attention, a severe one is an emergency; every reason names its
/// dataset and row. Silence (longer than 3 × the 95th percentile of the
/// person's gaps over 14 days, at least an hour: attention; twice that
/// or a day: emergency; no reading at all: attention) counts only the
/// person's own readings: imported hospital records never clear it. A
/// metric the consent does not cover is listed in `inputs.not_shared`
/// and neither read nor judged. Only subjects of the configured minimum
/// age (`elderly_watch_min_age_years`, default 65) at `at` are on the
/// board; one without a birth date stays on it, judged by adult ranges,
/// with `inputs.age_known` false and `inputs.age_note` saying so. Every
/// reason names its values, threshold, category and source (the dataset
/// and its citation, or the watch's own rule for inactivity). The body is
/// optional.
#[utoipa::path(post, path = "/v1/mashups/elderly-watch/run", tag = "analytics",
    request_body(content = ElderlyWatchRequest, description = "Optional.", content_type = "application/json"),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The board, emergencies first.", body = ElderlyWatchResponse,
            headers(("Vitalfarm-Consent" = String, description = "Ids of the consents that permitted reading another membership's data; absent for one's own."))),
        (status = 403, response = ForbiddenResponse),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn elderly_watch(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<CustomizeResponder<web::Json<ElderlyWatchResponse>>> {
    let body: ElderlyWatchRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ElderlyWatchRequest::default()
    } else {
        let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !content_type.is_some_and(crate::extract::json::is_json) {
            return Err((AppError::UnsupportedMediaType {
                expected: "application/json",
            })
            .into());
        }
        crate::extract::json::parse(&body)?
    };
    let lookback_text = body.lookback.clone().unwrap_or_else(|| "PT24H".to_owned());
    let lookback_ms = parse_lookback(&lookback_text).ok_or_else(|| {
        AppError::field(
            "lookback",
            "must be an ISO 8601 duration of hours or minutes up to PT720H",
        )
    })?;
    if body
        .subject_ids
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > mashups::MAX_SUBJECTS)
    {
        return Err(AppError::field(
            "subject_ids",
            format!("must name 1 to {} subjects", mashups::MAX_SUBJECTS),
        )
        .into());
    }
    let generated_at = Utc::now();
    let at = body.at.unwrap_or(generated_at);
    let at_ms = at.timestamp_millis();
    let company = mashups::watching_company(&state, &auth.0, body.membership_id).await?;
    let mut watched = mashups::watched_subjects(&state, company, generated_at.timestamp_millis()).await?;
    if let Some(only) = &body.subject_ids {
        if let Some(missing) = only.iter().find(|id| !watched.iter().any(|w| w.as_uuid() == **id)) {
            tracing::debug!(subject = %missing, "asked for a subject the company does not watch");
            return Err(AppError::NotFound("subject").into());
        }
        watched.retain(|w| only.contains(&w.as_uuid()));
    }
    if watched.len() > mashups::MAX_SUBJECTS {
        return Err(AppError::field(
            "subject_ids",
            format!(
                "the company watches more than {} subjects: name the ones to judge",
                mashups::MAX_SUBJECTS
            ),
        )
        .into());
    }

    // Subjects are judged a few at a time: each is a handful of short
    // indexed reads, so overlapping them keeps the database busy.
    let (st, principal): (&AppState, _) = (&state, &auth.0);
    let min_age = state.config.elderly_watch_min_age_years;
    let judged: Vec<AppResult<Option<_>>> = futures_util::stream::iter(watched)
        .map(|sid| async move {
            // A consent can end between the listing and the read: that
            // subject is then simply no longer watched. (The listing names
            // the subject; the read decides.)
            let read = match sharing::subject(st, principal, Claimed::new(sid)).await {
                Ok(read) => read,
                Err(AppError::NotFound(_) | AppError::Forbidden(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            mashups::watch_subject(st, &read, at_ms, lookback_ms, min_age).await
        })
        .buffered(WATCH_CONCURRENCY)
        .collect()
        .await;
    let mut receipt = Receipt::default();
    let mut lines = Vec::with_capacity(judged.len());
    for j in judged {
        let Some((line, status, used)) = j? else { continue };
        for id in used.ids() {
            receipt.add(ConsentId::from_uuid(id));
        }
        lines.push((status, line));
    }
    lines.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.subject_id.cmp(&b.1.subject_id)));
    let count = |s: Status| lines.iter().filter(|l| l.0 == s).count() as u64;
    let summary = WatchSummary {
        ok: count(Status::Ok),
        attention: count(Status::Attention),
        emergency: count(Status::Emergency),
    };
    tracing::info!(membership = %company, subjects = lines.len(), emergency = summary.emergency, "elderly watch run");
    Ok(crate::receipts::json(
        &receipt,
        ElderlyWatchResponse {
            generated_at,
            at,
            lookback: lookback_text,
            membership_id: company.as_uuid(),
            subjects: lines.into_iter().map(|l| l.1).collect(),
            summary,
            consents: receipt.ids(),
        },
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InfantQuery {
    /// Default: 24 hours before `to`; the period may span at most 31 days.
    pub from: Option<DateTime<Utc>>,
    /// Default: now.
    pub to: Option<DateTime<Utc>>,
}

/// Longest period of the infant monitor.
const INFANT_MAX_MS: i64 = 31 * 24 * 60 * 60 * 1000;
/// Most readings of one metric read for one period: one every 10 seconds
/// for 31 days.
const INFANT_MAX_ROWS: u64 = 270_000;

/// The names the monitor gives the metrics it reads.
fn label(metric: &str) -> &'static str {
    match metric {
        "body_temperature" => "temperature",
        "spo2" => "spo2",
        _ => "heart_rate",
    }
}

/// Temperature, SpO2 and heart rate of a child over `[from, to)` against
/// the age band of the public datasets (`vital-sign-ranges`,
/// `temperature-thresholds`): count, min, max, mean, median and the share
/// out of range per metric, and the episodes of consecutive out-of-range
/// readings (less than 30 minutes apart) with their worst value. The
/// subject needs a birth date and must be younger than 16 years (where the
/// datasets' child bands end); otherwise 400 naming `sid`. Metrics no
/// consent shares are listed with `shared: false`; if none is shared, 403.
#[utoipa::path(get, path = "/v1/mashups/infant-monitor/{sid}", tag = "analytics",
    params(("sid" = Uuid, Path, description = "Subject id"), InfantQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Statistics and episodes.", body = InfantMonitorResponse,
            headers(("Vitalfarm-Consent" = String, description = "Ids of the consents that permitted reading another membership's data; absent for one's own."))),
        (status = 403, response = ForbiddenResponse),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn infant_monitor(
    state: web::Data<AppState>,
    auth: Auth,
    sid: PathSubjectId,
    Query(q): Query<InfantQuery>,
) -> ApiResult<CustomizeResponder<web::Json<InfantMonitorResponse>>> {
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - chrono::Duration::hours(24));
    crate::extract::query::check_period(Some(from), Some(to))?;
    let span = to.timestamp_millis().saturating_sub(from.timestamp_millis());
    if span > INFANT_MAX_MS {
        return Err(bad("from", "the period may span at most 31 days"));
    }
    let read = sharing::subject(&state, &auth.0, sid.0).await?;
    let birth = read
        .subject
        .birth_date
        .ok_or_else(|| bad("sid", "the subject has no birth date; the monitor needs the age"))?;
    let age = age_days(birth, to.date_naive()).ok_or_else(|| bad("sid", "the subject is born after `to`"))?;
    if !infant::applies(age) {
        return Err(bad(
            "sid",
            format!(
                "the subject is {age} days old; the infant monitor applies to children younger than {} days (16 years)",
                infant::ADULT_FROM_DAYS
            ),
        ));
    }
    let subject = SubjectId::from_uuid(read.subject.id);
    let mut receipt = read.subject_receipt();
    let mut metrics = BTreeMap::new();
    let mut episodes = Vec::new();
    for metric in infant::METRICS {
        let norm = infant::norm(metric, age);
        let window = read
            .window(
                metric,
                from.timestamp_millis(),
                to.timestamp_millis(),
                ConsentAccess::Read,
            )
            .ok()
            .filter(|w| !w.is_empty());
        let points: Vec<(i64, f64)> = match &window {
            Some(w) => {
                receipt.extend(w.consent);
                readings::list(&state.db, subject, metric, w.from, w.to, None, INFANT_MAX_ROWS)
                    .await?
                    .into_iter()
                    .map(|r| (r.ts_ms, r.value))
                    .collect()
            }
            None => Vec::new(),
        };
        let (stats, found) = infant::analyse(metric, &points, age, norm.as_ref());
        episodes.extend(found);
        metrics.insert(
            label(metric).to_owned(),
            InfantMetric {
                metric: metric.to_owned(),
                shared: window.is_some(),
                count: stats.as_ref().map_or(0, |s| s.count),
                min: stats.as_ref().map(|s| s.min),
                max: stats.as_ref().map(|s| s.max),
                mean: stats.as_ref().map(|s| s.mean),
                p50: stats.as_ref().map(|s| s.p50),
                out_of_range_share: stats.as_ref().and_then(|s| s.out_of_range_share),
                norm: norm.map(|n| InfantNorm {
                    low: n.low,
                    high: n.high,
                    band: n.band,
                    dataset: n.dataset.to_owned(),
                    source: n.source,
                }),
            },
        );
    }
    if metrics.values().all(|m| !m.shared) {
        return Err(AppError::Forbidden(
            "no active consent shares this subject's temperature, SpO2 or heart rate with you".into(),
        )
        .into());
    }
    read.record(&state, "mashups/infant-monitor", &receipt).await?;
    episodes.sort_by_key(|e| (e.start_ms, e.metric));
    Ok(crate::receipts::json(
        &receipt,
        InfantMonitorResponse {
            subject_id: subject.as_uuid(),
            from,
            to,
            age_days: age,
            metrics,
            episodes: episodes
                .into_iter()
                .map(|e| {
                    Ok(InfantEpisode {
                        metric: label(e.metric).to_owned(),
                        kind: e.kind.as_str().to_owned(),
                        start: ms_to_time(e.start_ms)?,
                        end: ms_to_time(e.end_ms)?,
                        worst: EpisodeWorst {
                            value: e.worst_value,
                            at: ms_to_time(e.worst_at_ms)?,
                        },
                        readings: e.readings,
                    })
                })
                .collect::<AppResult<_>>()?,
            consents: receipt.ids(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_lookback;

    #[test]
    fn lookbacks_are_hours_and_minutes() {
        assert_eq!(parse_lookback("PT24H"), Some(24 * 3_600_000));
        assert_eq!(parse_lookback("PT90M"), Some(90 * 60_000));
        assert_eq!(parse_lookback("PT1H30M"), Some(90 * 60_000));
        assert_eq!(parse_lookback("PT720H"), Some(720 * 3_600_000));
        for bad in [
            "PT721H",
            "PT0H",
            "PT",
            "P1D",
            "24H",
            "PTH",
            "PT5S",
            "PT1H5",
            "PT9999999H",
        ] {
            assert_eq!(parse_lookback(bad), None, "{bad}");
        }
    }
}
