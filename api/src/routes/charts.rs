//! Charts of a subject's readings as SVG images
//! (`GET /v1/subjects/{sid}/charts/{metric}.svg`), read through `sharing`
//! like the readings themselves and downsampled in the database: each of at
//! most 1,000 time buckets contributes its minimum and maximum, so peaks
//! survive while the document stays small.

use actix_web::http::Method;
use actix_web::http::header::{CACHE_CONTROL, CacheControl, CacheDirective};
use actix_web::web;
use actix_web::{CustomizeResponder, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use vitalfarm_domain::chart::{self, Chart, Series};
use vitalfarm_domain::consent::Access as ConsentAccess;
use vitalfarm_domain::mashups::age_days;
use vitalfarm_domain::metrics;
use vitalfarm_domain::subject::Sex;
use vitalfarm_openapi::doc::ForbiddenResponse;
use vitalfarm_storage::repo::readings;

use super::RouteSet;
use super::analytics::period;
use crate::error::{ApiResult, AppError};
use crate::extract::{Auth, PathSubjectId, Query};
use crate::receipts::Attach;
use vitalfarm_app::sharing::{self, Receipt};
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/subjects/{sid}/charts/{metric}.svg", chart_svg);
}

/// Most time buckets of one chart; each gives two points (min and max).
const MAX_BUCKETS: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChartQuery {
    /// Default: 24 hours before `to`; the period may span at most 366 days.
    pub from: Option<DateTime<Utc>>,
    /// Default: now.
    pub to: Option<DateTime<Utc>>,
}

/// A time-series chart of one metric of a subject as an SVG image: axes
/// with time and value labels, the normal range for the subject's age
/// shaded (the adult one without a birth date), one line per series
/// (blood pressure: systolic and diastolic, with a legend), and a
/// message when the period has no readings. At most about 2,000 points
/// are drawn: each time bucket contributes its minimum and maximum.
#[utoipa::path(get, path = "/v1/subjects/{sid}/charts/{metric}.svg", tag = "readings",
    params(
        ("sid" = Uuid, Path, description = "Subject id"),
        ("metric" = String, Path, description = "A metric code from `GET /v1/metrics` (not a waveform).", example = "heart_rate"),
        ChartQuery
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The chart.", content_type = "image/svg+xml", body = String,
            headers(("Vitalfarm-Consent" = String, description = "Ids of the consents that permitted reading another membership's data; absent for one's own."))),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn chart_svg(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    sid: PathSubjectId,
    Query(q): Query<ChartQuery>,
) -> ApiResult<CustomizeResponder<HttpResponse>> {
    let metric = req
        .match_info()
        .get("metric")
        .and_then(metrics::find)
        .filter(|m| m.accepts_readings())
        .ok_or_else(|| AppError::InvalidParameter {
            field: "metric".into(),
            message: "unknown metric, or a waveform; see GET /v1/metrics".into(),
        })?;
    let (from, to) = period(q.from, q.to)?;
    let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
    let read = sharing::subject(&state, &auth.0, sid.0).await?;
    let window = read
        .readings(&state, metric.code, from_ms, to_ms, ConsentAccess::Read)
        .await?;
    let mut receipt = Receipt::default();
    receipt.extend(window.consent);
    // A bucket of at least a second: finer than readings ever come.
    let width = ((to_ms - from_ms + MAX_BUCKETS - 1) / MAX_BUCKETS).max(1000);
    let buckets = if window.is_empty() {
        Vec::new()
    } else {
        readings::aggregate(&state.db, read.subject_id(), metric.code, window.from, window.to, width).await?
    };
    let components: Vec<&str> = if metric.components.is_empty() {
        vec![""]
    } else {
        metric.components.iter().map(|c| c.code).collect()
    };
    let series = components
        .iter()
        .map(|&component| {
            let mut points = Vec::new();
            for b in buckets.iter().filter(|b| b.component == component) {
                points.push((b.start_ms, b.min));
                if b.count > 1 && b.max != b.min {
                    points.push((b.start_ms + width / 2, b.max));
                }
            }
            Series {
                label: if component.is_empty() {
                    metric.name.to_owned()
                } else {
                    component.to_owned()
                },
                points,
            }
        })
        .collect();
    let svg = chart::render(&Chart {
        title: format!("{} — {}", read.subject.display_name, metric.name),
        unit: metric.unit.to_owned(),
        from_ms,
        to_ms,
        series,
        // The subject's own normal band: its age at the end of the period
        // (adult norms without a birth date), as the monitors judge it.
        bands: chart::normal_bands(
            metric.code,
            &components,
            read.subject.birth_date.and_then(|b| age_days(b, to.date_naive())),
            read.subject.sex.as_deref().and_then(Sex::parse),
        ),
    });
    let response = HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((
            CACHE_CONTROL,
            CacheControl(vec![CacheDirective::Private, CacheDirective::NoStore]),
        ))
        .body(svg);
    Ok(receipt.attach(response))
}
