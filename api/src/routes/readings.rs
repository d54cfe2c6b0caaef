//! Readings: devices send them (`POST /v1/ingest/readings`), members read
//! them (`GET /v1/subjects/{sid}/readings`).

use std::collections::BTreeMap;

use actix_web::http::Method;
use actix_web::{CustomizeResponder, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;
use vitalfarm_domain::consent::Access as ConsentAccess;
use vitalfarm_domain::metrics;
use vitalfarm_openapi::doc::{ConflictResponse, ForbiddenResponse};
use vitalfarm_openapi::readings::{
    AggregateBucket, AggregateResponse, BucketWidth, IngestRequest, IngestResponse, LatestValue, MetricSummary,
    Reading, ReadingPage, SummaryResponse,
};
use vitalfarm_storage::repo::readings;

use super::RouteSet;
use crate::error::{ApiResult, AppError, AppResult};
use crate::extract::device::DeviceAuth;
use crate::extract::query::check_period;
use crate::extract::{Auth, Json, PathSubjectId, Query};
use vitalfarm_app::sharing::{self, Receipt, Standing};
use vitalfarm_app::state::AppState;
use vitalfarm_app::views::ms_to_time;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/ingest/readings", ingest);
    r.add(Method::GET, "/v1/subjects/{sid}/readings", list);
    r.add(Method::GET, "/v1/subjects/{sid}/readings/aggregate", aggregate);
    r.add(Method::GET, "/v1/subjects/{sid}/summary", summary);
}

/// Receives readings from a device: up to 5,000 per request, each
/// identified by (device, metric, ts). Valid readings are stored even when
/// others are rejected; a reading stored before (a retry) is counted as a
/// duplicate and not stored again. Readings land with the subject the
/// device is bound to.
#[utoipa::path(post, path = "/v1/ingest/readings", tag = "ingest",
    request_body = IngestRequest,
    security(("device" = [])),
    responses(
        (status = 200, description = "What was stored, what was a duplicate, and what was rejected with why.", body = IngestResponse),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn ingest(
    state: web::Data<AppState>,
    device: DeviceAuth,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<web::Json<IngestResponse>> {
    let items = body
        .get("readings")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| AppError::field("readings", "must be an array of readings"))?;
    if let Some(extra) = body.as_object().and_then(|o| o.keys().find(|k| *k != "readings")) {
        return Err(AppError::field(extra.clone(), "unknown field").into());
    }
    let outcome = vitalfarm_app::readings::ingest_device_batch(&state, &device.0, items).await?;
    Ok(web::Json(outcome))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadingQuery {
    /// A metric code from `GET /v1/metrics`.
    #[param(example = "heart_rate")]
    pub metric: String,
    /// From this time (inclusive, RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Until this time (exclusive, RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Readings per page, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

fn encode_cursor(ts_ms: i64, device: Option<Uuid>) -> String {
    URL_SAFE_NO_PAD.encode(format!("{ts_ms}_{}", device.unwrap_or_default()))
}

fn decode_cursor(c: &str) -> Option<(i64, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let (ts, dev) = text.split_once('_')?;
    Some((ts.parse().ok()?, dev.parse().ok()?))
}

/// Rows of one reading are adjacent (same time and device): folds them.
fn group(metric: &metrics::MetricDef, rows: Vec<readings::Listed>) -> AppResult<Vec<Reading>> {
    let mut out: Vec<(i64, Option<Uuid>, Reading)> = Vec::new();
    for r in rows {
        let ts = ms_to_time(r.ts_ms)?;
        match out.last_mut() {
            Some((t, d, reading)) if *t == r.ts_ms && *d == r.device_id && !r.component.is_empty() => {
                reading
                    .components
                    .get_or_insert_with(BTreeMap::new)
                    .insert(r.component, r.value);
            }
            _ => {
                let (value, components) = if r.component.is_empty() {
                    (Some(r.value), None)
                } else {
                    (None, Some(BTreeMap::from([(r.component.clone(), r.value)])))
                };
                out.push((
                    r.ts_ms,
                    r.device_id,
                    Reading {
                        metric: metric.code.to_owned(),
                        ts,
                        value,
                        components,
                        unit: metric.unit.to_owned(),
                        device_id: r.device_id,
                        source: r.source,
                    },
                ));
            }
        }
    }
    Ok(out.into_iter().map(|(_, _, r)| r).collect())
}

/// A subject's readings of one metric, in time order, paginated.
#[utoipa::path(get, path = "/v1/subjects/{sid}/readings", tag = "readings",
    params(("sid" = Uuid, Path, description = "Subject id"), ReadingQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of readings.", body = ReadingPage, headers(("Vitalfarm-Consent" = String, description = "Ids of the consents that permitted reading another membership's data; absent for one's own.")))))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    sid: PathSubjectId,
    Query(q): Query<ReadingQuery>,
) -> ApiResult<CustomizeResponder<web::Json<ReadingPage>>> {
    let metric = metrics::find(&q.metric).ok_or_else(|| AppError::InvalidParameter {
        field: "metric".into(),
        message: "unknown metric; see GET /v1/metrics".into(),
    })?;
    let limit = crate::extract::PageQuery {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let after = match &q.cursor {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| AppError::InvalidParameter {
            field: "cursor".into(),
            message: "is not a cursor this API returned".into(),
        })?),
    };
    check_period(q.from, q.to)?;
    let from = q.from.map_or(i64::MIN, |t| t.timestamp_millis());
    let to = q.to.map_or(i64::MAX, |t| t.timestamp_millis());
    let read = sharing::subject(&state, &auth.0, sid.0).await?;
    let window = read
        .readings(&state, metric.code, from, to, ConsentAccess::Read)
        .await?;
    let mut receipt = Receipt::default();
    receipt.extend(window.consent);
    let per_reading = metric.components.len().max(1) as u64;
    let rows = if window.is_empty() {
        Vec::new()
    } else {
        readings::list(
            &state.db,
            read.subject_id(),
            metric.code,
            window.from,
            window.to,
            after,
            (limit + 1) * per_reading,
        )
        .await?
    };
    let mut items = group(metric, rows)?;
    let more = items.len() as u64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        items
            .last()
            .map(|r| encode_cursor(r.ts.timestamp_millis(), r.device_id))
    } else {
        None
    };
    Ok(crate::receipts::json(
        &receipt,
        ReadingPage {
            items,
            next_cursor,
            consents: receipt.ids(),
        },
    ))
}

/// Most buckets one aggregate request may span.
const MAX_BUCKETS: i64 = 10_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AggregateQuery {
    /// A metric code from `GET /v1/metrics`.
    #[param(example = "heart_rate")]
    pub metric: String,
    /// Default: 24 hours before `to`.
    pub from: Option<DateTime<Utc>>,
    /// Default: now.
    pub to: Option<DateTime<Utc>>,
    /// `5m`, `1h` (default) or `1d`; at most 10,000 buckets per request.
    pub bucket: Option<BucketWidth>,
}

/// A subject's readings of one metric in time buckets: count, min, max and
/// mean per bucket (per component for blood pressure).
#[utoipa::path(get, path = "/v1/subjects/{sid}/readings/aggregate", tag = "readings",
    params(("sid" = Uuid, Path, description = "Subject id"), AggregateQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The buckets that have readings.", body = AggregateResponse, headers(("Vitalfarm-Consent" = String, description = "Ids of the consents that permitted reading another membership's data; absent for one's own.")))))]
pub async fn aggregate(
    state: web::Data<AppState>,
    auth: Auth,
    sid: PathSubjectId,
    Query(q): Query<AggregateQuery>,
) -> ApiResult<CustomizeResponder<web::Json<AggregateResponse>>> {
    let metric = metrics::find(&q.metric).ok_or_else(|| AppError::InvalidParameter {
        field: "metric".into(),
        message: "unknown metric; see GET /v1/metrics".into(),
    })?;
    let bucket = q.bucket.unwrap_or(BucketWidth::Hour);
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - chrono::Duration::hours(24));
    check_period(Some(from), Some(to))?;
    let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
    if (to_ms - from_ms) / bucket.millis() > MAX_BUCKETS {
        return Err((AppError::InvalidParameter {
            field: "bucket".into(),
            message: format!(
                "the period spans more than {MAX_BUCKETS} buckets; use a wider bucket or a shorter period"
            ),
        })
        .into());
    }
    let read = sharing::subject(&state, &auth.0, sid.0).await?;
    let window = read
        .readings(&state, metric.code, from_ms, to_ms, ConsentAccess::Read)
        .await?;
    let mut receipt = Receipt::default();
    receipt.extend(window.consent);
    let rows = if window.is_empty() {
        Vec::new()
    } else {
        readings::aggregate(
            &state.db,
            read.subject_id(),
            metric.code,
            window.from,
            window.to,
            bucket.millis(),
        )
        .await?
    };
    Ok(crate::receipts::json(
        &receipt,
        AggregateResponse {
            metric: metric.code.to_owned(),
            unit: metric.unit.to_owned(),
            bucket,
            from,
            to,
            buckets: rows
                .into_iter()
                .map(|b| {
                    Ok(AggregateBucket {
                        start: ms_to_time(b.start_ms)?,
                        component: (!b.component.is_empty()).then_some(b.component),
                        count: u64::try_from(b.count).unwrap_or(0),
                        min: b.min,
                        max: b.max,
                        mean: b.mean,
                    })
                })
                .collect::<AppResult<_>>()?,
            consents: receipt.ids(),
        },
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// Default: all time.
    pub from: Option<DateTime<Utc>>,
    /// Default: all time.
    pub to: Option<DateTime<Utc>>,
}

/// Per metric (and component): count, min, max, mean, p50, p95 and the
/// latest value of a subject over a period.
#[utoipa::path(get, path = "/v1/subjects/{sid}/summary", tag = "readings",
    params(("sid" = Uuid, Path, description = "Subject id"), SummaryQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The summary.", body = SummaryResponse, headers(("Vitalfarm-Consent" = String, description = "Ids of the consents that permitted reading another membership's data; absent for one's own.")))))]
pub async fn summary(
    state: web::Data<AppState>,
    auth: Auth,
    sid: PathSubjectId,
    Query(q): Query<SummaryQuery>,
) -> ApiResult<CustomizeResponder<web::Json<SummaryResponse>>> {
    check_period(q.from, q.to)?;
    let from = q.from.map_or(i64::MIN, |t| t.timestamp_millis());
    let to = q.to.map_or(i64::MAX, |t| t.timestamp_millis());
    let read = sharing::subject(&state, &auth.0, sid.0).await?;
    let mut receipt = Receipt::default();
    let stats = match &read.standing {
        Standing::Own(_) => readings::summary(&state.db, read.subject_id(), from, to).await?,
        Standing::Shared(_) => {
            // Each consent may cover other metrics and another data
            // period: summarise each window once, keep its metrics.
            let mut windows: Vec<((i64, i64), Vec<&str>)> = Vec::new();
            for (code, w) in read.readable_metrics(from, to, ConsentAccess::Read) {
                receipt.extend(w.consent);
                match windows.iter_mut().find(|(k, _)| *k == (w.from, w.to)) {
                    Some((_, codes)) => codes.push(code),
                    None => windows.push(((w.from, w.to), vec![code])),
                }
            }
            let mut all = Vec::new();
            for ((wf, wt), codes) in windows {
                let stats = readings::summary(&state.db, read.subject_id(), wf, wt).await?;
                all.extend(stats.into_iter().filter(|s| codes.contains(&s.metric.as_str())));
            }
            all.sort_by(|a, b| (&a.metric, &a.component).cmp(&(&b.metric, &b.component)));
            read.record(&state, "summary", &receipt).await?;
            all
        }
    };
    Ok(crate::receipts::json(
        &receipt,
        SummaryResponse {
            subject_id: read.subject_id().as_uuid(),
            consents: receipt.ids(),
            metrics: stats
                .into_iter()
                .map(|s| {
                    Ok(MetricSummary {
                        component: (!s.component.is_empty()).then_some(s.component),
                        metric: s.metric,
                        unit: s.unit,
                        count: u64::try_from(s.count).unwrap_or(0),
                        min: s.min,
                        max: s.max,
                        mean: s.mean,
                        p50: s.p50,
                        p95: s.p95,
                        latest: LatestValue {
                            ts: ms_to_time(s.latest_ms)?,
                            value: s.latest,
                        },
                    })
                })
                .collect::<AppResult<_>>()?,
        },
    ))
}
