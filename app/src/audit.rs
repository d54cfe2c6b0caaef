//! Recording audit events: the one way handlers write to a membership's
//! tamper-evident log (`vitalfarm_storage::repo::audit`). An event says who
//! acted, from which membership, what they did to which resource, under
//! which consent, and how it ended. Its `detail` holds ids and counts only:
//! never a health value, a secret or a personal field.

use std::sync::Arc;

use sea_orm::DatabaseTransaction;
use serde_json::{Value, json};
use vitalfarm_domain::audit::ActorKind;
use vitalfarm_domain::{ApiKeyId, AppId, ConsentId, DeviceId, MembershipId, UserId};
use vitalfarm_storage::repo::{accounts, audit};

use crate::error::{AppError, AppResult};
use crate::principal::Principal;
use crate::state::AppState;

pub use vitalfarm_domain::audit::Outcome;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    ApiKey(ApiKeyId),
    /// A third-party app, for a user or with its own credentials.
    App(AppId),
    Device(DeviceId),
    /// Someone without credentials, e.g. the holder of a share link.
    Anonymous,
    /// vitalfarm itself (sweeps, expiries).
    System,
}

impl Actor {
    pub fn of(principal: &Principal) -> Actor {
        // Exhaustive on purpose: a new kind of principal must decide here
        // how it appears in the audit log.
        match principal {
            Principal::User { id } => Actor::User(*id),
            Principal::ApiKey { id, .. } => Actor::ApiKey(*id),
            Principal::App { app, .. } => Actor::App(*app),
        }
    }

    fn kind_and_id(self) -> (ActorKind, Option<uuid::Uuid>) {
        match self {
            Actor::User(id) => (ActorKind::User, Some(id.as_uuid())),
            Actor::ApiKey(id) => (ActorKind::ApiKey, Some(id.as_uuid())),
            Actor::App(id) => (ActorKind::App, Some(id.as_uuid())),
            Actor::Device(id) => (ActorKind::Device, Some(id.as_uuid())),
            Actor::Anonymous => (ActorKind::Anonymous, None),
            Actor::System => (ActorKind::System, None),
        }
    }
}

/// One event for `membership`'s log.
#[derive(Debug, Clone)]
pub struct Event {
    pub membership: MembershipId,
    pub actor: Actor,
    /// The membership the actor acted from, when it is not `membership`
    /// (a company reading data an individual shared with it).
    pub actor_membership: Option<MembershipId>,
    /// Dotted: `auth.sign_in`, `api_key.created`...
    pub action: &'static str,
    /// What was acted on: `api_key/<id>`, `device/<id>`...
    pub resource: String,
    pub consent: Option<ConsentId>,
    pub outcome: Outcome,
    /// A small JSON object of ids and counts.
    pub detail: Value,
}

impl Event {
    /// An allowed action by `actor` in `membership`, with an empty detail.
    pub fn new(membership: MembershipId, actor: Actor, action: &'static str, resource: impl Into<String>) -> Self {
        Self {
            membership,
            actor,
            actor_membership: None,
            action,
            resource: resource.into(),
            consent: None,
            outcome: Outcome::Allowed,
            detail: json!({}),
        }
    }

    /// The same for an authenticated principal.
    pub fn by(
        principal: &Principal,
        membership: MembershipId,
        action: &'static str,
        resource: impl Into<String>,
    ) -> Self {
        Self::new(membership, Actor::of(principal), action, resource)
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
}

impl From<Event> for audit::NewEvent {
    fn from(event: Event) -> Self {
        let (actor_kind, actor_id) = event.actor.kind_and_id();
        audit::NewEvent {
            membership: event.membership,
            actor_kind,
            actor_id,
            actor_membership: event.actor_membership,
            action: event.action.to_owned(),
            resource: event.resource,
            consent: event.consent,
            outcome: event.outcome,
            detail: event.detail.to_string(),
        }
    }
}

/// Appends `event` to its membership's chain.
pub async fn record(state: &AppState, event: Event) -> AppResult<()> {
    audit::append(&state.db, event.into()).await?;
    Ok(())
}

/// Inside the caller's `txn`: appends `events` (to one or several
/// memberships' chains), stored exactly when the change they record is.
pub async fn record_in(txn: &DatabaseTransaction, events: Vec<Event>) -> AppResult<()> {
    let events: Vec<audit::NewEvent> = events.into_iter().map(Into::into).collect();
    audit::append_in(txn, &events).await?;
    Ok(())
}

/// Records the same event about `user` in each membership they belong to
/// (signing in and out concern all of them).
pub async fn record_for_user(
    state: &AppState,
    user: UserId,
    action: &'static str,
    outcome: Outcome,
    detail: Value,
) -> AppResult<()> {
    for m in accounts::memberships_of_user(&state.db, user).await? {
        let event = Event::new(
            MembershipId::from_uuid(m.membership.id),
            Actor::User(user),
            action,
            format!("user/{user}"),
        )
        .with_outcome(outcome)
        .with_detail(detail.clone());
        record(state, event).await?;
    }
    Ok(())
}

/// `record_for_user` off the request's path: the response neither waits
/// for it nor changes with it, so its timing tells nothing (a failed sign-in
/// must not reveal that the account exists). A failure is logged.
pub fn record_for_user_later(
    state: Arc<AppState>,
    user: UserId,
    action: &'static str,
    outcome: Outcome,
    detail: Value,
) {
    tokio::spawn(async move {
        if let Err(err) = record_for_user(&state, user, action, outcome, detail).await {
            tracing::error!(error = %err, action, "audit event not recorded");
        }
    });
}

/// Passes `result` through; when it is a refusal of the principal's role
/// (403), records `attempt` as `denied` first. A principal with no standing
/// in the membership (404) is not recorded: the log belongs to members.
pub async fn guard<T>(state: &AppState, attempt: Event, result: AppResult<T>) -> AppResult<T> {
    if let Err(AppError::Forbidden(_)) = &result {
        record(state, attempt.with_outcome(Outcome::Denied)).await?;
    }
    result
}
