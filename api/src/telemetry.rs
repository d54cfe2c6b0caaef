//! Logs, request ids and Prometheus metrics.
//!
//! The access log names the route *pattern* (`/v1/memberships/{mid}`), never
//! the concrete path or query, because paths can carry share tokens and
//! queries can carry health values; headers and bodies are never logged.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use vitalfarm_app::telemetry::{Labels, with_request_id};
pub use vitalfarm_app::telemetry::{MAX_SERIES, Metrics, REQUEST_ID_HEADER, current_request_id, init_logging};

/// A client-supplied request id is kept when it is short and plain, so ids
/// can be followed across services; anything else is replaced.
fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Middleware: request id, access log line and metrics for every request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id_of(&req);
    // The log and the metrics name a made-up method `other`: it is the
    // client's text.
    let method = Labels::method(req.method().as_str());
    let metrics = req.app_data::<actix_web::web::Data<Metrics>>().cloned();
    let result = with_request_id(id.clone(), next.call(req)).await;
    let elapsed = started.elapsed();
    let (route, status) = match &result {
        Ok(res) => (
            // Label by the OpenAPI form of the route (`{path}`, not actix's
            // `{path:.+}`), so metrics and the reference use one name.
            res.request()
                .match_pattern()
                .map(|p| p.replace("{path:.+}", "{path}"))
                .unwrap_or_else(|| "unmatched".to_owned()),
            res.status().as_u16(),
        ),
        Err(e) => ("unmatched".to_owned(), e.as_response_error().status_code().as_u16()),
    };
    if let Some(metrics) = metrics {
        metrics.observe(method, &route, status, elapsed.as_secs_f64());
    }
    tracing::info!(request_id = %id, %method, %route, status, latency_ms = elapsed.as_secs_f64() * 1000.0, "request");
    let mut res = result?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }
    Ok(res)
}
