//! Subjects: oneself (created at sign-up), an individual's dependents, a
//! company's enrollees.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use vitalfarm_domain::{MembershipKind, Permission, SubjectId, SubjectKind, ValidationErrors};
use vitalfarm_openapi::doc::{ConflictResponse, ForbiddenResponse};
use vitalfarm_openapi::subjects::{CreateSubjectRequest, NewSubjectKind, Subject, SubjectPage, UpdateSubjectRequest};
use vitalfarm_storage::repo::{accounts, subjects};

use vitalfarm_app::views::subject_dto;

use super::RouteSet;
use crate::error::{ApiResult, AppError, AppResult};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, Json, PageQuery, PathMembershipId, PathSubjectId, Query};
use vitalfarm_app::authz;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/memberships/{mid}/subjects", create);
    r.add(Method::GET, "/v1/memberships/{mid}/subjects", list);
    r.add(Method::GET, "/v1/subjects/{sid}", get);
    r.add(Method::PATCH, "/v1/subjects/{sid}", update);
}

fn check_name(errors: &mut ValidationErrors, value: &str) {
    errors.check("display_name", vitalfarm_domain::validation::check_name(value, 200));
}

fn check_birth_date(errors: &mut ValidationErrors, date: Option<NaiveDate>) {
    let Some(date) = date else { return };
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    if date > Utc::now().date_naive() || date < earliest {
        errors.add("birth_date", "must be between 1900-01-01 and today");
    }
}

fn check_ref(errors: &mut ValidationErrors, r: Option<&str>) {
    if r.is_some_and(|r| r.chars().count() > 200 || r.chars().any(char::is_control)) {
        errors.add(
            "external_ref",
            "must be at most 200 characters without control characters",
        );
    }
}

/// Adds a subject: a `dependent` to an individual's membership, an
/// `enrollee` to a company's.
#[utoipa::path(post, path = "/v1/memberships/{mid}/subjects", tag = "subjects",
    params(("mid" = Uuid, Path, description = "Membership id")),
    request_body = CreateSubjectRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created.", body = Subject),
        (status = 403, response = ForbiddenResponse),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Json(body): Json<CreateSubjectRequest>,
) -> ApiResult<HttpResponse> {
    let mut errors = ValidationErrors::new();
    check_name(&mut errors, &body.display_name);
    check_birth_date(&mut errors, body.birth_date);
    check_ref(&mut errors, body.external_ref.as_deref());
    errors.into_result()?;
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::WriteData)
        .await?
        .membership();
    let (membership, _) = accounts::find_membership(&state.db, mid)
        .await?
        .ok_or(AppError::NotFound("membership"))?;
    let expected = match MembershipKind::parse(&membership.kind) {
        Some(MembershipKind::Individual) => NewSubjectKind::Dependent,
        _ => NewSubjectKind::Enrollee,
    };
    if body.kind != expected {
        return Err(AppError::Conflict(format!(
            "a {} membership records {} subjects",
            membership.kind,
            SubjectKind::from(expected).as_str()
        ))
        .into());
    }
    let created = subjects::create(
        &state.db,
        mid,
        subjects::NewSubject {
            kind: body.kind.into(),
            display_name: body.display_name.trim(),
            birth_date: body.birth_date,
            sex: body.sex,
            external_ref: body.external_ref.as_deref(),
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(subject_dto(&created)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubjectQuery {
    /// Only subjects of this kind.
    pub kind: Option<SubjectKind>,
    /// Items per page, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{22}$")]
    pub cursor: Option<String>,
}

/// The membership's subjects.
#[utoipa::path(get, path = "/v1/memberships/{mid}/subjects", tag = "subjects",
    params(("mid" = Uuid, Path, description = "Membership id"), SubjectQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of subjects.", body = SubjectPage)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(q): Query<SubjectQuery>,
) -> ApiResult<web::Json<SubjectPage>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (limit, after) = (page.limit()?, page.after()?);
    let access = authz::authorize(&state, &auth.0, mid.0, Permission::ReadData).await?;
    let page = subjects::list(&state.db, access.membership(), q.kind, after, limit).await?;
    Ok(web::Json(SubjectPage {
        items: page.items.iter().map(subject_dto).collect::<AppResult<_>>()?,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// A subject.
#[utoipa::path(get, path = "/v1/subjects/{sid}", tag = "subjects",
    params(("sid" = Uuid, Path, description = "Subject id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The subject.", body = Subject, headers(("Vitalfarm-Consent" = String, description = "Ids of the consents under which another membership's subject is shown; absent for one's own.")))))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Auth,
    sid: PathSubjectId,
) -> ApiResult<actix_web::CustomizeResponder<web::Json<Subject>>> {
    let read = vitalfarm_app::sharing::subject(&state, &auth.0, sid.0).await?;
    Ok(crate::receipts::json(
        &read.subject_receipt(),
        subject_dto(&read.subject)?,
    ))
}

/// Changes a subject's name, birth date, sex or external reference (absent
/// fields stay, `null` clears). The kind never changes.
#[utoipa::path(patch, path = "/v1/subjects/{sid}", tag = "subjects",
    params(("sid" = Uuid, Path, description = "Subject id")),
    request_body = UpdateSubjectRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The subject as changed.", body = Subject), (status = 403, response = ForbiddenResponse)))]
pub async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    sid: PathSubjectId,
    Json(body): Json<UpdateSubjectRequest>,
) -> ApiResult<web::Json<Subject>> {
    let mut errors = ValidationErrors::new();
    if let Some(name) = &body.display_name {
        check_name(&mut errors, name);
    }
    check_birth_date(&mut errors, body.birth_date.flatten());
    check_ref(&mut errors, body.external_ref.as_ref().and_then(Option::as_deref));
    errors.into_result()?;
    let (subject, access) = authz::subject(&state, &auth.0, sid.0, Permission::WriteData).await?;
    let updated = subjects::update(
        &state.db,
        access.membership(),
        SubjectId::from_uuid(subject.id),
        subjects::SubjectChanges {
            display_name: body.display_name.map(|n| n.trim().to_owned()),
            birth_date: body.birth_date,
            sex: body.sex,
            external_ref: body.external_ref,
        },
    )
    .await?;
    Ok(web::Json(subject_dto(&updated)?))
}
