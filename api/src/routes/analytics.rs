//! Analytics over one subject's readings (`GET /v1/analytics/correlation`):
//! read through `sharing` exactly like raw readings, so a consent must cover
//! every metric used, and the answer names the consents it was served under.

use actix_web::http::Method;
use actix_web::{CustomizeResponder, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;
use vitalfarm_domain::SubjectId;
use vitalfarm_domain::analytics::{self, PairWindow, SeriesCode};
use vitalfarm_domain::consent::Access as ConsentAccess;
use vitalfarm_openapi::analytics::{CorrelationPoint, CorrelationResponse};
use vitalfarm_openapi::doc::{ForbiddenResponse, NotFoundResponse};
use vitalfarm_storage::repo::readings;

use super::RouteSet;
use crate::error::{ApiError, ApiResult, AppError, AppResult};
use crate::extract::{Auth, Query};
use vitalfarm_app::authz::Claimed;
use vitalfarm_app::sharing::{self, Receipt, SubjectRead};
use vitalfarm_app::state::AppState;
use vitalfarm_app::views::ms_to_time;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/analytics/correlation", correlation);
}

/// Longest period one analysis may cover.
pub const MAX_PERIOD_MS: i64 = 366 * 24 * 60 * 60 * 1000;
/// Most windows one analysis may span.
pub const MAX_WINDOWS: i64 = 10_000;

/// `from`/`to` of an analysis: default the last 24 hours, at most a year.
pub fn period(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - chrono::Duration::hours(24));
    crate::extract::query::check_period(Some(from), Some(to))?;
    let span = to.timestamp_millis().saturating_sub(from.timestamp_millis());
    if span > MAX_PERIOD_MS {
        return Err(bad("from", "the period may span at most 366 days"));
    }
    Ok((from, to))
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    (AppError::InvalidParameter {
        field: field.into(),
        message: message.into(),
    })
    .into()
}

/// `(window start, mean)` of `series` in `[from, to)`.
pub async fn window_means(
    state: &AppState,
    subject: SubjectId,
    series: &SeriesCode,
    from: i64,
    to: i64,
    width: i64,
) -> ApiResult<Vec<(i64, f64)>> {
    if from >= to {
        return Ok(Vec::new());
    }
    Ok(
        readings::aggregate(&state.db, subject, series.metric.code, from, to, width)
            .await?
            .into_iter()
            .filter(|b| b.component == series.component)
            .map(|b| (b.start_ms, b.mean))
            .collect(),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CorrelationQuery {
    /// The subject whose readings are analysed.
    pub subject_id: Uuid,
    /// The first series: a metric code from `GET /v1/metrics`, or
    /// `metric.component` for a metric with components.
    #[param(example = "heart_rate")]
    pub x: String,
    /// The second series, like `x`.
    #[param(example = "blood_pressure.systolic")]
    pub y: String,
    /// Default: 24 hours before `to`; the period may span at most 366 days.
    pub from: Option<DateTime<Utc>>,
    /// Default: now.
    pub to: Option<DateTime<Utc>>,
    /// `5m` (default), `15m`, `1h` or `1d`; at most 10,000 windows.
    #[param(example = "5m")]
    pub window: Option<String>,
}

/// Pearson correlation of two series of a subject (two metrics, or two
/// components such as systolic pressure): each series is averaged per time
/// window, windows where both have readings are paired, and r is computed
/// over the pairs. Reading another membership's subject needs a consent
/// that covers both metrics.
#[utoipa::path(get, path = "/v1/analytics/correlation", tag = "analytics",
    params(CorrelationQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The paired windows and r.", body = CorrelationResponse, headers(("Vitalfarm-Consent" = String, description = "Ids of the consents that permitted reading another membership's data; absent for one's own."))),
        (status = 403, response = ForbiddenResponse),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn correlation(
    state: web::Data<AppState>,
    auth: Auth,
    Query(q): Query<CorrelationQuery>,
) -> ApiResult<CustomizeResponder<web::Json<CorrelationResponse>>> {
    let x = SeriesCode::parse(&q.x).map_err(|m| bad("x", m))?;
    let y = SeriesCode::parse(&q.y).map_err(|m| bad("y", m))?;
    let window = match q.window.as_deref() {
        None => PairWindow::FiveMinutes,
        Some(w) => PairWindow::parse(w).ok_or_else(|| bad("window", "must be 5m, 15m, 1h or 1d"))?,
    };
    let (from, to) = period(q.from, q.to)?;
    let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
    if (to_ms - from_ms) / window.millis() > MAX_WINDOWS {
        return Err(bad(
            "window",
            format!("the period spans more than {MAX_WINDOWS} windows; use a wider window or a shorter period"),
        ));
    }
    // A subject named in the query is a claim like one in a path.
    let read: SubjectRead = sharing::subject(&state, &auth.0, Claimed::new(SubjectId::from_uuid(q.subject_id))).await?;
    let sid = read.subject_id();
    let wx = read
        .readings(&state, x.metric.code, from_ms, to_ms, ConsentAccess::Read)
        .await?;
    let wy = read
        .readings(&state, y.metric.code, from_ms, to_ms, ConsentAccess::Read)
        .await?;
    let mut receipt = Receipt::default();
    receipt.extend(wx.consent);
    receipt.extend(wy.consent);
    // Pairs need both values: only the time both consents open is read.
    let (lo, hi) = (wx.from.max(wy.from), wx.to.min(wy.to));
    let xs = window_means(&state, sid, &x, lo, hi, window.millis()).await?;
    let ys = window_means(&state, sid, &y, lo, hi, window.millis()).await?;
    let points = analytics::pair(&xs, &ys);
    let pearson_r = analytics::pearson(&points);
    Ok(crate::receipts::json(
        &receipt,
        CorrelationResponse {
            subject_id: q.subject_id,
            x: x.code(),
            y: y.code(),
            window: window.as_str().to_owned(),
            from,
            to,
            n: points.len() as u64,
            pearson_r,
            points: points
                .into_iter()
                .map(|p| {
                    Ok(CorrelationPoint {
                        t: ms_to_time(p.t)?,
                        x: p.x,
                        y: p.y,
                    })
                })
                .collect::<AppResult<_>>()?,
            consents: receipt.ids(),
        },
    ))
}
