//! Liveness, readiness, metrics, the signing keys, the OpenAPI document and
//! the interactive reference.

use actix_web::http::Method;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpResponse, web};
use vitalfarm_openapi::health::{Health, Jwks, Readiness, ReadinessCheck};

use super::RouteSet;
use crate::apidoc;
use crate::error::ApiResult;
use crate::telemetry::Metrics;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/healthz", healthz);
    r.add(Method::GET, "/readyz", readyz);
    r.add(Method::GET, "/metrics", metrics);
    r.add(Method::GET, "/.well-known/jwks.json", jwks);
    r.add(Method::GET, "/openapi.json", openapi_json);
    r.add(Method::GET, "/docs", docs);
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The process serves requests.", body = Health)))]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok".into() })
}

/// Readiness: the dependencies answer (the database and the object store).
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "Ready to serve.", body = Readiness),
        (status = 503, description = "A dependency is down; the body says which.", body = Readiness,
            example = json!({"status": "unavailable", "checks": [{"name": "database", "status": "failed"}]})),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db_ok = state.db.ping().await.is_ok();
    let store_ok = state.blobs.ping().await.is_ok();
    let check = |name: &str, ok: bool| ReadinessCheck {
        name: name.into(),
        status: if ok { "ok" } else { "failed" }.into(),
    };
    let checks = vec![check("database", db_ok), check("object_store", store_ok)];
    let ready = db_ok && store_ok;
    let body = Readiness {
        status: if ready { "ok" } else { "unavailable" }.into(),
        checks,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics: request counts and latency histograms by route
/// pattern, method and status.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text exposition format.", content_type = "text/plain; version=0.0.4",
        body = String, example = "vitalfarm_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1\n")))]
pub async fn metrics(metrics: web::Data<Metrics>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render()?))
}

/// The public keys that verify access tokens (JWKS, RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "service",
    responses((status = 200, description = "The key set; pick the key by the token's `kid`.", body = Jwks)))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .json(state.jwt.jwks())
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI document.", content_type = "application/json", body = Object,
        example = json!({"openapi": "3.1.0", "info": {"title": "vitalfarm API", "version": "0.1.0"}, "paths": {}}))))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(apidoc::spec_json())
}

/// The interactive API reference (served from the binary; no internet
/// access needed).
#[utoipa::path(get, path = "/docs", tag = "service",
    responses((status = 308, description = "Redirects to the reference at `/docs/`.",
        headers(("Location" = String, description = "`/docs/`")))))]
pub async fn docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((LOCATION, "/docs/"))
        .finish()
}
