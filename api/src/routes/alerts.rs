//! Alert rules of a membership, the alerts they open, and acknowledging
//! them. Evaluation itself is in `vitalfarm_app::alerts`.

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures_util::future::{Ready, ready};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;
use vitalfarm_domain::alerts::{Condition, Rule, RuleInput};
use vitalfarm_domain::{MembershipId, Permission, ValidationErrors};
use vitalfarm_openapi::alerts::{Alert, AlertPage, AlertRule, AlertRulePage, CreateAlertRuleRequest};
use vitalfarm_openapi::doc::{ConflictResponse, ForbiddenResponse, NotFoundResponse};
use vitalfarm_storage::entity::alert_rule;
use vitalfarm_storage::repo::alerts::{self as repo, AlertFilter};

use super::RouteSet;
use crate::error::{ApiError, ApiResult, AppError};
use crate::extract::query::encode_cursor;
use crate::extract::{Auth, Json, PageQuery, PathMembershipId, Query};
use vitalfarm_app::alerts::{alert_dto, resolve_all_of_rule, rule_dto, start_clocks};
use vitalfarm_app::audit::{self, Event};
use vitalfarm_app::authz::{self, Claimed};
use vitalfarm_app::principal::Principal;
use vitalfarm_app::sharing;
use vitalfarm_app::state::AppState;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/memberships/{mid}/alert-rules", create_rule);
    r.add(Method::GET, "/v1/memberships/{mid}/alert-rules", list_rules);
    r.add(Method::GET, "/v1/memberships/{mid}/alert-rules/{rid}", get_rule);
    r.add(Method::DELETE, "/v1/memberships/{mid}/alert-rules/{rid}", delete_rule);
    r.add(Method::GET, "/v1/memberships/{mid}/alerts", list_alerts);
    r.add(Method::POST, "/v1/alerts/{aid}/ack", ack);
}

/// A UUID path segment named `$segment`.
macro_rules! uuid_segment {
    ($name:ident, $segment:literal) => {
        #[doc = concat!("The `{", $segment, "}` path segment.")]
        pub struct $name(pub Uuid);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Ready<Result<Self, ApiError>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                ready(
                    req.match_info()
                        .get($segment)
                        .and_then(|s| s.parse::<Uuid>().ok())
                        .map($name)
                        .ok_or_else(|| {
                            ApiError(AppError::InvalidParameter {
                                field: $segment.into(),
                                message: "must be a UUID".into(),
                            })
                        }),
                )
            }
        }
    };
}

uuid_segment!(PathRuleId, "rid");
uuid_segment!(PathAlertId, "aid");

/// The user, key or app that acted, as `acknowledged_by` shows it.
fn actor_id(p: &Principal) -> Uuid {
    match p {
        Principal::User { id } => id.as_uuid(),
        Principal::ApiKey { id, .. } => id.as_uuid(),
        Principal::App { user: Some(user), .. } => user.as_uuid(),
        Principal::App { app, .. } => app.as_uuid(),
    }
}

/// Creates an alert rule. It applies to readings stored from now on; a
/// `no_data` rule starts its clock now for the subjects it names (or every
/// subject of the membership), and for others at their first reading.
/// A shared subject must be covered by an active consent for `metric`; a
/// rule stops applying to it when that consent ends.
#[utoipa::path(post, path = "/v1/memberships/{mid}/alert-rules", tag = "alerts",
    params(("mid" = Uuid, Path, description = "Membership id")),
    request_body = CreateAlertRuleRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created.", body = AlertRule),
        (status = 403, response = ForbiddenResponse),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn create_rule(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Json(body): Json<CreateAlertRuleRequest>,
) -> ApiResult<HttpResponse> {
    let rule = Rule::parse(&RuleInput {
        name: &body.name,
        metric: body.metric.as_deref(),
        component: body.component.as_deref(),
        subject_ids: body.subject_ids.as_deref(),
        condition: &body.condition,
        severity: &body.severity,
    })?;
    let attempt = || Event::by(&auth.0, mid.0.for_audit(), "alert_rule.created", "alert_rules");
    let authorized = authz::authorize(&state, &auth.0, mid.0, Permission::WriteData).await;
    let access = audit::guard(&state, attempt(), authorized).await?;
    let mid = access.membership();
    if let Some(subjects) = &rule.subjects {
        let mut errors = ValidationErrors::new();
        for (i, s) in subjects.iter().enumerate() {
            if !sharing::watchable(&state, &access, s.as_uuid(), rule.metric).await? {
                // The same answer for a subject that does not exist.
                errors.add(
                    format!("subject_ids[{i}]"),
                    "is not a subject of this membership or shared with it for this metric",
                );
            }
        }
        errors.into_result()?;
    }
    let now_ms = Utc::now().timestamp_millis();
    let subject_ids: Option<Vec<Uuid>> = rule
        .subjects
        .as_ref()
        .map(|s| s.iter().map(|id| id.as_uuid()).collect());
    let row = repo::create_rule(
        &state.db,
        alert_rule::Model {
            id: Uuid::now_v7(),
            membership_id: mid.as_uuid(),
            name: rule.name.clone(),
            metric: rule.metric.map(str::to_owned),
            component: rule.component.to_owned(),
            subject_ids: subject_ids.as_ref().map(|ids| json!(ids).to_string()),
            condition: rule.condition.to_json().to_string(),
            severity: rule.severity.as_str().to_owned(),
            created_by: Some(actor_id(&auth.0)),
            created_at_ms: now_ms,
            app_id: auth.0.app_origin().app,
            grant_id: auth.0.app_origin().grant,
            disabled_at_ms: None,
        },
    )
    .await?;
    if let Condition::NoData { for_ms } = rule.condition {
        let watched = match subject_ids {
            Some(ids) => ids,
            None => repo::subject_ids_of(&state.db, mid).await?,
        };
        start_clocks(&state.db, &row, for_ms, &watched, now_ms).await?;
    }
    tracing::info!(membership_id = %mid, rule_id = %row.id, "alert rule created");
    audit::record(
        &state,
        Event::by(&auth.0, mid, "alert_rule.created", format!("alert_rule/{}", row.id))
            .with_detail(json!({"kind": rule.condition.kind(), "severity": rule.severity.as_str()})),
    )
    .await?;
    Ok(HttpResponse::Created().json(rule_dto(&row)?))
}

/// The membership's alert rules, oldest first.
#[utoipa::path(get, path = "/v1/memberships/{mid}/alert-rules", tag = "alerts",
    params(("mid" = Uuid, Path, description = "Membership id"), PageQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of rules.", body = AlertRulePage),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn list_rules(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(page): Query<PageQuery>,
) -> ApiResult<web::Json<AlertRulePage>> {
    let (limit, after) = (page.limit()?, page.after()?);
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ReadData)
        .await?
        .membership();
    let page = repo::list_rules(&state.db, mid, after, limit).await?;
    Ok(web::Json(AlertRulePage {
        items: page.items.iter().map(rule_dto).collect::<Result<_, _>>()?,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// An alert rule.
#[utoipa::path(get, path = "/v1/memberships/{mid}/alert-rules/{rid}", tag = "alerts",
    params(("mid" = Uuid, Path, description = "Membership id"), ("rid" = Uuid, Path, description = "Alert rule id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The rule.", body = AlertRule),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn get_rule(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    rid: PathRuleId,
) -> ApiResult<web::Json<AlertRule>> {
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ReadData)
        .await?
        .membership();
    let row = repo::find_rule_in(&state.db, mid, rid.0)
        .await?
        .ok_or(AppError::NotFound("alert rule"))?;
    Ok(web::Json(rule_dto(&row)?))
}

/// Deletes an alert rule; its open and acknowledged alerts resolve (with
/// `alert.resolved` events), and stay listed.
#[utoipa::path(delete, path = "/v1/memberships/{mid}/alert-rules/{rid}", tag = "alerts",
    params(("mid" = Uuid, Path, description = "Membership id"), ("rid" = Uuid, Path, description = "Alert rule id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, response = ForbiddenResponse),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn delete_rule(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    rid: PathRuleId,
) -> ApiResult<HttpResponse> {
    let attempt = || {
        Event::by(
            &auth.0,
            mid.0.for_audit(),
            "alert_rule.deleted",
            format!("alert_rule/{}", rid.0),
        )
    };
    let authorized = authz::authorize(&state, &auth.0, mid.0, Permission::WriteData).await;
    let mid = audit::guard(&state, attempt(), authorized).await?.membership();
    let txn = state
        .db
        .begin_write()
        .await
        .map_err(vitalfarm_storage::StorageError::from)?;
    if !repo::delete_rule(&txn, mid, rid.0).await? {
        return Err(AppError::NotFound("alert rule").into());
    }
    let resolved = resolve_all_of_rule(&txn, rid.0).await?;
    txn.commit().await.map_err(vitalfarm_storage::StorageError::from)?;
    tracing::info!(membership_id = %mid, rule_id = %rid.0, resolved, "alert rule deleted");
    audit::record(&state, attempt().with_detail(json!({"alerts_resolved": resolved}))).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// Only alerts in this state: `open`, `acknowledged` or `resolved`.
    pub status: Option<String>,
    /// Only alerts about this subject.
    pub subject_id: Option<Uuid>,
    /// Only alerts of this rule.
    pub rule_id: Option<Uuid>,
    /// Items per page, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{22}$")]
    pub cursor: Option<String>,
}

/// The membership's alerts, oldest first.
#[utoipa::path(get, path = "/v1/memberships/{mid}/alerts", tag = "alerts",
    params(("mid" = Uuid, Path, description = "Membership id"), AlertQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of alerts.", body = AlertPage),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn list_alerts(
    state: web::Data<AppState>,
    auth: Auth,
    mid: PathMembershipId,
    Query(q): Query<AlertQuery>,
) -> ApiResult<web::Json<AlertPage>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let (limit, after) = (page.limit()?, page.after()?);
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            [repo::OPEN, repo::ACKNOWLEDGED, repo::RESOLVED]
                .into_iter()
                .find(|v| *v == s)
                .ok_or_else(|| AppError::InvalidParameter {
                    field: "status".into(),
                    message: "must be one of open, acknowledged, resolved".into(),
                })?,
        ),
    };
    let mid = authz::authorize(&state, &auth.0, mid.0, Permission::ReadData)
        .await?
        .membership();
    let filter = AlertFilter {
        status,
        subject: q.subject_id,
        rule: q.rule_id,
    };
    let page = repo::list_alerts(&state.db, mid, &filter, after, limit).await?;
    Ok(web::Json(AlertPage {
        items: page.items.iter().map(alert_dto).collect::<Result<_, _>>()?,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// Acknowledges an open alert: someone is on it. It stays live (further
/// breaches still count) until it resolves. Acknowledging an acknowledged
/// alert changes nothing and answers 200 with it as it is (the first
/// acknowledgement stands); a resolved alert answers 409.
#[utoipa::path(post, path = "/v1/alerts/{aid}/ack", tag = "alerts",
    params(("aid" = Uuid, Path, description = "Alert id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The alert, acknowledged.", body = Alert),
        (status = 403, response = ForbiddenResponse),
        (status = 404, response = NotFoundResponse),
        (status = 409, response = ConflictResponse),
    ))]
pub async fn ack(state: web::Data<AppState>, auth: Auth, aid: PathAlertId) -> ApiResult<web::Json<Alert>> {
    let found = repo::find_alert(&state.db, aid.0)
        .await?
        .ok_or(AppError::NotFound("alert"))?;
    // The alert names its membership, which the caller must stand in: no
    // standing there is 404, like no alert at all.
    let mid = Claimed::new(MembershipId::from_uuid(found.membership_id));
    let attempt = || {
        Event::by(
            &auth.0,
            mid.for_audit(),
            "alert.acknowledged",
            format!("alert/{}", aid.0),
        )
    };
    let authorized = authz::authorize(&state, &auth.0, mid, Permission::WriteData).await;
    audit::guard(&state, attempt(), authorized).await?;
    let now_ms = Utc::now().timestamp_millis();
    let changed = repo::acknowledge(&state.db, aid.0, Some(actor_id(&auth.0)), now_ms).await?;
    let current = repo::find_alert(&state.db, aid.0)
        .await?
        .ok_or(AppError::NotFound("alert"))?;
    if changed {
        audit::record(&state, attempt()).await?;
        tracing::info!(alert_id = %aid.0, "alert acknowledged");
    } else if current.status == repo::RESOLVED {
        return Err(AppError::Conflict("the alert has resolved already".into()).into());
    }
    Ok(web::Json(alert_dto(&current)?))
}
