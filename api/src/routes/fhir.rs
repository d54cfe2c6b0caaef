//! The FHIR R4 view of a subject's readings (`GET /v1/subjects/{sid}/fhir`):
//! a `searchset` `Bundle` of one `Observation` per reading, all metrics in
//! one time order, paginated by a cursor carried in the `next` link.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;
use vitalfarm_domain::consent::Access as ConsentAccess;
use vitalfarm_domain::metrics::{self, MetricDef};
use vitalfarm_domain::{SubjectId, fhir};
use vitalfarm_openapi::doc::ForbiddenResponse;
use vitalfarm_openapi::fhir::FhirBundle;
use vitalfarm_storage::entity::subject;
use vitalfarm_storage::repo::readings::{self, MetricWindow, Position};

use vitalfarm_app::views::patient_of;

use super::RouteSet;
use crate::error::{ApiError, ApiResult, AppError};
use crate::extract::{Auth, PathSubjectId};
use vitalfarm_app::sharing::{self, Receipt};
use vitalfarm_app::state::AppState;

pub const FHIR_JSON: &str = "application/fhir+json";
/// Observations per page unless `_count` says otherwise.
pub const DEFAULT_COUNT: u64 = 100;
pub const MAX_COUNT: u64 = 1000;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/subjects/{sid}/fhir", bundle);
}

/// What one metric contributes to a bundle: the metric and its window
/// `[from_ms, to_ms)`. A list of them is the plan of a request, so that a
/// narrower window per metric (a consent's period) can replace the
/// requested one without touching the read.
pub type Plan = Vec<(&'static MetricDef, i64, i64)>;

/// The query parameters, for the reference; the handler reads the query
/// string itself since `metric` may repeat.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FhirQuery {
    /// Metric codes from `GET /v1/metrics`, repeated (`metric=a&metric=b`)
    /// or comma-separated (`metric=a,b`). Default: every metric with
    /// numeric readings (`ecg` waveforms are farm files, not observations).
    #[param(example = json!(["heart_rate", "blood_pressure"]))]
    pub metric: Option<Vec<String>>,
    /// From this time (inclusive, RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Until this time (exclusive, RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Observations per page, 1 to 1000 (default 100).
    #[serde(rename = "_count")]
    #[param(minimum = 1, maximum = 1000)]
    pub count: Option<u64>,
    /// The cursor from the previous page's `next` link.
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// The parameters once checked.
struct Params {
    metrics: Vec<&'static MetricDef>,
    /// Whether `metric` was given; the links repeat it only then.
    explicit_metrics: bool,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    count: u64,
    after: Option<Position>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    (AppError::InvalidParameter {
        field: field.into(),
        message: message.into(),
    })
    .into()
}

fn parse_time(field: &str, raw: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid(field, "must be an RFC 3339 timestamp such as 2026-11-21T08:00:00Z"))
}

fn parse_params(query: &str) -> ApiResult<Params> {
    let mut metrics: Vec<&'static MetricDef> = Vec::new();
    let mut explicit_metrics = false;
    let (mut from, mut to, mut count, mut cursor) = (None, None, None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "metric" => {
                explicit_metrics = true;
                for code in value.split(',').map(str::trim) {
                    let m =
                        metrics::find(code).ok_or_else(|| invalid("metric", "unknown metric; see GET /v1/metrics"))?;
                    if !m.accepts_readings() {
                        return Err(invalid(
                            "metric",
                            format!(
                                "{} is a waveform kept as farm files, not observations; leave it out",
                                m.code
                            ),
                        ));
                    }
                    if !metrics.iter().any(|x| x.code == m.code) {
                        metrics.push(m);
                    }
                }
            }
            "from" => from = Some(parse_time("from", &value)?),
            "to" => to = Some(parse_time("to", &value)?),
            "_count" => {
                count = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (1..=MAX_COUNT).contains(n))
                        .ok_or_else(|| invalid("_count", "must be a whole number between 1 and 1000"))?,
                );
            }
            "cursor" => {
                cursor =
                    Some(decode_cursor(&value).ok_or_else(|| invalid("cursor", "is not a cursor this API returned"))?);
            }
            other => {
                let name: String = other.chars().take(64).collect();
                return Err(invalid(&name, "unknown parameter"));
            }
        }
    }
    if !explicit_metrics {
        metrics = metrics::catalog().iter().filter(|m| m.accepts_readings()).collect();
    }
    crate::extract::query::check_period(from, to)?;
    Ok(Params {
        metrics,
        explicit_metrics,
        from,
        to,
        count: count.unwrap_or(DEFAULT_COUNT),
        after: cursor,
    })
}

fn encode_cursor(p: &Position) -> String {
    let device = p.device_id.map(|d| d.to_string()).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{} {} {device}", p.ts_ms, p.metric))
}

fn decode_cursor(c: &str) -> Option<Position> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let mut parts = text.split(' ');
    let ts_ms = parts.next()?.parse().ok()?;
    let metric = metrics::find(parts.next()?)?.code.to_owned();
    let device_id = match parts.next()? {
        "" => None,
        d => Some(d.parse::<Uuid>().ok()?),
    };
    parts.next().is_none().then_some(Position {
        ts_ms,
        metric,
        device_id,
    })
}

/// Where clients reach this service (see [`super::public_base`]).
fn public_base(req: &HttpRequest, state: &AppState) -> String {
    super::public_base(req, state)
}

/// The URL of the first page of this search, rebuilt from the checked
/// parameters (never the raw query), ending in a query string that
/// `&cursor=` can extend.
fn search_url(base: &str, sid: SubjectId, p: &Params) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if p.explicit_metrics {
        q.append_pair(
            "metric",
            &p.metrics.iter().map(|m| m.code).collect::<Vec<_>>().join(","),
        );
    }
    if let Some(f) = p.from {
        q.append_pair("from", &fhir::instant(f.timestamp_millis()));
    }
    if let Some(t) = p.to {
        q.append_pair("to", &fhir::instant(t.timestamp_millis()));
    }
    q.append_pair("_count", &p.count.to_string());
    format!("{base}/v1/subjects/{sid}/fhir?{}", q.finish())
}

/// A subject's readings as a FHIR R4 `searchset` `Bundle`: the subject as
/// a `Patient`, then an `Observation` per reading in time order, all
/// requested metrics interleaved. Follow the `next` link for more.
#[utoipa::path(get, path = "/v1/subjects/{sid}/fhir", tag = "readings",
    params(("sid" = Uuid, Path, description = "Subject id"), FhirQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of the subject's observations as a FHIR R4 Bundle.", content_type = "application/fhir+json", body = FhirBundle),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn bundle(
    state: web::Data<AppState>,
    auth: Auth,
    sid: PathSubjectId,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    // (a) The parameters.
    let params = parse_params(req.query_string())?;
    // (b) The plan: each metric with its window.
    let from_ms = params.from.map_or(i64::MIN, |t| t.timestamp_millis());
    let to_ms = params.to.map_or(i64::MAX, |t| t.timestamp_millis());
    // (c) May the caller read this subject, and which part of each
    // metric: all of it for one's own subject; under consents, only the
    // shared metrics (asking for another by name is 403) in their data
    // period.
    let read = sharing::subject(&state, &auth.0, sid.0).await?;
    let mut receipt = Receipt::default();
    let mut plan: Plan = Vec::new();
    for m in &params.metrics {
        let window = if params.explicit_metrics {
            read.readings(&state, m.code, from_ms, to_ms, ConsentAccess::Read)
                .await?
        } else {
            match read.window(m.code, from_ms, to_ms, ConsentAccess::Read) {
                Ok(w) => w,
                Err(_) => continue,
            }
        };
        if !window.is_empty() {
            receipt.extend(window.consent);
            plan.push((*m, window.from, window.to));
        }
    }
    if !params.explicit_metrics {
        read.record(&state, "fhir", &receipt).await?;
    }
    // (d) Read and build.
    let self_url = search_url(&public_base(&req, &state), read.subject_id(), &params);
    let body = bundle_for(
        &state,
        &read.subject,
        &plan,
        params.after.as_ref(),
        params.count,
        &self_url,
    )
    .await?;
    let bytes = serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.into()))?;
    let mut response = HttpResponse::Ok();
    response.content_type(FHIR_JSON);
    if let Some(value) = receipt.header() {
        response.insert_header((sharing::CONSENT_HEADER, value));
    }
    Ok(response.body(bytes))
}

/// One page of `subject`'s observations under `plan`, after the cursor
/// `after`, at most `limit` of them, as a `searchset` bundle whose links
/// extend `self_url` (the first page's URL, with a query string) with the
/// cursor. The caller has checked access and narrowed the plan, which
/// holds each metric once.
pub async fn bundle_for(
    state: &AppState,
    subject: &subject::Model,
    plan: &[(&'static MetricDef, i64, i64)],
    after: Option<&Position>,
    limit: u64,
    self_url: &str,
) -> ApiResult<serde_json::Value> {
    let sid = SubjectId::from_uuid(subject.id);
    let windows: Vec<MetricWindow<'_>> = plan
        .iter()
        .filter(|(m, from, to)| m.accepts_readings() && from < to)
        .map(|(m, from_ms, to_ms)| MetricWindow {
            metric: m.code,
            from_ms: *from_ms,
            to_ms: *to_ms,
            // One more reading than asked tells whether a next page exists.
            limit_rows: (limit + 1) * m.components.len().max(1) as u64,
        })
        .collect();
    let rows = readings::list_across_metrics(&state.db, sid, &windows, after).await?;

    // Rows of one reading are adjacent: fold them into readings.
    let mut grouped: Vec<(Position, fhir::Reading)> = Vec::new();
    for r in rows {
        let position = r.position();
        match grouped.last_mut() {
            Some((p, reading)) if *p == position => reading.values.push((r.row.component, r.row.value)),
            _ => grouped.push((
                position,
                fhir::Reading {
                    ts_ms: r.row.ts_ms,
                    device_id: r.row.device_id,
                    values: vec![(r.row.component, r.row.value)],
                    source: r.row.source,
                },
            )),
        }
    }
    let page_len = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = grouped.len() > page_len;
    grouped.truncate(page_len);

    let mut total = 0;
    for (m, from_ms, to_ms) in plan {
        if !m.accepts_readings() || from_ms >= to_ms {
            continue;
        }
        // Every reading of a panel has its first component.
        let component = m.components.first().map_or("", |c| c.code);
        total += readings::count_component(&state.db, sid, m.code, component, *from_ms, *to_ms).await?;
    }

    let patient = patient_of(subject);
    let observations = grouped
        .iter()
        .filter_map(|(p, reading)| {
            let metric = metrics::find(&p.metric)?;
            fhir::observation(&patient, metric, reading)
        })
        .collect();
    let page_url = |cursor: &Position| format!("{self_url}&cursor={}", encode_cursor(cursor));
    let page = fhir::Page {
        self_url: after.map_or_else(|| self_url.to_owned(), page_url),
        next_url: if more {
            grouped.last().map(|(p, _)| page_url(p))
        } else {
            None
        },
        total,
        timestamp_ms: Utc::now().timestamp_millis(),
    };
    Ok(fhir::bundle(fhir::patient(&patient), observations, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        for device_id in [None, Some(Uuid::now_v7())] {
            let p = Position {
                ts_ms: -5,
                metric: "blood_pressure".into(),
                device_id,
            };
            assert_eq!(decode_cursor(&encode_cursor(&p)), Some(p));
        }
        for bad in [
            "",
            "%%",
            "MTIz",
            &URL_SAFE_NO_PAD.encode("1 mood "),
            &URL_SAFE_NO_PAD.encode("1 spo2 x"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn params_name_the_bad_field() {
        let field = |q: &str| match parse_params(q) {
            Err(ApiError(AppError::InvalidParameter { field, .. })) => field,
            _ => panic!("{q} was accepted"),
        };
        assert_eq!(field("metric=mood"), "metric");
        assert_eq!(field("metric=heart_rate,ecg"), "metric");
        assert_eq!(field("_count=0"), "_count");
        assert_eq!(field("_count=1001"), "_count");
        assert_eq!(field("from=yesterday"), "from");
        assert_eq!(field("from=2026-11-21T09:00:00Z&to=2026-11-21T08:00:00Z"), "from");
        assert_eq!(field("cursor=abc"), "cursor");
        assert_eq!(field("limit=5"), "limit");

        let p = parse_params("metric=spo2&metric=heart_rate,spo2&_count=7").unwrap();
        let codes: Vec<_> = p.metrics.iter().map(|m| m.code).collect();
        assert_eq!(codes, ["spo2", "heart_rate"]);
        assert_eq!(p.count, 7);
        let all = parse_params("").unwrap();
        assert_eq!(all.count, DEFAULT_COUNT);
        assert!(!all.metrics.iter().any(|m| m.code == "ecg"));
        assert_eq!(all.metrics.len(), metrics::catalog().len() - 1);
    }
}
