//! Reads of data, one's own or another membership's. A principal reads its
//! own membership's data by its role; it reads another membership's data
//! only through that membership's consents, evaluated by
//! `vitalfarm_domain::consent::evaluate` on every request (so expiry needs
//! no job and a revocation counts from the very next request). Handlers ask
//! here and nowhere else, and send back the receipt (the consents used).
//!
//! A subject or farm with no active consent behind it answers 404, exactly
//! like one that does not exist; a subject that is shared, asked for
//! something its consents do not cover (another metric, a folder outside
//! the shared ones, an export under a read-only consent), answers 403.

use chrono::Utc;
use vitalfarm_domain::consent::{self, Access as ConsentAccess, Consent, Denial, Request};
use vitalfarm_domain::{ConsentId, FarmId, MembershipId, Permission, SubjectId};
use vitalfarm_storage::entity::{farm, subject};
use vitalfarm_storage::repo::{accounts, consents, farms, subjects};

use crate::audit;
use crate::authz::{self, Access};
use crate::error::{AppError, AppResult};
use crate::principal::Principal;
use crate::state::AppState;

/// The response header that names the consents a response was served under.
pub const CONSENT_HEADER: &str = "Vitalfarm-Consent";

/// The consents that permitted a response; empty for one's own data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt(Vec<ConsentId>);

impl Receipt {
    pub fn add(&mut self, id: ConsentId) {
        if !self.0.contains(&id) {
            self.0.push(id);
        }
    }

    pub fn extend(&mut self, id: Option<ConsentId>) {
        if let Some(id) = id {
            self.add(id);
        }
    }

    pub fn ids(&self) -> Vec<uuid::Uuid> {
        self.0.iter().map(|c| c.as_uuid()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `Vitalfarm-Consent` header value: comma-separated ids.
    pub fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
    }
}

/// The memberships the principal acts from when it reads with `permission`:
/// every membership where its role allows it.
pub async fn acting_memberships(
    state: &AppState,
    principal: &Principal,
    permission: Permission,
) -> AppResult<Vec<MembershipId>> {
    Ok(match principal {
        Principal::User { id } => accounts::memberships_of_user(&state.db, *id)
            .await?
            .into_iter()
            .filter(|m| m.role.allows(permission))
            .map(|m| MembershipId::from_uuid(m.membership.id))
            .collect(),
        Principal::ApiKey { membership, role, .. } => {
            if role.allows(permission) {
                vec![*membership]
            } else {
                Vec::new()
            }
        }
        // An app acts from where its user or its own membership stands,
        // with the role `authz::role_in` gives it there.
        Principal::App { user: Some(user), .. } => {
            let mut out = Vec::new();
            for m in accounts::memberships_of_user(&state.db, *user).await? {
                let id = MembershipId::from_uuid(m.membership.id);
                if authz::role_in(state, principal, id)
                    .await
                    .is_ok_and(|r| r.allows(permission))
                {
                    out.push(id);
                }
            }
            out
        }
        Principal::App {
            membership: Some(own), ..
        } => match authz::role_in(state, principal, *own).await {
            Ok(role) if role.allows(permission) => vec![*own],
            _ => Vec::new(),
        },
        Principal::App { .. } => Vec::new(),
    })
}

/// Another membership's data, seen through the consents it has given the
/// principal's memberships (not revoked; validity is evaluated per request).
#[derive(Debug, Clone)]
pub struct Shared {
    pub grantor: MembershipId,
    consents: Vec<(ConsentId, MembershipId, Consent)>,
    now_ms: i64,
}

impl Shared {
    async fn load(state: &AppState, principal: &Principal, grantor: MembershipId) -> AppResult<Self> {
        let grantees = acting_memberships(state, principal, Permission::ReadData).await?;
        let rows = consents::between(&state.db, grantor, &grantees).await?;
        Ok(Shared {
            grantor,
            consents: rows
                .iter()
                .filter_map(|r| {
                    let c = consents::to_domain(r)?;
                    Some((ConsentId::from_uuid(r.id), c.grantee, c))
                })
                .collect(),
            now_ms: Utc::now().timestamp_millis(),
        })
    }

    /// The consent that permits `request` with the widest window.
    pub fn permit(&self, request: &Request<'_>) -> Result<(ConsentId, consent::Permit), Option<Denial>> {
        match consent::evaluate_any(self.consents.iter().map(|(_, _, c)| c), request, self.now_ms) {
            Some(Ok((i, permit))) => Ok((self.consents[i].0, permit)),
            Some(Err(denial)) => Err(Some(denial)),
            None => Err(None),
        }
    }

    /// The grantee membership of a consent used here.
    pub fn grantee_of(&self, id: ConsentId) -> Option<MembershipId> {
        self.consents.iter().find(|(c, _, _)| *c == id).map(|(_, g, _)| *g)
    }

    /// Every consent active now, for listings that combine them.
    pub fn active(&self) -> impl Iterator<Item = (ConsentId, &Consent)> {
        self.consents
            .iter()
            .filter(|(_, _, c)| c.state(self.now_ms) == consent::State::Active)
            .map(|(id, _, c)| (*id, c))
    }
}

/// How the principal stands toward some data.
#[derive(Debug, Clone)]
pub enum Standing {
    /// Its own membership's, with its role there.
    Own(Access),
    /// Another membership's, through consents.
    Shared(Shared),
}

/// A subject the principal may read from, and how.
pub struct SubjectRead {
    pub subject: subject::Model,
    pub standing: Standing,
    principal: Principal,
}

/// The part of `[from, to)` of `metric` the principal may read, with the
/// consent that permits it (none for one's own data).
pub struct Window {
    pub from: i64,
    pub to: i64,
    pub consent: Option<ConsentId>,
}

impl Window {
    pub fn is_empty(&self) -> bool {
        self.from >= self.to
    }
}

fn denial_text(denial: Option<Denial>, what: &str) -> String {
    match denial {
        Some(Denial::AccessTooLow) => format!("the consent for {what} allows reading, not export"),
        _ => format!("no active consent shares {what} with you"),
    }
}

impl SubjectRead {
    pub fn subject_id(&self) -> SubjectId {
        SubjectId::from_uuid(self.subject.id)
    }

    /// The consents under which the subject itself is shown.
    pub fn subject_receipt(&self) -> Receipt {
        let mut r = Receipt::default();
        if let Standing::Shared(shared) = &self.standing {
            let me = self.subject_id();
            for (id, c) in shared.active() {
                if c.subjects.contains(&me) {
                    r.add(id);
                }
            }
        }
        r
    }

    /// The window of `metric` readings in `[from, to)` the principal may
    /// read with `access`; 403 when the subject is shared but not this.
    /// A shared read, allowed or refused, is written to the grantor's audit
    /// log with the consent that permitted it.
    pub async fn readings(
        &self,
        state: &AppState,
        metric: &str,
        from: i64,
        to: i64,
        access: ConsentAccess,
    ) -> AppResult<Window> {
        let result = self.window(metric, from, to, access);
        if let Standing::Shared(shared) = &self.standing {
            let resource = format!("subject/{}/readings/{metric}", self.subject.id);
            let consent = result.as_ref().ok().and_then(|w| w.consent);
            record_shared(state, &self.principal, shared, resource, consent, result.is_ok()).await?;
        }
        result
    }

    /// Records a shared read of `what` (`summary`, `fhir`...) under the
    /// consents of `receipt`, one event per consent.
    pub async fn record(&self, state: &AppState, what: &str, receipt: &Receipt) -> AppResult<()> {
        if let Standing::Shared(shared) = &self.standing {
            for id in &receipt.0 {
                let resource = format!("subject/{}/{what}", self.subject.id);
                record_shared(state, &self.principal, shared, resource, Some(*id), true).await?;
            }
        }
        Ok(())
    }

    /// `readings` without the audit record: for callers that try every
    /// metric and record what they used once.
    pub fn window(&self, metric: &str, from: i64, to: i64, access: ConsentAccess) -> AppResult<Window> {
        match &self.standing {
            Standing::Own(_) => Ok(Window {
                from,
                to,
                consent: None,
            }),
            Standing::Shared(shared) => {
                let request = Request::Readings {
                    subject: self.subject_id(),
                    metric,
                    from,
                    to,
                    access,
                };
                match shared.permit(&request) {
                    Ok((id, permit)) => {
                        let (from, to) = permit.window.unwrap_or((from, to));
                        Ok(Window {
                            from,
                            to,
                            consent: Some(id),
                        })
                    }
                    Err(denial) => Err(AppError::Forbidden(denial_text(
                        denial,
                        &format!("{metric} readings of this subject"),
                    ))),
                }
            }
        }
    }

    /// Every metric of the catalog the principal may read in `[from, to)`,
    /// each with its window: what a summary or a FHIR view of the whole
    /// subject covers.
    pub fn readable_metrics(&self, from: i64, to: i64, access: ConsentAccess) -> Vec<(&'static str, Window)> {
        vitalfarm_domain::metrics::catalog()
            .iter()
            .filter_map(|m| {
                self.window(m.code, from, to, access)
                    .ok()
                    .filter(|w| !w.is_empty())
                    .map(|w| (m.code, w))
            })
            .collect()
    }
}

/// The subject `id` for reading: the principal's own (any role reads), or
/// another membership's shared with it by an active consent; 404 otherwise.
pub async fn subject(state: &AppState, principal: &Principal, id: SubjectId) -> AppResult<SubjectRead> {
    let subject = subjects::find(&state.db, id)
        .await?
        .ok_or(AppError::NotFound("subject"))?;
    let owner = MembershipId::from_uuid(subject.membership_id);
    if let Ok(role) = authz::role_in(state, principal, owner).await {
        if !role.allows(Permission::ReadData) {
            return Err(AppError::Forbidden(format!(
                "your role ({}) does not allow this",
                role.as_str()
            )));
        }
        return Ok(SubjectRead {
            subject,
            standing: Standing::Own(Access {
                membership: owner,
                role,
            }),
            principal: principal.clone(),
        });
    }
    let shared = Shared::load(state, principal, owner).await?;
    let resource = format!("subject/{id}");
    match shared.permit(&Request::Subject { subject: id }) {
        Ok((consent, _)) => {
            record_shared(state, principal, &shared, resource, Some(consent), true).await?;
            Ok(SubjectRead {
                subject,
                standing: Standing::Shared(shared),
                principal: principal.clone(),
            })
        }
        Err(_) => {
            record_shared(state, principal, &shared, resource, None, false).await?;
            Err(AppError::NotFound("subject"))
        }
    }
}

/// Writes a read of `shared`'s data by `principal` to the grantor's audit
/// log: `data.read`, allowed under `consent` or denied. The log is written
/// before the data is sent, so no shared read goes unrecorded.
async fn record_shared(
    state: &AppState,
    principal: &Principal,
    shared: &Shared,
    resource: String,
    consent: Option<ConsentId>,
    allowed: bool,
) -> AppResult<()> {
    let mut event = audit::Event::by(principal, shared.grantor, "data.read", resource);
    event.consent = consent;
    event.actor_membership = consent.and_then(|c| shared.grantee_of(c));
    if !allowed {
        event = event.with_outcome(audit::Outcome::Denied);
    }
    audit::record(state, event).await
}

/// What is asked of a farm.
#[derive(Debug, Clone, Copy)]
pub enum FarmAsk<'a> {
    /// A file's bytes or metadata.
    File(&'a str),
    /// A listing of a folder (`parse_dir_prefix` form).
    Listing(&'a str),
}

/// A farm the principal may read from, and how.
pub struct FarmRead {
    pub farm: farm::Model,
    pub standing: Standing,
    pub receipt: Receipt,
}

impl FarmRead {
    /// For a shared listing: whether `path` (a file, or a folder ending in
    /// `/`) lies under, or leads to, a folder an active consent shares.
    pub fn shows(&self, path: &str) -> bool {
        match &self.standing {
            Standing::Own(_) => true,
            Standing::Shared(shared) => shared.active().any(|(_, c)| {
                c.farm_paths
                    .iter()
                    .any(|p| path.starts_with(p.as_str()) || (path.ends_with('/') && p.starts_with(path)))
            }),
        }
    }
}

/// The farm `id` for reading `ask`: the principal's own, or another
/// membership's where an active consent shares the path; 404 otherwise
/// (and 403 when the farm is shared but not that path).
pub async fn farm(state: &AppState, principal: &Principal, id: FarmId, ask: FarmAsk<'_>) -> AppResult<FarmRead> {
    let farm = farms::find(&state.db, id).await?.ok_or(AppError::NotFound("farm"))?;
    let owner = MembershipId::from_uuid(farm.membership_id);
    if let Ok(role) = authz::role_in(state, principal, owner).await {
        if !role.allows(Permission::ReadData) {
            return Err(AppError::Forbidden(format!(
                "your role ({}) does not allow this",
                role.as_str()
            )));
        }
        return Ok(FarmRead {
            farm,
            standing: Standing::Own(Access {
                membership: owner,
                role,
            }),
            receipt: Receipt::default(),
        });
    }
    let shared = Shared::load(state, principal, owner).await?;
    let resource = match ask {
        FarmAsk::File(path) => format!("farm/{id}/files{path}"),
        FarmAsk::Listing(prefix) => format!("farm/{id}/list{prefix}"),
    };
    if shared.active().all(|(_, c)| c.farm_paths.is_empty()) {
        record_shared(state, principal, &shared, resource, None, false).await?;
        return Err(AppError::NotFound("farm"));
    }
    let request = match ask {
        FarmAsk::File(path) => Request::File {
            path,
            access: ConsentAccess::Read,
        },
        FarmAsk::Listing(prefix) => Request::Listing { prefix },
    };
    match shared.permit(&request) {
        Ok((consent, _)) => {
            record_shared(state, principal, &shared, resource, Some(consent), true).await?;
            let mut receipt = Receipt::default();
            receipt.add(consent);
            if let FarmAsk::Listing(_) = ask {
                for (id, c) in shared.active() {
                    if !c.farm_paths.is_empty() {
                        receipt.add(id);
                    }
                }
            }
            Ok(FarmRead {
                farm,
                standing: Standing::Shared(shared),
                receipt,
            })
        }
        Err(denial) => {
            record_shared(state, principal, &shared, resource, None, false).await?;
            Err(AppError::Forbidden(denial_text(denial, "this path")))
        }
    }
}
