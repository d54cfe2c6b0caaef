//! Public reference datasets: published clinical thresholds shipped inside
//! the binary (`vitalfarm_domain::datasets`) and served read-only, so that a
//! client can see exactly which numbers and sources the analytics judge
//! readings by. They hold no tenant data: any authenticated caller may read
//! them, and nothing can change them through the API.

use actix_web::http::Method;
use actix_web::{HttpRequest, web};
use vitalfarm_domain::datasets;
use vitalfarm_openapi::datasets::{DatasetDetail, DatasetList, DatasetSummary};
use vitalfarm_openapi::doc::InsufficientScopeResponse;

use super::RouteSet;
use crate::error::{ApiResult, AppError};
use crate::extract::Auth;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/public-datasets", list);
    r.add(Method::GET, "/v1/public-datasets/{name}", get);
}

/// Every public reference dataset: name, title, description, version, its
/// sources and how many records it holds. Any signed-in user, API key, or
/// app with `analytics.read` may read them.
#[utoipa::path(get, path = "/v1/public-datasets", tag = "public-datasets",
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The datasets.", body = DatasetList),
        (status = 403, response = InsufficientScopeResponse),
    ))]
pub async fn list(_auth: Auth) -> ApiResult<web::Json<DatasetList>> {
    let items = datasets::list()
        .into_iter()
        .map(|(meta, count)| DatasetSummary::new(meta, count))
        .collect();
    Ok(web::Json(DatasetList { items }))
}

/// One dataset: its description, sources, notes on how to read it (and which
/// source was chosen where sources differ) and all its records.
#[utoipa::path(get, path = "/v1/public-datasets/{name}", tag = "public-datasets",
    params(("name" = String, Path, description = "The dataset's name, e.g. `blood-pressure-categories`", example = "vital-sign-ranges")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The dataset with its records.", body = DatasetDetail),
        (status = 403, response = InsufficientScopeResponse),
    ))]
pub async fn get(_auth: Auth, req: HttpRequest) -> ApiResult<web::Json<DatasetDetail>> {
    let name = req.match_info().get("name").unwrap_or_default();
    let (meta, records) = datasets::find(name).ok_or(AppError::NotFound("dataset"))?;
    Ok(web::Json(DatasetDetail::new(meta, records)))
}
