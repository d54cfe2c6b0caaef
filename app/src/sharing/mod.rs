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
//!
//! Reads that are not one request ask here too: the live stream
//! (`Received`), cohort aggregates (`cohort_shares`), the export archive
//! (`export_grants`), the elderly watch (`care_subjects`), alert rules when
//! created (`watchable`) and when evaluated (`Given`). This is the only
//! file that decides what a consent permits; elsewhere consents are only
//! listed and shown.

pub mod given;

pub use given::Given;

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use uuid::Uuid;
use vitalfarm_domain::consent::{self, Access as ConsentAccess, Consent, Denial, Purpose, Request};
use vitalfarm_domain::{ConsentId, FarmId, MembershipId, Permission, SubjectId};
use vitalfarm_storage::entity::{farm, subject};
use vitalfarm_storage::repo::{accounts, cohort as cohort_repo, consents, farms, subjects};
use vitalfarm_storage::{Database, StorageError};

use crate::audit;
use crate::authz::{self, Access, Claimed};
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

/// The principal's access to `owner`'s data as one of its own members
/// (any role reads; 403 for one that does not), or `None` when it has no
/// standing there and can read only through consents.
async fn own(state: &AppState, principal: &Principal, owner: MembershipId) -> AppResult<Option<Access>> {
    match authz::authorize(state, principal, Claimed::new(owner), Permission::ReadData).await {
        Ok(access) => Ok(Some(access)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The subject `id` a client claims, for reading: the principal's own (any
/// role reads), or another membership's shared with it by an active
/// consent; 404 otherwise.
pub async fn subject(state: &AppState, principal: &Principal, id: Claimed<SubjectId>) -> AppResult<SubjectRead> {
    let subject = subjects::find(&state.db, id.to_decide())
        .await?
        .ok_or(AppError::NotFound("subject"))?;
    let id = SubjectId::from_uuid(subject.id);
    let owner = MembershipId::from_uuid(subject.membership_id);
    if let Some(access) = own(state, principal, owner).await? {
        return Ok(SubjectRead {
            subject,
            standing: Standing::Own(access),
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

/// The farm `id` a client claims, for reading `ask`: the principal's own, or another
/// membership's where an active consent shares the path; 404 otherwise
/// (and 403 when the farm is shared but not that path).
pub async fn farm(
    state: &AppState,
    principal: &Principal,
    id: Claimed<FarmId>,
    ask: FarmAsk<'_>,
) -> AppResult<FarmRead> {
    let farm = farms::find(&state.db, id.to_decide())
        .await?
        .ok_or(AppError::NotFound("farm"))?;
    let id = FarmId::from_uuid(farm.id);
    let owner = MembershipId::from_uuid(farm.membership_id);
    if let Some(access) = own(state, principal, owner).await? {
        return Ok(FarmRead {
            farm,
            standing: Standing::Own(access),
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

/// The consents given to one membership that are active at one moment:
/// what a grantee's continuous read (the live stream) judges each reading
/// of another membership by. Loaded afresh to see revocations.
#[derive(Debug, Clone, Default)]
pub struct Received {
    consents: Vec<(ConsentId, Consent)>,
    now_ms: i64,
}

impl Received {
    /// The consents given to the membership of `grantee`, active now.
    pub async fn load(db: &Database, grantee: &Access) -> Result<Self, StorageError> {
        let now_ms = Utc::now().timestamp_millis();
        let rows = consents::live_for_grantees(db, &[grantee.membership()], now_ms).await?;
        Ok(Received {
            consents: rows
                .iter()
                .filter_map(|r| Some((ConsentId::from_uuid(r.id), consents::to_domain(r)?)))
                .filter(|(_, c)| c.state(now_ms) == consent::State::Active)
                .collect(),
            now_ms,
        })
    }

    /// The consents' ids, to tell which started or ended between loads.
    pub fn ids(&self) -> HashSet<ConsentId> {
        self.consents.iter().map(|(id, _)| *id).collect()
    }

    /// The membership that gave consent `id`, if it is one of these.
    pub fn grantor_of(&self, id: ConsentId) -> Option<MembershipId> {
        self.consents.iter().find(|(c, _)| *c == id).map(|(_, c)| c.grantor)
    }

    /// Whether any of these consents comes from `grantor`.
    pub fn shares_from(&self, grantor: MembershipId) -> bool {
        self.consents.iter().any(|(_, c)| c.grantor == grantor)
    }

    /// The consent under which a reading of `owner`'s `subject` (`metric`,
    /// measured at `ts_ms`) may be read: the one with the widest window, as
    /// for a request; `None` when none shares it.
    pub fn reading(&self, owner: MembershipId, subject: SubjectId, metric: &str, ts_ms: i64) -> Option<ConsentId> {
        let from: Vec<&(ConsentId, Consent)> = self.consents.iter().filter(|(_, c)| c.grantor == owner).collect();
        if from.is_empty() {
            return None;
        }
        let request = Request::Readings {
            subject,
            metric,
            from: ts_ms,
            to: ts_ms.saturating_add(1),
            access: ConsentAccess::Read,
        };
        match consent::evaluate_any(from.iter().map(|(_, c)| c), &request, self.now_ms) {
            Some(Ok((i, _))) => Some(from[i].0),
            _ => None,
        }
    }
}

/// A subject another membership shares for a cohort aggregate, with the
/// part of the period read and the consent that permits it.
pub struct CohortShare {
    pub subject: subject::Model,
    pub from: i64,
    pub to: i64,
    pub consent: ConsentId,
    pub grantor: MembershipId,
}

/// The subjects shared with the membership of `grantee` by active consents
/// covering `metric`, each with the consent that gives the widest window of
/// `[from, to)` (evaluated exactly like a single shared read). Subjects
/// whose consents cover only other metrics, or none of the period, are left
/// out; so are subjects outside `only`, when given, and subjects their
/// grantor no longer owns.
pub async fn cohort_shares(
    db: &Database,
    grantee: &Access,
    metric: &str,
    (from, to): (i64, i64),
    only: Option<&HashSet<Uuid>>,
) -> Result<Vec<CohortShare>, StorageError> {
    let grantee = grantee.membership();
    let now = Utc::now().timestamp_millis();
    let rows = consents::live_for_grantees(db, &[grantee], now).await?;
    let mut by_grantor: BTreeMap<MembershipId, Vec<(ConsentId, Consent)>> = BTreeMap::new();
    for row in &rows {
        if let Some(c) = consents::to_domain(row)
            && c.grantor != grantee
            && c.state(now) == consent::State::Active
        {
            by_grantor
                .entry(c.grantor)
                .or_default()
                .push((ConsentId::from_uuid(row.id), c));
        }
    }
    let mut out = Vec::new();
    for (grantor, list) in by_grantor {
        let wanted: Vec<Uuid> = list
            .iter()
            .flat_map(|(_, c)| c.subjects.iter().map(|s| s.as_uuid()))
            .filter(|s| only.is_none_or(|o| o.contains(s)))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for subject in cohort_repo::subjects_of(db, grantor, &wanted).await? {
            let request = Request::Readings {
                subject: SubjectId::from_uuid(subject.id),
                metric,
                from,
                to,
                access: ConsentAccess::Read,
            };
            if let Some(Ok((i, permit))) = consent::evaluate_any(list.iter().map(|(_, c)| c), &request, now) {
                let (lo, hi) = permit.window.unwrap_or((from, to));
                if lo < hi {
                    out.push(CohortShare {
                        subject,
                        from: lo,
                        to: hi,
                        consent: list[i].0,
                        grantor,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A consent in force that lets its grantee export what it shares
/// (access `read_export`), for the grantee's export archive.
pub struct ExportGrant {
    pub id: ConsentId,
    pub grantor: MembershipId,
    consent: Consent,
    now_ms: i64,
}

impl ExportGrant {
    /// The subjects it names.
    pub fn subjects(&self) -> impl Iterator<Item = SubjectId> + '_ {
        self.consent.subjects.iter().copied()
    }

    /// Whether a reading of `subject`'s `metric` measured at `ts_ms` may be
    /// exported under it (its metrics and its data period).
    pub fn permits(&self, subject: SubjectId, metric: &str, ts_ms: i64) -> bool {
        let request = Request::Readings {
            subject,
            metric,
            from: ts_ms,
            to: ts_ms.saturating_add(1),
            access: ConsentAccess::ReadExport,
        };
        consent::evaluate(&self.consent, &request, self.now_ms).is_ok_and(|p| p.window.is_none_or(|(f, t)| f < t))
    }
}

/// The consents given to `grantee` that allow export and are in force at
/// `now_ms`, oldest first.
pub async fn export_grants(
    db: &Database,
    grantee: MembershipId,
    now_ms: i64,
) -> Result<Vec<ExportGrant>, StorageError> {
    let rows = consents::live_for_grantees(db, &[grantee], now_ms).await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let c = consents::to_domain(row)?;
            (c.access == ConsentAccess::ReadExport && c.state(now_ms) == consent::State::Active).then(|| ExportGrant {
                id: ConsentId::from_uuid(row.id),
                grantor: c.grantor,
                consent: c,
                now_ms,
            })
        })
        .collect())
}

/// The subjects shared with `grantee` at `now_ms` by active consents for
/// the purpose `care`, in the consents' order (a subject two consents
/// share comes twice).
pub async fn care_subjects(db: &Database, grantee: MembershipId, now_ms: i64) -> Result<Vec<SubjectId>, StorageError> {
    let mut out = Vec::new();
    for row in consents::live_for_grantees(db, &[grantee], now_ms).await? {
        let Some(c) = consents::to_domain(&row) else { continue };
        if c.purpose != Purpose::Care || c.state(now_ms) != consent::State::Active {
            continue;
        }
        out.extend(c.subjects);
    }
    Ok(out)
}

/// Whether the membership of `watcher` may watch `subject` with an alert
/// rule on `metric`: its own subject, or one shared with it now by an
/// active consent covering the metric (over any period); with no metric,
/// one such a consent shares at all. A subject that does not exist is not.
pub async fn watchable(state: &AppState, watcher: &Access, subject: Uuid, metric: Option<&str>) -> AppResult<bool> {
    let Some(row) = subjects::find(&state.db, SubjectId::from_uuid(subject)).await? else {
        return Ok(false);
    };
    let mid = watcher.membership();
    if row.membership_id == mid.as_uuid() {
        return Ok(true);
    }
    let now = Utc::now().timestamp_millis();
    let grantor = MembershipId::from_uuid(row.membership_id);
    let sid = SubjectId::from_uuid(subject);
    let request = match metric {
        Some(metric) => Request::Readings {
            subject: sid,
            metric,
            from: i64::MIN,
            to: i64::MAX,
            access: ConsentAccess::Read,
        },
        None => Request::Subject { subject: sid },
    };
    Ok(consents::between(&state.db, grantor, &[mid])
        .await?
        .iter()
        .filter_map(consents::to_domain)
        .any(|c| consent::evaluate(&c, &request, now).is_ok()))
}

/// The window of `metric` of `subject` that `consent` lets its grantee
/// read at `now_ms` (the consent's data period, clipped as a shared read
/// is); `None` when it lets nothing be read. For a consent not yet given:
/// the consent preview shows what approving would share.
pub fn window_under(consent: &Consent, subject: SubjectId, metric: &str, now_ms: i64) -> Option<(i64, i64)> {
    let request = Request::Readings {
        subject,
        metric,
        from: i64::MIN,
        to: i64::MAX,
        access: ConsentAccess::Read,
    };
    let permit = consent::evaluate(consent, &request, now_ms).ok()?;
    Some(permit.window.unwrap_or((i64::MIN, i64::MAX)))
}
