//! The route table. Every endpoint is registered here, once, by method and
//! path in OpenAPI form; the table drives actix's routing (including 405
//! with `Allow` for a known path with another method) and is what the tests
//! compare with the OpenAPI document, so an undocumented route cannot ship.

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, HttpResponse, Responder, Route, web};

use crate::error::{ApiError, AppError};

pub mod account;
pub mod alerts;
pub mod analytics;
pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod charts;
pub mod cohort;
pub mod commands;
pub mod consents;
pub mod devices;
pub mod ecg;
pub mod erasure;
pub mod exports;
pub mod farm_export;
pub mod farms;
pub mod fhir;
pub mod health;
pub mod imports;
pub mod mashups;
pub mod me;
pub mod members;
pub mod memberships;
pub mod metrics_catalog;
pub mod mqtt_auth;
pub mod oauth;
pub mod public_datasets;
pub mod readings;
pub mod share_links;
pub mod stream;
pub mod subjects;
pub mod webhooks;

#[derive(Default)]
pub struct RouteSet {
    routes: Vec<(Method, &'static str, Route)>,
}

/// The actix pattern of an OpenAPI path: `{path}` (a farm file path) takes
/// the rest of the URL, slashes included.
fn actix_pattern(path: &str) -> String {
    path.replace("{path}", "{path:.+}")
}

impl RouteSet {
    pub fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::method(method.clone()).to(handler);
        self.routes.push((method, path, route));
    }

    /// `(method, path)` of every route, in registration order.
    pub fn table(&self) -> Vec<(Method, &'static str)> {
        self.routes.iter().map(|(m, p, _)| (m.clone(), *p)).collect()
    }

    pub fn register(self, cfg: &mut web::ServiceConfig) {
        let mut by_path: Vec<(&'static str, Vec<(Method, Route)>)> = Vec::new();
        for (method, path, route) in self.routes {
            match by_path.iter_mut().find(|(p, _)| *p == path) {
                Some((_, routes)) => routes.push((method, route)),
                None => by_path.push((path, vec![(method, route)])),
            }
        }
        for (path, routes) in by_path {
            let allow = routes.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>().join(", ");
            let mut resource = web::resource(actix_pattern(path));
            for (_, route) in routes {
                resource = resource.route(route);
            }
            resource = resource.default_service(web::to(move || {
                let allow = allow.clone();
                async move { Err::<HttpResponse, _>(ApiError(AppError::MethodNotAllowed { allow })) }
            }));
            cfg.service(resource);
        }
    }
}

/// Every route of the API.
pub fn all() -> RouteSet {
    let mut r = RouteSet::default();
    health::routes(&mut r);
    auth::routes(&mut r);
    account::routes(&mut r);
    me::routes(&mut r);
    memberships::routes(&mut r);
    members::routes(&mut r);
    api_keys::routes(&mut r);
    metrics_catalog::routes(&mut r);
    subjects::routes(&mut r);
    devices::routes(&mut r);
    commands::routes(&mut r);
    readings::routes(&mut r);
    mqtt_auth::routes(&mut r);
    farms::routes(&mut r);
    farm_export::routes(&mut r);
    share_links::routes(&mut r);
    consents::routes(&mut r);
    audit::routes(&mut r);
    fhir::routes(&mut r);
    apps::routes(&mut r);
    oauth::routes(&mut r);
    exports::routes(&mut r);
    erasure::routes(&mut r);
    public_datasets::routes(&mut r);
    analytics::routes(&mut r);
    charts::routes(&mut r);
    ecg::routes(&mut r);
    stream::routes(&mut r);
    webhooks::routes(&mut r);
    alerts::routes(&mut r);
    mashups::routes(&mut r);
    cohort::routes(&mut r);
    imports::routes(&mut r);
    r
}

/// For any path no route matches.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(AppError::RouteNotFound.into())
}

/// Where clients reach this service, for absolute URLs (share links, OAuth
/// metadata, FHIR bundles): `public_url` when configured; behind a trusted
/// proxy (`trust_forwarded_for`) the scheme and host it forwards; otherwise
/// the address this server is bound to. `Host` and `X-Forwarded-*` come
/// from the client, and without a proxy vouching for them they could point
/// links anywhere (`X-Forwarded-Host: evil.example`).
pub fn public_base(req: &actix_web::HttpRequest, state: &vitalfarm_app::state::AppState) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    if state.config.trust_forwarded_for {
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    // vitalfarm serves plain HTTP itself; TLS ends at a proxy.
    match req.app_data::<ServedAt>() {
        Some(ServedAt(addr)) => format!("http://{addr}"),
        None => format!("http://{}", req.app_config().local_addr()),
    }
}

/// The address this server is bound to, for links when nothing else names
/// the public one.
#[derive(Debug, Clone, Copy)]
pub struct ServedAt(pub std::net::SocketAddr);
