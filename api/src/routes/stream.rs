//! The live stream: `GET /v1/memberships/{mid}/stream` sends, as
//! Server-Sent Events, the readings and alerts the caller may see in
//! `{mid}` as they arrive: the membership's own subjects' readings, and the
//! readings other memberships share with it through active consents (only
//! the metrics and measurement times each consent covers), plus its
//! `alert.opened` / `alert.resolved` events.
//!
//! Consents are evaluated continuously: every second, and again before any
//! batch that holds another membership's readings, the consents given to
//! `{mid}` are read afresh, so a revocation stops that data from the next
//! batch on and a new consent starts without reconnecting; both are
//! announced (`consent.revoked`, `consent.granted`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use utoipa::IntoParams;
use uuid::Uuid;
use vitalfarm_domain::{ConsentId, MembershipId, Permission, SubjectId};
use vitalfarm_openapi::doc::{ForbiddenResponse, RateLimitedResponse};
use vitalfarm_openapi::stream::{StreamAlert, StreamConsent, StreamEvent, StreamReading};
use vitalfarm_storage::entity::{event, reading};
use vitalfarm_storage::repo::{api_keys, events, oauth, stream as repo};

use super::RouteSet;
use crate::error::{ApiError, ApiResult, AppError, AppResult};
use crate::extract::{Auth, PathMembershipId, Query};
use vitalfarm_app::audit;
use vitalfarm_app::authz::{self, Access, Claimed};
use vitalfarm_app::principal::Principal;
use vitalfarm_app::sharing::Received;
use vitalfarm_app::state::AppState;
use vitalfarm_app::stream::{Batch, EVENT_KINDS, Position, Slot};
use vitalfarm_app::views::ms_to_time;

pub fn routes(r: &mut RouteSet) {
    r.add(Method::GET, "/v1/memberships/{mid}/stream", stream);
}

/// How often the visible set (role, consents) is checked again.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// A comment line that keeps proxies from closing an idle stream.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);
/// A stream's shared reads are audited once when it starts sending a
/// consent's data and then at most once per this long per consent, not
/// per reading: a device sends a reading every few seconds, and one audit
/// row each would bury the grantor's log (and its hash chain) under rows
/// that say nothing new. The grantor still sees, per consent, that the
/// stream read under it and until about when.
const AUDIT_EVERY: Duration = Duration::from_secs(10 * 60);
/// Most readings or events replayed for `Last-Event-ID`.
const RESUME_MAX: u64 = 1000;
/// Longest `max_seconds`: one day.
const MAX_SECONDS: u64 = 86_400;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Ends the stream after this many seconds (1 to 86400); without it
    /// the stream runs until the client leaves or the token expires.
    #[param(minimum = 1, maximum = 86400)]
    pub max_seconds: Option<u64>,
}

/// A live stream (Server-Sent Events) of the readings and alerts the
/// caller may see in the membership.
///
/// Each event has an `id` (a cursor: send it back as `Last-Event-ID` when
/// reconnecting to receive what arrived meanwhile, best effort), an `event`
/// name and one line of JSON `data`:
///
/// - `reading`: a reading of one of the membership's subjects, or of
///   another membership's subject shared with it by an active consent
///   (with `consent_id`), shaped as in `GET /v1/subjects/{sid}/readings`;
/// - `alert`: an `alert.opened` or `alert.resolved` event;
/// - `consent.granted` / `consent.revoked`: a consent under which the
///   stream shows data became active or ended.
///
/// A `: keep-alive` comment comes every 15 seconds. The stream ends when
/// the access token expires, when the caller loses access to the
/// membership, after `max_seconds`, or when the client falls too far
/// behind. A membership may hold a limited number of streams open per
/// server (429 beyond).
#[utoipa::path(get, path = "/v1/memberships/{mid}/stream", tag = "stream",
    params(
        ("mid" = Uuid, Path, description = "Membership id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received, to resume after it."),
        StreamQuery,
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The event stream; each `data:` line is one of the payloads below, named by the `event:` line.",
            content_type = "text/event-stream", body = StreamEvent),
        (status = 403, response = ForbiddenResponse),
        (status = 429, response = RateLimitedResponse),
    ))]
pub async fn stream(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    mid: PathMembershipId,
    Query(q): Query<StreamQuery>,
) -> ApiResult<HttpResponse> {
    if let Some(s) = q.max_seconds
        && !(1..=MAX_SECONDS).contains(&s)
    {
        return Err((AppError::InvalidParameter {
            field: "max_seconds".into(),
            message: "must be between 1 and 86400".into(),
        })
        .into());
    }
    let resume = match req.headers().get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(Position::parse)
                .ok_or_else(|| AppError::InvalidParameter {
                    field: "Last-Event-ID".into(),
                    message: "must be an `id` this stream sent".into(),
                })?,
        ),
        None => None,
    };
    let access = authz::authorize(&state, &auth.0, mid.0, Permission::ReadData).await?;
    let mid = access.membership();
    let slot = state
        .stream
        .admit(mid, state.config.stream_max_per_membership)
        .ok_or(AppError::RateLimited { retry_after_secs: 5 })?;
    let now = Instant::now();
    let mut ends = q.max_seconds.map(|s| now + Duration::from_secs(s));
    if let Some(exp) = token_expiry(&state, &req) {
        let left = Duration::from_secs(u64::try_from(exp - Utc::now().timestamp()).unwrap_or(0));
        ends = Some(ends.map_or(now + left, |e| e.min(now + left)));
    }
    let (rx, start) = state.stream.subscribe().await?;
    let (tx, out) = mpsc::channel::<Bytes>(64);
    let conn = Connection {
        state: state.clone(),
        principal: auth.0,
        access,
        view: Received::default(),
        audited: HashMap::new(),
        position: resume.unwrap_or(start),
        replayed: HashSet::new(),
        replayed_seq: 0,
        out: tx,
    };
    tokio::spawn(conn.run(rx, resume, ends, slot));
    tracing::info!(membership = %mid, "stream opened");
    let body = futures_util::stream::unfold(out, |mut out| async move {
        out.recv().await.map(|b| (Ok::<_, Infallible>(b), out))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// When the caller's access token expires (`exp`, seconds); none for an
/// API key, which has no lifetime within a request.
fn token_expiry(state: &AppState, req: &HttpRequest) -> Option<i64> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    if token.starts_with("vf_key_") {
        return None;
    }
    state.jwt.verify(token).map(|c| c.exp)
}

/// One open stream.
struct Connection {
    state: web::Data<AppState>,
    principal: Principal,
    /// The caller's access to the membership, checked again every tick.
    access: Access,
    /// The consents given to it, as of the last check (decided in
    /// `sharing`).
    view: Received,
    /// When each consent's reads were last written to the grantor's log.
    audited: HashMap<ConsentId, Instant>,
    position: Position,
    /// What a resume replayed, so that the live batches do not send it
    /// again: reading ids, and the newest event `seq`.
    replayed: HashSet<Uuid>,
    replayed_seq: i64,
    out: mpsc::Sender<Bytes>,
}

/// The stream stops: the client left, the time is up, access ended or
/// the database failed.
struct Stop;

impl From<AppError> for Stop {
    fn from(e: AppError) -> Self {
        Stop::from(ApiError(e))
    }
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        if let ApiError(AppError::Internal(cause)) = &e {
            tracing::warn!(error = %cause, "stream stopped on an internal error");
        }
        Stop
    }
}

impl Connection {
    async fn run(
        mut self,
        mut rx: broadcast::Receiver<Arc<Batch>>,
        resume: Option<Position>,
        ends: Option<Instant>,
        slot: Slot,
    ) {
        let _slot = slot;
        let _ = self.serve(&mut rx, resume, ends).await;
        tracing::info!(membership = %self.access.membership(), "stream closed");
    }

    async fn serve(
        &mut self,
        rx: &mut broadcast::Receiver<Arc<Batch>>,
        resume: Option<Position>,
        ends: Option<Instant>,
    ) -> Result<(), Stop> {
        // The first view is announced only by what it shows: a client
        // knows what it was granted when it connected.
        self.view = Received::load(&self.state.db, &self.access)
            .await
            .map_err(AppError::from)?;
        self.send(Bytes::from_static(b": stream open\n\n")).await?;
        if let Some(from) = resume {
            self.replay(from).await?;
        }
        let mut refresh = tokio::time::interval(REFRESH_EVERY);
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE_EVERY);
        keep_alive.reset();
        let deadline = async {
            match ends {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return Err(Stop),
                () = self.out.closed() => return Err(Stop),
                _ = refresh.tick() => self.refresh().await?,
                _ = keep_alive.tick() => self.send(Bytes::from_static(b": keep-alive\n\n")).await?,
                msg = rx.recv() => match msg {
                    Ok(batch) => self.live(&batch).await?,
                    // Fell behind the poller: the client resumes with the
                    // last id it got.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => {
                        return Err(Stop);
                    }
                },
            }
        }
    }

    /// Checks the caller's access again and the consents, announcing the
    /// consents that started or ended.
    async fn refresh(&mut self) -> Result<(), Stop> {
        // Erasure of the membership, removal of the member or a lower role
        // ends the stream.
        let mid = Claimed::new(self.access.membership());
        self.access = authz::authorize(&self.state, &self.principal, mid, Permission::ReadData).await?;
        // The credential itself: a revoked or expired API key, or a revoked
        // app authorization, ends the stream as it ends the next request.
        // (An access token is checked once; its `exp` ends the stream.)
        let live = match &self.principal {
            Principal::ApiKey { id, membership, .. } => api_keys::find_in(&self.state.db, *membership, *id)
                .await
                .map_err(ApiError::from)?
                .is_some_and(|k| k.expires_at.is_none_or(|e| e > Utc::now())),
            Principal::App { grant: Some(grant), .. } => oauth::find_live_grant(&self.state.db, *grant)
                .await
                .map_err(ApiError::from)?
                .is_some(),
            _ => true,
        };
        if !live {
            return Err(Stop);
        }
        self.reload().await
    }

    async fn reload(&mut self) -> Result<(), Stop> {
        let old = std::mem::take(&mut self.view);
        self.view = Received::load(&self.state.db, &self.access)
            .await
            .map_err(AppError::from)?;
        let (before, after) = (old.ids(), self.view.ids());
        for id in before.difference(&after) {
            if let Some(grantor) = old.grantor_of(*id) {
                self.audited.remove(id);
                self.event("consent.revoked", &StreamEvent::Consent(consent_body(*id, grantor)))
                    .await?;
            }
        }
        for id in after.difference(&before) {
            if let Some(grantor) = self.view.grantor_of(*id) {
                self.event("consent.granted", &StreamEvent::Consent(consent_body(*id, grantor)))
                    .await?;
            }
        }
        Ok(())
    }

    /// What arrived after `from`, best effort: readings received after its
    /// time and the membership's events after its `seq`.
    async fn replay(&mut self, from: Position) -> Result<(), Stop> {
        let since = ms_to_time(from.received_ms.saturating_add(1))?;
        let readings = repo::readings_received_since(&self.state.db, since, None, RESUME_MAX)
            .await
            .map_err(ApiError::from)?;
        let evs = events::after(
            &self.state.db,
            self.access.membership(),
            from.seq,
            &EVENT_KINDS,
            RESUME_MAX,
        )
        .await
        .map_err(ApiError::from)?;
        let position = Position {
            received_ms: readings
                .last()
                .map_or(from.received_ms, |r| r.received_at.timestamp_millis()),
            seq: evs.last().map_or(from.seq, |e| e.seq),
        };
        self.deliver(&readings, &evs, Some(position)).await?;
        self.replayed = readings.iter().map(|r| r.id).collect();
        self.replayed_seq = position.seq;
        Ok(())
    }

    /// A batch of the poller, less what a resume replayed already.
    async fn live(&mut self, batch: &Batch) -> Result<(), Stop> {
        if self.replayed.is_empty() && self.replayed_seq == 0 {
            return self.deliver(&batch.readings, &batch.events, Some(batch.position)).await;
        }
        let readings: Vec<reading::Model> = batch
            .readings
            .iter()
            .filter(|r| !self.replayed.contains(&r.id))
            .cloned()
            .collect();
        let evs: Vec<event::Model> = batch
            .events
            .iter()
            .filter(|e| e.seq > self.replayed_seq)
            .cloned()
            .collect();
        self.deliver(&readings, &evs, Some(batch.position)).await
    }

    /// Sends what of a batch the caller may see.
    async fn deliver(
        &mut self,
        readings: &[reading::Model],
        evs: &[event::Model],
        position: Option<Position>,
    ) -> Result<(), Stop> {
        if let Some(p) = position {
            self.position = Position {
                received_ms: self.position.received_ms.max(p.received_ms),
                seq: self.position.seq.max(p.seq),
            };
        }
        let own = self.access.membership().as_uuid();
        let shared = readings
            .iter()
            .any(|r| r.membership_id != own && self.view.shares_from(MembershipId::from_uuid(r.membership_id)));
        // Shared readings are judged by the consents as they are now, not
        // as they were at the last tick: a revocation that committed before
        // these readings were stored is already in force. (A new consent
        // is picked up by the next tick.)
        if shared {
            self.reload().await?;
        }
        let mut shown: Vec<(&reading::Model, Option<ConsentId>)> = Vec::new();
        for r in readings {
            if r.membership_id == own {
                shown.push((r, None));
            } else if let Some(c) = self.view.reading(
                MembershipId::from_uuid(r.membership_id),
                SubjectId::from_uuid(r.subject_id),
                &r.metric,
                r.ts_ms,
            ) {
                shown.push((r, Some(c)));
            }
        }
        let used: Vec<ConsentId> = {
            let mut v: Vec<ConsentId> = shown.iter().filter_map(|(_, c)| *c).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        for c in used {
            self.audit(c).await?;
        }
        for body in group(&shown)? {
            self.event("reading", &StreamEvent::Reading(body)).await?;
        }
        for e in evs.iter().filter(|e| e.membership_id == own) {
            let data = serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null);
            let body = StreamAlert {
                id: e.id,
                kind: e.kind.clone(),
                subject_id: e.subject_id,
                created_at: e.created_at,
                data,
            };
            self.event("alert", &StreamEvent::Alert(body)).await?;
        }
        Ok(())
    }

    /// Writes `data.read` under `consent` to the grantor's log unless it
    /// was written for this stream within `AUDIT_EVERY`; before the data
    /// is sent, as every shared read.
    async fn audit(&mut self, consent: ConsentId) -> Result<(), Stop> {
        if self.audited.get(&consent).is_some_and(|t| t.elapsed() < AUDIT_EVERY) {
            return Ok(());
        }
        let Some(grantor) = self.view.grantor_of(consent) else {
            return Ok(());
        };
        let mid = self.access.membership();
        let mut event = audit::Event::by(&self.principal, grantor, "data.read", format!("stream/{mid}"));
        event.consent = Some(consent);
        event.actor_membership = Some(mid);
        audit::record(&self.state, event).await?;
        self.audited.insert(consent, Instant::now());
        Ok(())
    }

    async fn event<T: Serialize>(&self, name: &str, body: &T) -> Result<(), Stop> {
        let data = serde_json::to_string(body).map_err(|_| Stop)?;
        let frame = format!("id: {}\nevent: {name}\ndata: {data}\n\n", self.position);
        self.send(Bytes::from(frame)).await
    }

    async fn send(&self, bytes: Bytes) -> Result<(), Stop> {
        self.out.send(bytes).await.map_err(|_| Stop)
    }
}

fn consent_body(id: ConsentId, grantor: MembershipId) -> StreamConsent {
    StreamConsent {
        consent_id: id.as_uuid(),
        grantor_membership_id: grantor.as_uuid(),
    }
}

/// Readings as `GET /v1/subjects/{sid}/readings` shows them: the rows of
/// one multi-component reading (same subject, device, metric and time)
/// become one, with `components`.
fn group(rows: &[(&reading::Model, Option<ConsentId>)]) -> AppResult<Vec<StreamReading>> {
    let mut out: Vec<StreamReading> = Vec::new();
    let mut index: HashMap<(Uuid, Option<Uuid>, &str, i64), usize> = HashMap::new();
    for (r, consent) in rows {
        let key = (r.subject_id, r.device_id, r.metric.as_str(), r.ts_ms);
        if !r.component.is_empty()
            && let Some(&i) = index.get(&key)
        {
            out[i]
                .components
                .get_or_insert_with(BTreeMap::new)
                .insert(r.component.clone(), r.value);
            continue;
        }
        let (value, components) = if r.component.is_empty() {
            (Some(r.value), None)
        } else {
            (None, Some(BTreeMap::from([(r.component.clone(), r.value)])))
        };
        index.insert(key, out.len());
        out.push(StreamReading {
            subject_id: r.subject_id,
            device_id: r.device_id,
            metric: r.metric.clone(),
            ts: ms_to_time(r.ts_ms)?,
            value,
            components,
            unit: r.unit.clone(),
            source: r.source.clone(),
            consent_id: consent.map(|c| c.as_uuid()),
        });
    }
    Ok(out)
}
