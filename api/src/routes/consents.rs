//! Consent-based sharing: a company requests access by the individual's
//! email, the individual approves (choosing subjects) or denies, or grants
//! directly; either side lists and reads its consents; the grantor revokes.
//! What a consent permits is decided in `vitalfarm_app::sharing` on every read;
//! each change is one unit of work in `vitalfarm_app::consents`.

use std::collections::BTreeSet;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;
use vitalfarm_domain::consent::{self, Consent as DomainConsent, Period};
use vitalfarm_domain::farm_path::parse_dir_prefix;
use vitalfarm_domain::{
    ConsentId, ConsentRequestId, Email, MembershipId, MembershipKind, Permission, SubjectId, UserId, ValidationErrors,
    metrics,
};
use vitalfarm_openapi::consents::{
    ApproveConsentRequest, Consent, ConsentPage, ConsentPreview, ConsentRequestPage, ConsentRequestStatus,
    ConsentRequestView, ConsentStatus, CreateConsentRequest, GrantConsentRequest, RequestDirection, SharedItem,
    SharedSubject, SharedWithMe,
};
use vitalfarm_openapi::doc::{ConflictResponse, ForbiddenResponse};
use vitalfarm_storage::entity::{consent as consent_row, consent_request};
use vitalfarm_storage::repo::{accounts, consents, subjects};

use vitalfarm_app::views::{Names, consent_dto, ms_to_time, request_dto, status_of};

use super::RouteSet;
use crate::error::{ApiResult, AppError};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, Json, PageQuery, PathConsentId, PathConsentRequestId, Query};
use vitalfarm_app::consents as unit;
use vitalfarm_app::sharing::acting_memberships;
use vitalfarm_app::state::AppState;

/// An undecided request lapses after this long.
const REQUEST_LIFETIME_MS: i64 = 30 * 24 * 3600 * 1000;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/consent-requests", create_request);
    r.add(Method::GET, "/v1/consent-requests", list_requests);
    r.add(Method::POST, "/v1/consent-requests/{id}/approve", approve);
    r.add(Method::POST, "/v1/consent-requests/{id}/deny", deny);
    r.add(Method::GET, "/v1/consent-requests/{id}/preview", preview);
    r.add(Method::POST, "/v1/consents", grant);
    r.add(Method::GET, "/v1/consents", list);
    r.add(Method::GET, "/v1/consents/{id}", get);
    r.add(Method::DELETE, "/v1/consents/{id}", revoke);
    r.add(Method::GET, "/v1/shared-with-me", shared_with_me);
}

/// The documented `maxItems` of a consent's lists: checked before any item
/// is, so an oversized list costs one comparison, not a lookup per item.
const MAX_METRICS: usize = 20;
const MAX_FARM_PATHS: usize = 20;
const MAX_SUBJECTS: usize = 100;

/// The scope lists every consent and request shares: metrics from the
/// catalog (readings only, not waveforms) and folder prefixes.
fn check_scope(
    errors: &mut ValidationErrors,
    metric_codes: &[String],
    paths: &[String],
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut metrics_out = BTreeSet::new();
    let mut paths_out = BTreeSet::new();
    if metric_codes.len() > MAX_METRICS || paths.len() > MAX_FARM_PATHS {
        if metric_codes.len() > MAX_METRICS {
            errors.add("metrics", format!("at most {MAX_METRICS} metrics"));
        }
        if paths.len() > MAX_FARM_PATHS {
            errors.add("farm_paths", format!("at most {MAX_FARM_PATHS} folders"));
        }
        return (metrics_out, paths_out);
    }
    for (i, code) in metric_codes.iter().enumerate() {
        match metrics::find(code) {
            Some(m) => {
                metrics_out.insert(m.code.to_owned());
            }
            None => errors.add(format!("metrics[{i}]"), "unknown metric; see GET /v1/metrics"),
        }
    }
    for (i, p) in paths.iter().enumerate() {
        match parse_dir_prefix(p) {
            Ok(prefix) => {
                paths_out.insert(prefix);
            }
            Err(e) => errors.add(format!("farm_paths[{i}]"), e.to_string()),
        }
    }
    if metric_codes.is_empty() && paths.is_empty() {
        errors.add("metrics", "share at least one metric or one farm path");
    }
    (metrics_out, paths_out)
}

fn check_data_period(
    errors: &mut ValidationErrors,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Period {
    if let (Some(f), Some(u)) = (from, until)
        && f >= u
    {
        errors.add("data_until", "must be after data_from");
    }
    Period {
        from: from.map(|t| t.timestamp_millis()),
        until: until.map(|t| t.timestamp_millis()),
    }
}

/// The individual membership the subjects belong to, where `user` may
/// manage consents; every subject must be of that one membership.
async fn grantor_of_subjects(
    state: &AppState,
    user: UserId,
    ids: &[Uuid],
) -> ApiResult<(MembershipId, BTreeSet<SubjectId>)> {
    if ids.len() > MAX_SUBJECTS {
        return Err(AppError::field("subject_ids", format!("at most {MAX_SUBJECTS} subjects")).into());
    }
    let mut owner: Option<Uuid> = None;
    let mut set = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("subject_ids[{i}]");
        let not_yours = || {
            AppError::field(
                field.clone(),
                "is not a subject of a membership where you manage consents",
            )
        };
        let s = subjects::find(&state.db, SubjectId::from_uuid(*id))
            .await?
            .ok_or_else(not_yours)?;
        if owner.is_some_and(|o| o != s.membership_id) {
            return Err(AppError::field(field, "all subjects must belong to one membership").into());
        }
        owner = Some(s.membership_id);
        set.insert(SubjectId::from_uuid(*id));
    }
    let owner =
        MembershipId::from_uuid(owner.ok_or_else(|| AppError::field("subject_ids", "name at least one subject"))?);
    let role = accounts::role_of(&state.db, user, owner).await?;
    if !role.is_some_and(|r| r.allows(Permission::ManageConsents)) {
        return Err(AppError::field(
            "subject_ids[0]",
            "is not a subject of a membership where you manage consents",
        )
        .into());
    }
    let kind = accounts::find_membership(&state.db, owner)
        .await?
        .and_then(|(m, _)| MembershipKind::parse(&m.kind));
    if kind != Some(MembershipKind::Individual) {
        return Err(AppError::field("subject_ids", "only an individual's subjects are shared by consent").into());
    }
    Ok((owner, set))
}

/// A company asks an individual, by email, for access to some of their
/// data. The request is made whether or not the address has an account, so
/// the answer reveals nothing about who uses vitalfarm.
#[utoipa::path(post, path = "/v1/consent-requests", tag = "consents",
    request_body = CreateConsentRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The request, waiting for the individual.", body = ConsentRequestView),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn create_request(
    state: web::Data<AppState>,
    auth: Auth,
    Json(body): Json<CreateConsentRequest>,
) -> ApiResult<HttpResponse> {
    let mut errors = ValidationErrors::new();
    let email = errors.check("individual_email", Email::parse(&body.individual_email));
    let (metric_set, path_set) = check_scope(&mut errors, &body.metrics, &body.farm_paths);
    let duration = consent::parse_duration(&body.duration);
    if duration.is_none() {
        errors.add(
            "duration",
            "must be an ISO 8601 duration such as P30D, P2W or PT12H, at most ten years",
        );
    }
    let data = check_data_period(&mut errors, body.data_from, body.data_until);
    if let Some(note) = &body.note
        && (note.chars().count() > 500 || note.chars().any(|c| c.is_control() && c != '\n'))
    {
        errors.add("note", "must be at most 500 characters without control characters");
    }
    errors.into_result()?;
    let (Some(email), Some(duration)) = (email, duration) else {
        return Err(AppError::field("individual_email", "is required").into());
    };
    let companies: Vec<MembershipId> = {
        let mut out = Vec::new();
        for m in acting_memberships(&state, &auth.0, Permission::ManageConsents).await? {
            let kind = accounts::find_membership(&state.db, m)
                .await?
                .and_then(|(m, _)| MembershipKind::parse(&m.kind));
            if kind == Some(MembershipKind::Company) {
                out.push(m);
            }
        }
        out
    };
    let requester = match body.membership_id {
        Some(id) => {
            let id = MembershipId::from_uuid(id);
            if !companies.contains(&id) {
                return Err(AppError::field(
                    "membership_id",
                    "is not a company membership where you may request consents",
                )
                .into());
            }
            id
        }
        None => match companies.as_slice() {
            [one] => *one,
            [] => {
                return Err(AppError::Forbidden(
                    "requesting consent needs the owner or admin role in a company membership".into(),
                )
                .into());
            }
            _ => {
                return Err(
                    AppError::field("membership_id", "you are in several companies: say which one asks").into(),
                );
            }
        },
    };
    let now = Utc::now().timestamp_millis();
    let txn = unit::begin(&state).await?;
    let created = unit::request(
        &txn,
        &state.faults,
        &auth.0,
        consents::NewRequest {
            requester,
            requested_by: auth.user().ok(),
            individual_email: email.as_str(),
            metrics: &metric_set,
            farm_paths: &path_set,
            purpose: body.purpose.into(),
            access: body.access.into(),
            duration_secs: duration,
            data,
            note: body.note.as_deref(),
            now_ms: now,
            expires_at_ms: now + REQUEST_LIFETIME_MS,
        },
    )
    .await;
    let row = unit::finish(txn, created).await?;
    let names = Names::load(&state, [row.requester_membership_id]).await?;
    Ok(HttpResponse::Created().json(request_dto(&row, RequestDirection::Outgoing, &names, now)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// Only requests received (`incoming`) or sent (`outgoing`).
    pub direction: Option<RequestDirection>,
    /// Only requests in this state.
    pub status: Option<ConsentRequestStatus>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    #[param(pattern = "^[A-Za-z0-9_-]{22}$")]
    pub cursor: Option<String>,
}

/// The caller's email, for a signed-in person whose address is verified.
/// Requests are addressed by email, so an account that has not proved its
/// address sees none: to the company and to the squatter a request to an
/// unverified address is one to an address nobody has yet.
async fn caller_email(state: &AppState, auth: &Auth) -> ApiResult<Option<String>> {
    let Ok(user) = auth.user() else { return Ok(None) };
    Ok(accounts::find_user(&state.db, user)
        .await?
        .filter(|u| u.email_verified_at.is_some())
        .map(|u| u.email))
}

/// Requests addressed to the caller's email (incoming) and those made by
/// the caller's company memberships (outgoing), oldest first.
#[utoipa::path(get, path = "/v1/consent-requests", tag = "consents",
    params(RequestQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of requests.", body = ConsentRequestPage)))]
pub async fn list_requests(
    state: web::Data<AppState>,
    auth: Auth,
    Query(q): Query<RequestQuery>,
) -> ApiResult<web::Json<ConsentRequestPage>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let (limit, after) = (page.limit()?, page.after()?);
    let email = match q.direction {
        Some(RequestDirection::Outgoing) => None,
        _ => caller_email(&state, &auth).await?,
    };
    let requesters = match q.direction {
        Some(RequestDirection::Incoming) => Vec::new(),
        _ => acting_memberships(&state, &auth.0, Permission::ReadMembership).await?,
    };
    // Stored statuses are pending/approved/denied; "expired" is a pending
    // request past its time, so it is filtered after loading.
    let stored = q.status.map(|s| match s {
        ConsentRequestStatus::Pending | ConsentRequestStatus::Expired => "pending",
        ConsentRequestStatus::Approved => "approved",
        ConsentRequestStatus::Denied => "denied",
    });
    let rows = consents::list_requests(&state.db, email.as_deref(), &requesters, stored, after, limit).await?;
    let names = Names::load(&state, rows.items.iter().map(|r| r.requester_membership_id)).await?;
    let now = Utc::now().timestamp_millis();
    let mut items = Vec::new();
    for r in &rows.items {
        let direction = if requesters.contains(&MembershipId::from_uuid(r.requester_membership_id)) {
            RequestDirection::Outgoing
        } else {
            RequestDirection::Incoming
        };
        let view = request_dto(r, direction, &names, now)?;
        if q.status.is_none_or(|s| s == view.status) {
            items.push(view);
        }
    }
    Ok(web::Json(ConsentRequestPage {
        items,
        next_cursor: rows.next.map(encode_cursor),
    }))
}

/// The request `id` if it is addressed to the signed-in caller; 404 for
/// anyone else.
async fn incoming(state: &AppState, auth: &Auth, id: ConsentRequestId) -> ApiResult<(UserId, consent_request::Model)> {
    let user = auth.user().map_err(|_| AppError::NotFound("consent request"))?;
    let email = caller_email(state, auth).await?;
    let row = consents::find_request(&state.db, id)
        .await?
        .filter(|r| email.as_deref() == Some(r.individual_email.as_str()))
        .ok_or(AppError::NotFound("consent request"))?;
    Ok((user, row))
}

fn check_pending(row: &consent_request::Model, now: i64) -> ApiResult<()> {
    if row.status != "pending" {
        return Err(AppError::Conflict(format!("this request has been {} already", row.status)).into());
    }
    if row.expires_at_ms <= now {
        return Err(AppError::Conflict("this request has expired".into()).into());
    }
    Ok(())
}

/// The individual approves a request, choosing which of their subjects it
/// covers; the consent lasts the requested duration from now.
#[utoipa::path(post, path = "/v1/consent-requests/{id}/approve", tag = "consents",
    params(("id" = Uuid, Path, description = "Consent request id")),
    request_body = ApproveConsentRequest,
    security(("bearer_jwt" = [])),
    responses(
        (status = 201, description = "The consent now in force.", body = Consent),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn approve(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathConsentRequestId,
    Json(body): Json<ApproveConsentRequest>,
) -> ApiResult<HttpResponse> {
    let (user, row) = incoming(&state, &auth, id.0).await?;
    let now = Utc::now().timestamp_millis();
    check_pending(&row, now)?;
    let (grantor, subject_set) = grantor_of_subjects(&state, user, &body.subject_ids).await?;
    if grantor.as_uuid() == row.requester_membership_id {
        return Err(AppError::field("subject_ids", "a membership cannot share with itself").into());
    }
    let c = unit::consent_of(
        &row,
        grantor,
        subject_set,
        consents::strings_of(&row.metrics).into_iter().collect(),
        consents::strings_of(&row.farm_paths).into_iter().collect(),
        now,
    )?;
    let txn = unit::begin(&state).await?;
    let created = unit::approve(
        &txn,
        &state.faults,
        &auth.0,
        id.0,
        consents::NewConsent {
            consent: &c,
            granted_by: user,
            request: Some(id.0),
            now_ms: now,
        },
    )
    .await;
    let created = unit::finish(txn, created).await?;
    let names = Names::load(&state, [created.grantor_membership_id, created.grantee_membership_id]).await?;
    Ok(HttpResponse::Created().json(consent_dto(&created, &names, now)?))
}

/// The individual declines a request.
#[utoipa::path(post, path = "/v1/consent-requests/{id}/deny", tag = "consents",
    params(("id" = Uuid, Path, description = "Consent request id")),
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "The request, denied.", body = ConsentRequestView),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn deny(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathConsentRequestId,
) -> ApiResult<web::Json<ConsentRequestView>> {
    let (user, row) = incoming(&state, &auth, id.0).await?;
    let now = Utc::now().timestamp_millis();
    check_pending(&row, now)?;
    let txn = unit::begin(&state).await?;
    let denied = unit::deny(&txn, &state.faults, &auth.0, id.0, user, now).await;
    let row = unit::finish(txn, denied).await?;
    let names = Names::load(&state, [row.requester_membership_id]).await?;
    Ok(web::Json(request_dto(&row, RequestDirection::Incoming, &names, now)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// Comma-separated subject ids, of one individual membership where the
    /// caller manages consents. Without it: every subject of the caller's
    /// individual membership.
    #[param(example = "01935c6e-0000-7000-8000-000000000004")]
    pub subject_ids: Option<String>,
    /// Comma-separated metric codes, among those the request asks for.
    /// Without it: all of them.
    #[param(example = "heart_rate,spo2")]
    pub metrics: Option<String>,
    /// Comma-separated folders, among those the request asks for. Without
    /// it: all of them.
    #[param(example = "/ecg/")]
    pub farm_paths: Option<String>,
}

/// The items of a comma-separated query value; an empty value is no item.
fn comma_list(value: Option<&str>) -> Option<Vec<String>> {
    value.map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// What the company would see if the individual approved the request now.
///
/// Only the individual the request is addressed to sees it, before deciding:
/// per subject and metric the readings in the requested data period (how
/// many, the first and last, a sample of up to five), per folder its files
/// and bytes, computed from their data now exactly as the consent would let
/// the company read it. Narrowing the subjects, metrics or folders narrows
/// the preview. Each preview is recorded in the individual's audit log
/// (`consent.previewed`).
#[utoipa::path(get, path = "/v1/consent-requests/{id}/preview", tag = "consents",
    params(("id" = Uuid, Path, description = "Consent request id"), PreviewQuery),
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "What the company would see.", body = ConsentPreview),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn preview(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathConsentRequestId,
    Query(q): Query<PreviewQuery>,
) -> ApiResult<web::Json<ConsentPreview>> {
    use vitalfarm_app::preview::{self as use_case, as_parameter};
    let (user, row) = incoming(&state, &auth, id.0).await?;
    check_pending(&row, Utc::now().timestamp_millis())?;
    let requester = MembershipId::from_uuid(row.requester_membership_id);
    let (grantor, subject_set) = match comma_list(q.subject_ids.as_deref()) {
        Some(ids) => {
            let mut parsed = Vec::with_capacity(ids.len());
            for (i, text) in ids.iter().enumerate() {
                let id = Uuid::parse_str(text).map_err(|_| AppError::InvalidParameter {
                    field: format!("subject_ids[{i}]"),
                    message: "is not a subject id".to_owned(),
                })?;
                parsed.push(id);
            }
            // The subjects approving would accept, checked the same way.
            grantor_of_subjects(&state, user, &parsed)
                .await
                .map_err(|e| as_parameter(e.0))?
        }
        None => use_case::choosable_subjects(&state, user, requester).await?,
    };
    if grantor == requester {
        return Err(AppError::InvalidParameter {
            field: "subject_ids".to_owned(),
            message: "a membership cannot share with itself".to_owned(),
        }
        .into());
    }
    let ask = use_case::Ask {
        grantor,
        subjects: subject_set,
        metrics: comma_list(q.metrics.as_deref()),
        farm_paths: comma_list(q.farm_paths.as_deref()),
    };
    Ok(web::Json(use_case::preview(&state, &auth.0, &row, ask).await?))
}

/// An individual grants a company access directly.
#[utoipa::path(post, path = "/v1/consents", tag = "consents",
    request_body = GrantConsentRequest,
    security(("bearer_jwt" = [])),
    responses(
        (status = 201, description = "The consent.", body = Consent),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn grant(
    state: web::Data<AppState>,
    auth: Auth,
    Json(body): Json<GrantConsentRequest>,
) -> ApiResult<HttpResponse> {
    let user = auth.user()?;
    let now = Utc::now();
    let now_ms = now.timestamp_millis();
    let mut errors = ValidationErrors::new();
    let (metric_set, path_set) = check_scope(&mut errors, &body.metrics, &body.farm_paths);
    if !body.metrics.is_empty() && body.subject_ids.is_empty() {
        errors.add("subject_ids", "name the subjects whose readings are shared");
    }
    let data = check_data_period(&mut errors, body.data_from, body.data_until);
    let valid_from = body.valid_from.unwrap_or(now).timestamp_millis();
    let until = body.expires_at.timestamp_millis();
    if until <= now_ms.max(valid_from) {
        errors.add("expires_at", "must be in the future and after valid_from");
    } else if until - now_ms > consent::MAX_DURATION_SECS * 1000 {
        errors.add("expires_at", "must be at most ten years ahead");
    }
    errors.into_result()?;
    let (grantor, subject_set) = if body.subject_ids.is_empty() {
        // Files only: the grantor is the caller's one individual membership.
        let mut own = Vec::new();
        for m in accounts::memberships_of_user(&state.db, user).await? {
            if m.role.allows(Permission::ManageConsents)
                && MembershipKind::parse(&m.membership.kind) == Some(MembershipKind::Individual)
            {
                own.push(MembershipId::from_uuid(m.membership.id));
            }
        }
        match own.as_slice() {
            [one] => (*one, BTreeSet::new()),
            _ => {
                return Err(AppError::Forbidden(
                    "granting consent needs the owner or admin role in one individual membership".into(),
                )
                .into());
            }
        }
    } else {
        grantor_of_subjects(&state, user, &body.subject_ids).await?
    };
    let grantee = MembershipId::from_uuid(body.grantee_membership_id);
    let grantee_kind = accounts::find_membership(&state.db, grantee)
        .await?
        .and_then(|(m, _)| MembershipKind::parse(&m.kind));
    if grantee_kind != Some(MembershipKind::Company) {
        return Err(AppError::field("grantee_membership_id", "is not a company membership").into());
    }
    let c = DomainConsent {
        grantor,
        grantee,
        subjects: subject_set,
        metrics: metric_set,
        farm_paths: path_set,
        purpose: body.purpose.into(),
        access: body.access.into(),
        valid: Period {
            from: Some(valid_from),
            until: Some(until),
        },
        data,
        revoked_at: None,
    };
    let txn = unit::begin(&state).await?;
    let granted = unit::grant(
        &txn,
        &state.faults,
        &auth.0,
        consents::NewConsent {
            consent: &c,
            granted_by: user,
            request: None,
            now_ms,
        },
    )
    .await;
    let row = unit::finish(txn, granted).await?;
    let names = Names::load(&state, [row.grantor_membership_id, row.grantee_membership_id]).await?;
    Ok(HttpResponse::Created().json(consent_dto(&row, &names, now_ms)?))
}

/// Which side of a consent to list.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsentRole {
    Grantor,
    Grantee,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsentQuery {
    /// Only consents the caller's memberships gave (`grantor`) or received
    /// (`grantee`).
    #[param(inline)]
    pub role: Option<ConsentRole>,
    /// Only consents in this state now.
    pub status: Option<ConsentStatus>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    #[param(pattern = "^[A-Za-z0-9_-]{22}$")]
    pub cursor: Option<String>,
}

/// Consents the caller's memberships gave or received, oldest first.
#[utoipa::path(get, path = "/v1/consents", tag = "consents",
    params(ConsentQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of consents.", body = ConsentPage)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    Query(q): Query<ConsentQuery>,
) -> ApiResult<web::Json<ConsentPage>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let (limit, after) = (page.limit()?, page.after()?);
    let mine = acting_memberships(&state, &auth.0, Permission::ReadMembership).await?;
    let side = match q.role {
        Some(ConsentRole::Grantor) => consents::Side::Grantor,
        Some(ConsentRole::Grantee) => consents::Side::Grantee,
        None => consents::Side::Either,
    };
    let rows = if mine.is_empty() {
        vitalfarm_storage::Page {
            items: Vec::new(),
            next: None,
        }
    } else {
        consents::list(&state.db, &mine, side, after, limit).await?
    };
    let names = Names::load(
        &state,
        rows.items
            .iter()
            .flat_map(|r| [r.grantor_membership_id, r.grantee_membership_id]),
    )
    .await?;
    let now = Utc::now().timestamp_millis();
    let mut items = Vec::new();
    for r in &rows.items {
        let dto = consent_dto(r, &names, now)?;
        if q.status.is_none_or(|s| s == dto.status) {
            items.push(dto);
        }
    }
    Ok(web::Json(ConsentPage {
        items,
        next_cursor: rows.next.map(encode_cursor),
    }))
}

/// The consent `id` if one of the caller's memberships is a party to it,
/// with whether it is the grantor side; 404 otherwise.
async fn party(state: &AppState, auth: &Auth, id: ConsentId) -> ApiResult<(consent_row::Model, bool)> {
    let mine = acting_memberships(state, &auth.0, Permission::ReadMembership).await?;
    let row = consents::find(&state.db, id)
        .await?
        .ok_or(AppError::NotFound("consent"))?;
    let is = |m: Uuid| mine.contains(&MembershipId::from_uuid(m));
    if is(row.grantor_membership_id) {
        Ok((row, true))
    } else if is(row.grantee_membership_id) {
        Ok((row, false))
    } else {
        Err(AppError::NotFound("consent").into())
    }
}

/// One consent, to either party.
#[utoipa::path(get, path = "/v1/consents/{id}", tag = "consents",
    params(("id" = Uuid, Path, description = "Consent id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The consent.", body = Consent)))]
pub async fn get(state: web::Data<AppState>, auth: Auth, id: PathConsentId) -> ApiResult<web::Json<Consent>> {
    let (row, _) = party(&state, &auth, id.0).await?;
    let names = Names::load(&state, [row.grantor_membership_id, row.grantee_membership_id]).await?;
    Ok(web::Json(consent_dto(&row, &names, Utc::now().timestamp_millis())?))
}

/// The grantor revokes a consent. It is final and counts from the very
/// next request; revoking again changes nothing. Sharing again takes a new
/// consent.
#[utoipa::path(delete, path = "/v1/consents/{id}", tag = "consents",
    params(("id" = Uuid, Path, description = "Consent id")),
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "The consent, revoked.", body = Consent),
        (status = 403, response = ForbiddenResponse),
    ))]
pub async fn revoke(state: web::Data<AppState>, auth: Auth, id: PathConsentId) -> ApiResult<web::Json<Consent>> {
    let (row, grantor_side) = party(&state, &auth, id.0).await?;
    if !grantor_side {
        return Err(AppError::Forbidden("only the individual who gave a consent revokes it".into()).into());
    }
    let grantor = MembershipId::from_uuid(row.grantor_membership_id);
    let allowed = match &auth.0 {
        vitalfarm_app::principal::Principal::User { id } => accounts::role_of(&state.db, *id, grantor)
            .await?
            .is_some_and(|r| r.allows(Permission::ManageConsents)),
        vitalfarm_app::principal::Principal::ApiKey { .. } | vitalfarm_app::principal::Principal::App { .. } => false,
    };
    if !allowed {
        return Err(AppError::Forbidden(
            "revoking a consent needs a signed-in owner or admin of the granting membership".into(),
        )
        .into());
    }
    let now = Utc::now().timestamp_millis();
    let txn = unit::begin(&state).await?;
    let revoked = unit::revoke(&txn, &state.faults, &auth.0, id.0, auth.user().ok(), now).await;
    let row = unit::finish(txn, revoked).await?.unwrap_or(row);
    let names = Names::load(&state, [row.grantor_membership_id, row.grantee_membership_id]).await?;
    Ok(web::Json(consent_dto(&row, &names, now)?))
}

/// What individuals share with the caller's company memberships now: one
/// item per consent in force (or starting later), with its subjects.
#[utoipa::path(get, path = "/v1/shared-with-me", tag = "consents",
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "Consents in force for the caller.", body = SharedWithMe)))]
pub async fn shared_with_me(state: web::Data<AppState>, auth: Auth) -> ApiResult<web::Json<SharedWithMe>> {
    let mine = acting_memberships(&state, &auth.0, Permission::ReadData).await?;
    let now = Utc::now().timestamp_millis();
    let rows = consents::live_for_grantees(&state.db, &mine, now).await?;
    let names = Names::load(&state, rows.iter().map(|r| r.grantor_membership_id)).await?;
    let mut items = Vec::new();
    for row in &rows {
        let Some(c) = consents::to_domain(row) else { continue };
        let mut shared = Vec::new();
        for sid in &c.subjects {
            if let Some(s) = subjects::find(&state.db, *sid)
                .await?
                .filter(|s| s.membership_id == row.grantor_membership_id)
            {
                shared.push(SharedSubject {
                    id: s.id,
                    kind: vitalfarm_domain::SubjectKind::parse(&s.kind)
                        .unwrap_or(vitalfarm_domain::SubjectKind::Dependent),
                    display_name: s.display_name,
                });
            }
        }
        items.push(SharedItem {
            consent_id: row.id,
            grantee_membership_id: row.grantee_membership_id,
            grantor_membership_id: row.grantor_membership_id,
            grantor_name: names.name(row.grantor_membership_id),
            grantor_farm_id: names.farm(row.grantor_membership_id),
            subjects: shared,
            metrics: c.metrics.iter().cloned().collect(),
            farm_paths: c.farm_paths.iter().cloned().collect(),
            purpose: c.purpose.into(),
            access: c.access.into(),
            valid_until: c.valid.until.map(ms_to_time).transpose()?,
            data_from: c.data.from.map(ms_to_time).transpose()?,
            data_until: c.data.until.map(ms_to_time).transpose()?,
            status: status_of(&c, now),
        });
    }
    Ok(web::Json(SharedWithMe { items }))
}
