//! Cohort aggregates (`POST /v1/analytics/cohort`): one metric over every
//! subject a membership owns or is shared by consent, grouped by age band
//! and sex, with groups of fewer than k subjects suppressed (the privacy
//! reasoning is in `vitalfarm_domain::cohort`).
//!
//! Shared subjects are evaluated by `sharing::cohort_shares` exactly like a
//! single shared read (the consent with the widest data window for the
//! metric wins, and only that window is read), and each consent used is
//! written once to its grantor's audit log as a `data.read`.

use std::collections::{BTreeMap, HashSet};

use actix_web::http::Method;
use actix_web::{CustomizeResponder, web};
use chrono::NaiveDate;
use uuid::Uuid;
use vitalfarm_domain::cohort::{self, Contribution, GroupKey, Grouping};
use vitalfarm_domain::metrics::{self, MetricKind};
use vitalfarm_domain::subject::Sex;
use vitalfarm_domain::{ConsentId, MembershipId, Permission};
use vitalfarm_openapi::cohort::{CohortGroup, CohortRequest, CohortResponse, CohortTotals, SuppressedGroup};
use vitalfarm_openapi::doc::{ForbiddenResponse, NotFoundResponse};
use vitalfarm_storage::entity::subject;
use vitalfarm_storage::repo::{cohort as cohort_repo, subjects};

use super::RouteSet;
use super::analytics::MAX_PERIOD_MS;
use crate::error::{ApiError, ApiResult, AppError};
use crate::extract::{Auth, Json};
use vitalfarm_app::audit;
use vitalfarm_app::authz::{self, Access, Claimed};
use vitalfarm_app::principal::Principal;
use vitalfarm_app::sharing::{self, Receipt};
use vitalfarm_app::state::AppState;

/// Most subjects a request may name.
const MAX_SUBJECT_IDS: usize = 10_000;
/// Subjects read per page when listing a membership's own.
const PAGE: u64 = 1000;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::POST, "/v1/analytics/cohort", cohort_stats);
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    (AppError::InvalidParameter {
        field: field.into(),
        message: message.into(),
    })
    .into()
}

/// A subject counted in the cohort, with the window of its readings read.
struct Member {
    subject: subject::Model,
    from: i64,
    to: i64,
}

/// The caller's access to the membership it acts for: the one named, or
/// its only one.
async fn acting(state: &AppState, principal: &Principal, named: Option<Uuid>) -> ApiResult<Access> {
    let mine = sharing::acting_memberships(state, principal, Permission::ReadData).await?;
    match named.map(MembershipId::from_uuid) {
        // A member whose role does not read data is told so; anyone else
        // cannot tell the membership exists.
        Some(m) => {
            let access = authz::authorize(state, principal, Claimed::new(m), Permission::ReadData).await?;
            if !mine.contains(&access.membership()) {
                return Err(
                    AppError::Forbidden(format!("your role ({}) does not allow this", access.role().as_str())).into(),
                );
            }
            Ok(access)
        }
        None => match mine.as_slice() {
            // Derived from the principal's own memberships; asked all the
            // same, for the proof.
            [one] => Ok(authz::authorize(state, principal, Claimed::new(*one), Permission::ReadData).await?),
            [] => Err(AppError::Forbidden("you read data for no membership".into()).into()),
            _ => Err(bad("membership_id", "you read data for several memberships: name one")),
        },
    }
}

/// Every subject of `membership` (restricted to `only` when given).
async fn own_subjects(
    state: &AppState,
    membership: MembershipId,
    only: Option<&HashSet<Uuid>>,
) -> ApiResult<Vec<subject::Model>> {
    if let Some(only) = only {
        let ids: Vec<Uuid> = only.iter().copied().collect();
        return Ok(cohort_repo::subjects_of(&state.db, membership, &ids).await?);
    }
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = subjects::list(&state.db, membership, None, after, PAGE).await?;
        out.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Aggregates one metric over the subjects a membership owns and those
/// other memberships share with it, grouped by age band (age on the date
/// of `to`) and sex. A group is published only with at least `k` subjects
/// that have readings (k defaults to 5 and is never below 3); smaller
/// groups are listed under `suppressed` with no count or value, and the
/// totals add up the published groups only, so no suppressed group can be
/// recovered by difference. Shared subjects count only under an active
/// consent that covers the metric, over the part of the period the consent
/// shares; each consent used is recorded in its grantor's audit log.
#[utoipa::path(post, path = "/v1/analytics/cohort", tag = "analytics",
    request_body = CohortRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The published and the suppressed groups.", body = CohortResponse,
            headers(("Vitalfarm-Consent" = String, description = "Ids of the consents under which other memberships' subjects were counted; absent when none were."))),
        (status = 403, response = ForbiddenResponse),
        (status = 404, response = NotFoundResponse),
    ))]
pub async fn cohort_stats(
    state: web::Data<AppState>,
    auth: Auth,
    Json(body): Json<CohortRequest>,
) -> ApiResult<CustomizeResponder<web::Json<CohortResponse>>> {
    let k = body.k.unwrap_or(cohort::DEFAULT_K);
    if k < cohort::MIN_K {
        return Err(bad("k", format!("must be at least {}", cohort::MIN_K)));
    }
    let def = metrics::find(&body.metric)
        .filter(|d| d.accepts_readings())
        .ok_or_else(|| bad("metric", "not a metric with readings; see GET /v1/metrics"))?;
    let component: &str = match (def.kind, body.component.as_deref()) {
        (MetricKind::Components, Some(c)) => {
            def.component(c)
                .ok_or_else(|| bad("component", format!("not a component of {}", def.code)))?
                .code
        }
        (MetricKind::Components, None) => {
            return Err(bad("component", format!("required for {}", def.code)));
        }
        (_, Some(_)) => return Err(bad("component", format!("{} has no components", def.code))),
        (_, None) => "",
    };
    crate::extract::query::check_period(Some(body.from), Some(body.to))?;
    let (from, to) = (body.from.timestamp_millis(), body.to.timestamp_millis());
    if to - from > MAX_PERIOD_MS {
        return Err(bad("to", "the period may span at most 366 days"));
    }
    let group_by = body
        .group_by
        .clone()
        .unwrap_or_else(|| vec!["age_band".into(), "sex".into()]);
    let edges = body
        .age_bands
        .clone()
        .unwrap_or_else(|| cohort::DEFAULT_AGE_BANDS.to_vec());
    let grouping = Grouping::new(&group_by, &edges).map_err(|(field, message)| bad(field, message))?;
    if body.subject_ids.as_ref().is_some_and(|s| s.len() > MAX_SUBJECT_IDS) {
        return Err(bad("subject_ids", format!("at most {MAX_SUBJECT_IDS} subjects")));
    }
    let only: Option<HashSet<Uuid>> = body.subject_ids.as_ref().map(|s| s.iter().copied().collect());

    let access = acting(&state, &auth.0, body.membership_id).await?;
    let membership = access.membership();
    let mut members: Vec<Member> = own_subjects(&state, membership, only.as_ref())
        .await?
        .into_iter()
        .map(|subject| Member { subject, from, to })
        .collect();
    let mut receipt = Receipt::default();
    if body.include_shared.unwrap_or(true) {
        let shared = sharing::cohort_shares(&state.db, &access, def.code, (from, to), only.as_ref()).await?;
        // One audit record per consent used, however many subjects it
        // covers; written before anything is answered.
        let mut used: BTreeMap<ConsentId, (MembershipId, u64)> = BTreeMap::new();
        for share in shared {
            used.entry(share.consent).or_insert((share.grantor, 0)).1 += 1;
            members.push(Member {
                subject: share.subject,
                from: share.from,
                to: share.to,
            });
        }
        for (consent_id, (grantor, n)) in used {
            let mut event = audit::Event::by(&auth.0, grantor, "data.read", format!("cohort/readings/{}", def.code))
                .with_detail(serde_json::json!({ "subjects": n }));
            event.consent = Some(consent_id);
            event.actor_membership = Some(membership);
            audit::record(&state, event).await?;
            receipt.add(consent_id);
        }
    }

    // Subjects sharing a window are summed in one statement.
    let mut by_window: BTreeMap<(i64, i64), Vec<Uuid>> = BTreeMap::new();
    for m in &members {
        by_window.entry((m.from, m.to)).or_default().push(m.subject.id);
    }
    let mut sums = std::collections::HashMap::new();
    for ((lo, hi), ids) in by_window {
        for s in cohort_repo::sums(&state.db, &ids, def.code, component, lo, hi).await? {
            sums.insert(s.subject_id, s);
        }
    }
    let on: NaiveDate = body.to.date_naive();
    let contributions = members.iter().filter_map(|m| {
        let s = sums.get(&m.subject.id)?;
        let sex = m.subject.sex.as_deref().and_then(Sex::parse);
        let key: GroupKey = grouping.key(m.subject.birth_date, sex, on);
        Some((
            key,
            Contribution {
                count: u64::try_from(s.count).unwrap_or(0),
                sum: s.sum,
                sum_sq: s.sum_sq,
                min: s.min,
                max: s.max,
            },
        ))
    });
    let result = cohort::combine(contributions, k);
    tracing::info!(
        subjects = members.len(),
        published = result.totals.groups_published,
        suppressed = result.totals.groups_suppressed,
        consents = receipt.ids().len(),
        "cohort aggregated"
    );
    Ok(crate::receipts::json(
        &receipt,
        CohortResponse {
            metric: def.code.to_owned(),
            component: (!component.is_empty()).then(|| component.to_owned()),
            from: body.from,
            to: body.to,
            k,
            groups: result
                .groups
                .into_iter()
                .map(|g| CohortGroup {
                    age_band: g.key.age_band,
                    sex: g.key.sex,
                    subjects: g.subjects,
                    readings: g.readings,
                    mean: g.mean,
                    min: g.min,
                    max: g.max,
                    stddev: g.stddev,
                })
                .collect(),
            suppressed: result
                .suppressed
                .into_iter()
                .map(|key| SuppressedGroup {
                    age_band: key.age_band,
                    sex: key.sex,
                })
                .collect(),
            totals: CohortTotals {
                subjects: result.totals.subjects,
                readings: result.totals.readings,
                groups_published: result.totals.groups_published,
                groups_suppressed: result.totals.groups_suppressed,
            },
            consents: receipt.ids(),
        },
    ))
}
