//! The consent preview: before approving a company's request, the
//! individual sees what the company would see under it, computed from their
//! own data now. The preview builds the very consent approving would create
//! and asks `sharing::window_under` (the one place consents are evaluated)
//! for each subject and metric,
//! so the counts, first and last readings and samples lie in the same
//! window a shared read would be clipped to. The caller (the HTTP route)
//! has already checked that the request is addressed to the principal and
//! which subjects they may choose.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::json;
use vitalfarm_domain::farm_path::parse_dir_prefix;
use vitalfarm_domain::{
    FarmId, MembershipId, MembershipKind, Permission, SubjectId, UserId, ValidationErrors, metrics,
};
use vitalfarm_openapi::consents::{ConsentPreview, PreviewFolder, PreviewMetric, PreviewSubject, PreviewValue};
use vitalfarm_storage::entity::consent_request;
use vitalfarm_storage::repo::{accounts, consents, farms, preview as queries, subjects};

use crate::audit;
use crate::error::{AppError, AppResult};
use crate::principal::Principal;
use crate::state::AppState;
use crate::views::ms_to_time;

/// Readings shown per metric, spread from the first to the last.
pub const SAMPLE_SIZE: u64 = 5;

/// Subjects previewed at most when the individual names none (approving
/// takes at most as many).
const MAX_SUBJECTS: u64 = 100;

/// What to preview: the subjects chosen, of one membership, and the
/// request's metrics and folders, narrowed when given.
#[derive(Debug, Clone)]
pub struct Ask {
    pub grantor: MembershipId,
    pub subjects: BTreeSet<SubjectId>,
    /// Metric codes; `None`: all the request asks for.
    pub metrics: Option<Vec<String>>,
    /// Folders; `None`: all the request asks for.
    pub farm_paths: Option<Vec<String>>,
}

/// The subjects an individual can choose from when they name none: every
/// subject of their one individual membership where they manage consents.
/// A 400 `invalid-parameter` on `subject_ids` when they have none or several (approving takes
/// the subjects of one membership, so they must say which).
pub async fn choosable_subjects(
    state: &AppState,
    user: UserId,
    requester: MembershipId,
) -> AppResult<(MembershipId, BTreeSet<SubjectId>)> {
    let own: Vec<MembershipId> = accounts::memberships_of_user(&state.db, user)
        .await?
        .into_iter()
        .filter(|m| {
            m.role.allows(Permission::ManageConsents)
                && MembershipKind::parse(&m.membership.kind) == Some(MembershipKind::Individual)
        })
        .map(|m| MembershipId::from_uuid(m.membership.id))
        .filter(|m| *m != requester)
        .collect();
    let grantor = match own.as_slice() {
        [one] => *one,
        [] => {
            return Err(AppError::InvalidParameter {
                field: "subject_ids".to_owned(),
                message: "you manage the consents of no individual membership".to_owned(),
            });
        }
        _ => {
            return Err(AppError::InvalidParameter {
                field: "subject_ids".to_owned(),
                message: "you manage several individual memberships: name the subjects of one".to_owned(),
            });
        }
    };
    let page = subjects::list(&state.db, grantor, None, None, MAX_SUBJECTS).await?;
    Ok((grantor, page.items.iter().map(|s| SubjectId::from_uuid(s.id)).collect()))
}

/// The part of `requested` that `asked` names (all of it when `asked` is
/// `None`), each item put in canonical form by `canonical`; an item outside
/// the request is an error on `field[i]`.
fn narrow(
    errors: &mut ValidationErrors,
    field: &str,
    requested: &BTreeSet<String>,
    asked: Option<&[String]>,
    canonical: impl Fn(&str) -> Option<String>,
) -> BTreeSet<String> {
    let Some(asked) = asked else { return requested.clone() };
    let mut out = BTreeSet::new();
    for (i, item) in asked.iter().enumerate() {
        match canonical(item).filter(|c| requested.contains(c)) {
            Some(c) => {
                out.insert(c);
            }
            None => errors.add(
                format!("{field}[{i}]"),
                format!("is not one of the {field} this request asks for"),
            ),
        }
    }
    out
}

/// A field error as the query parameter error it is (400
/// `invalid-parameter`, naming the parameter): everything a preview is
/// asked for comes in the query string. Other errors pass unchanged.
pub fn as_parameter(err: AppError) -> AppError {
    match err {
        AppError::Validation(errors) => match errors.into_iter().next() {
            Some(first) => AppError::InvalidParameter {
                field: first.field,
                message: first.message,
            },
            None => AppError::InvalidParameter {
                field: "query".to_owned(),
                message: "is invalid".to_owned(),
            },
        },
        other => other,
    }
}

fn time_or_null(ms: Option<i64>) -> AppResult<Option<DateTime<Utc>>> {
    ms.map(ms_to_time).transpose()
}

/// Previews `row` for `ask`, as `principal` (the individual it is
/// addressed to), and records `consent.previewed` in the grantor's audit
/// log. A metric or folder outside the request is a 400
/// `invalid-parameter` naming it (`metrics[1]`).
pub async fn preview(
    state: &AppState,
    principal: &Principal,
    row: &consent_request::Model,
    ask: Ask,
) -> AppResult<ConsentPreview> {
    let requested_metrics: BTreeSet<String> = consents::strings_of(&row.metrics).into_iter().collect();
    let requested_paths: BTreeSet<String> = consents::strings_of(&row.farm_paths).into_iter().collect();
    let mut errors = ValidationErrors::new();
    let metric_set = narrow(
        &mut errors,
        "metrics",
        &requested_metrics,
        ask.metrics.as_deref(),
        |code| metrics::find(code).map(|m| m.code.to_owned()),
    );
    let path_set = narrow(
        &mut errors,
        "farm_paths",
        &requested_paths,
        ask.farm_paths.as_deref(),
        |p| parse_dir_prefix(p).ok(),
    );
    errors.into_result().map_err(|e| as_parameter(e.into()))?;

    let now_ms = Utc::now().timestamp_millis();
    let c = crate::consents::consent_of(row, ask.grantor, ask.subjects.clone(), metric_set, path_set, now_ms)?;

    let mut subjects_out = Vec::new();
    for sid in &c.subjects {
        // The route has checked the subjects are the grantor's; one erased
        // since is left out, as a consent would show nothing of it.
        let Some(subject) = subjects::find(&state.db, *sid)
            .await?
            .filter(|s| s.membership_id == c.grantor.as_uuid())
        else {
            continue;
        };
        let mut metrics_out = Vec::new();
        for code in &c.metrics {
            let Some(def) = metrics::find(code) else { continue };
            // Not reachable for a consent built from this scope; an empty
            // window shows that nothing would be read.
            let (from, to) = crate::sharing::window_under(&c, *sid, def.code, now_ms).unwrap_or((0, 0));
            // Every reading of a panel has its first component.
            let component = def.components.first().map_or("", |cp| cp.code);
            let span = if def.accepts_readings() {
                queries::span(&state.db, *sid, def.code, component, from, to).await?
            } else {
                None
            };
            let mut sample = Vec::new();
            if let Some(span) = span {
                for s in queries::sample(
                    &state.db,
                    *sid,
                    def.code,
                    component,
                    (from, to),
                    span.count,
                    SAMPLE_SIZE,
                )
                .await?
                {
                    let (value, components) = match s.values.as_slice() {
                        [(c, v)] if c.is_empty() => (Some(*v), None),
                        _ => (None, Some(s.values.iter().cloned().collect::<BTreeMap<_, _>>())),
                    };
                    sample.push(PreviewValue {
                        ts: ms_to_time(s.ts_ms)?,
                        value,
                        components,
                    });
                }
            }
            metrics_out.push(PreviewMetric {
                metric: def.code.to_owned(),
                unit: def.unit.to_owned(),
                count: span.map_or(0, |s| s.count),
                first: time_or_null(span.map(|s| s.first_ms))?,
                last: time_or_null(span.map(|s| s.last_ms))?,
                sample,
            });
        }
        subjects_out.push(PreviewSubject {
            subject_id: subject.id,
            display_name: subject.display_name,
            metrics: metrics_out,
        });
    }

    // A consent lets the company read every file under a shared folder
    // (`consent::evaluate` on `Request::File`), at any depth.
    let farm = farms::find_by_membership(&state.db, c.grantor).await?;
    let mut folders = Vec::new();
    for path in &c.farm_paths {
        let (files, bytes) = match &farm {
            Some(f) => queries::files_under(&state.db, FarmId::from_uuid(f.id), path).await?,
            None => (0, 0),
        };
        folders.push(PreviewFolder {
            path: path.clone(),
            files,
            bytes,
        });
    }

    let event = audit::Event::by(
        principal,
        c.grantor,
        "consent.previewed",
        format!("consent_request/{}", row.id),
    )
    .with_detail(json!({
        "subjects": subjects_out.len(),
        "metrics": c.metrics.len(),
        "farm_paths": c.farm_paths.len(),
    }));
    audit::record(state, event).await?;

    Ok(ConsentPreview {
        request_id: row.id,
        membership_id: c.grantor.as_uuid(),
        data_from: time_or_null(row.data_from_ms)?,
        data_until: time_or_null(row.data_until_ms)?,
        subjects: subjects_out,
        farm_paths: folders,
    })
}
