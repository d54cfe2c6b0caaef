//! The metric catalog: what vitalfarm accepts as a reading.

use actix_web::HttpResponse;
use actix_web::http::Method;
use actix_web::http::header::CACHE_CONTROL;
use vitalfarm_domain::metrics::{self, MetricView};

use super::RouteSet;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/metrics", catalog);
}

/// Every metric: code, LOINC code, UCUM unit, accepted units with their
/// conversion, components and plausible range. Readings outside the range
/// are refused with the reason. Public reference data: no sign-in needed.
#[utoipa::path(get, path = "/v1/metrics", tag = "metrics",
    responses((status = 200, description = "The catalog.", body = Vec<MetricView>,
        example = json!([{"code": "body_temperature", "name": "Body temperature", "loinc": "8310-5", "unit": "Cel", "kind": "scalar",
            "range": {"min": 25.0, "max": 45.0}, "integer": false,
            "accepted_units": [{"unit": "Cel", "factor": 1.0, "offset": 0.0}, {"unit": "[degF]", "factor": 0.5555555555555556, "offset": -17.77777777777778}],
            "components": []}]))))]
pub async fn catalog() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .json(metrics::catalog_view())
}
