//! The live stream's source: one poller per node tails the database (new
//! readings by `received_at`, new alert events by `seq`) and fans each batch
//! out to this node's stream connections through a broadcast channel; every
//! connection filters a batch by what its caller may see
//! (`routes::stream`).
//!
//! The stream reads from the database and never from an in-process signal
//! of the ingest path, so a reading stored by any node (HTTP or MQTT)
//! reaches the streams of every node. The poller starts with the first
//! stream of the node and stops once none is left.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use uuid::Uuid;
use vitalfarm_domain::MembershipId;
use vitalfarm_storage::Database;
use vitalfarm_storage::entity::{event, reading};
use vitalfarm_storage::repo::{events, stream as repo};

use crate::events::EventKind;

/// How often the poller asks the database.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// A reading's `received_at` is taken before its transaction commits, so a
/// slow transaction can make a reading appear behind the cursor. Each poll
/// therefore looks this far back again and drops the ids it has already
/// sent.
pub const OVERLAP: Duration = Duration::from_secs(5);
/// Readings per query; a full page is followed by the next at once.
const BATCH: u64 = 5000;
/// Batches a slow connection may fall behind before it is closed (the
/// client reconnects with `Last-Event-ID`).
const CHANNEL: usize = 256;
/// Skipped event sequence numbers looked for again, at most.
const MAX_GAPS: usize = 1000;
/// The events a stream shows.
pub const EVENT_KINDS: [&str; 2] = [EventKind::AlertOpened.as_str(), EventKind::AlertResolved.as_str()];

/// Where a stream stands: the arrival time (ms) of the newest reading and
/// the newest event `seq` it has passed. Its text form is the SSE `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub received_ms: i64,
    pub seq: i64,
}

impl Position {
    /// A position a stream sent as an `id`; `None` for anything else, a
    /// time no clock shows included.
    pub fn parse(s: &str) -> Option<Self> {
        let (r, q) = s.trim().split_once('.')?;
        let received_ms = r.parse().ok()?;
        DateTime::from_timestamp_millis(received_ms)?;
        Some(Self {
            received_ms,
            seq: q.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.received_ms, self.seq)
    }
}

/// One poll's new rows, for every membership.
#[derive(Debug, Default)]
pub struct Batch {
    pub readings: Vec<reading::Model>,
    pub events: Vec<event::Model>,
    pub position: Position,
}

/// This node's stream source and its count of open streams.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    tx: broadcast::Sender<Arc<Batch>>,
    running: AtomicBool,
    open: Mutex<HashMap<MembershipId, usize>>,
    /// Cuts the poller's wait short after a local ingest; only latency
    /// depends on it, other nodes' readings wait for the next poll.
    wake: tokio::sync::Notify,
}

/// An open stream's place in the per-membership count; dropping it frees
/// the place.
pub struct Slot {
    inner: Arc<Inner>,
    membership: MembershipId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.inner.open.lock()
            && let Some(n) = open.get_mut(&self.membership)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.membership);
            }
        }
    }
}

impl Hub {
    pub fn new(db: Database) -> Self {
        let (tx, _) = broadcast::channel(CHANNEL);
        Self {
            inner: Arc::new(Inner {
                db,
                tx,
                running: AtomicBool::new(false),
                open: Mutex::new(HashMap::new()),
                wake: tokio::sync::Notify::new(),
            }),
        }
    }

    /// A place for one more stream of `membership`, unless it has `max`
    /// open on this node already. The limit protects this node's
    /// connections; it is per node, like the connections themselves.
    pub fn admit(&self, membership: MembershipId, max: usize) -> Option<Slot> {
        let mut open = self.inner.open.lock().ok()?;
        let n = open.entry(membership).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            inner: self.inner.clone(),
            membership,
        })
    }

    /// Asks the poller to look now (readings were just stored here).
    pub fn wake(&self) {
        if self.inner.running.load(Ordering::Acquire) {
            self.inner.wake.notify_one();
        }
    }

    /// A receiver of every batch from now on, and the position the stream
    /// starts at; starts the poller when it is not running.
    pub async fn subscribe(
        &self,
    ) -> Result<(broadcast::Receiver<Arc<Batch>>, Position), vitalfarm_storage::StorageError> {
        let rx = self.inner.tx.subscribe();
        let start = Position {
            received_ms: Utc::now().timestamp_millis(),
            seq: events::last_seq(&self.inner.db).await?,
        };
        if !self.inner.running.swap(true, Ordering::AcqRel) {
            tokio::spawn(poll(self.inner.clone(), start));
        }
        Ok((rx, start))
    }
}

/// The poller: reads what arrived since its cursor, drops what it sent
/// already, and broadcasts the rest; stops when no stream listens.
async fn poll(inner: Arc<Inner>, start: Position) {
    tracing::debug!("stream poller started");
    let Some(floor) = DateTime::from_timestamp_millis(start.received_ms) else {
        // `subscribe` takes the start from the clock, so this is a bug:
        // said, rather than streaming from some other time.
        tracing::error!(
            received_ms = start.received_ms,
            "stream poller: start time out of range"
        );
        inner.running.store(false, Ordering::Release);
        return;
    };
    let mut cursor = floor;
    let mut sent: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    let mut seq = start.seq;
    // Sequence numbers passed over: a transaction that took one may still
    // commit. Looked for again until they are older than the overlap.
    let mut gaps: Vec<(i64, Instant)> = Vec::new();
    let mut position = start;
    let overlap = chrono::Duration::from_std(OVERLAP).unwrap_or_default();
    loop {
        if inner.tx.receiver_count() == 0 {
            inner.running.store(false, Ordering::Release);
            // A stream may have subscribed between the check and the store
            // and seen the poller as running: keep going for it.
            if inner.tx.receiver_count() == 0 || inner.running.swap(true, Ordering::AcqRel) {
                break;
            }
        }
        let since = (cursor - overlap).max(floor);
        let mut batch = Batch::default();
        sent.retain(|_, at| *at >= since);
        let mut page: Option<(DateTime<Utc>, Uuid)> = None;
        loop {
            match repo::readings_received_since(&inner.db, since, page, BATCH).await {
                Ok(rows) => {
                    let full = rows.len() as u64 == BATCH;
                    page = rows.last().map(|r| (r.received_at, r.id));
                    for r in rows {
                        cursor = cursor.max(r.received_at);
                        if sent.insert(r.id, r.received_at).is_none() {
                            batch.readings.push(r);
                        }
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stream poller could not read readings");
                    break;
                }
            }
        }
        gaps.retain(|(_, at)| at.elapsed() < OVERLAP);
        let also: Vec<i64> = gaps.iter().map(|(s, _)| *s).collect();
        match repo::events_after(&inner.db, seq, &also, &EVENT_KINDS, 1000).await {
            Ok(rows) => {
                for e in rows {
                    gaps.retain(|(s, _)| *s != e.seq);
                    if e.seq > seq {
                        let now = Instant::now();
                        gaps.extend((seq + 1..e.seq).take(MAX_GAPS).map(|s| (s, now)));
                        let excess = gaps.len().saturating_sub(MAX_GAPS);
                        gaps.drain(..excess);
                        seq = e.seq;
                    }
                    batch.events.push(e);
                }
            }
            Err(e) => tracing::warn!(error = %e, "stream poller could not read events"),
        }
        position = Position {
            received_ms: position.received_ms.max(cursor.timestamp_millis()),
            seq: position.seq.max(seq),
        };
        if !batch.readings.is_empty() || !batch.events.is_empty() {
            batch.position = position;
            // No receiver left is the only error; the loop's check ends it.
            let _ = inner.tx.send(Arc::new(batch));
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_EVERY) => {}
            () = inner.wake.notified() => {}
        }
    }
    tracing::debug!("stream poller stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_takes_only_positions_a_stream_could_send() {
        let p = Position {
            received_ms: 1_795_000_000_123,
            seq: 42,
        };
        assert_eq!(Position::parse(&p.to_string()), Some(p));
        assert_eq!(Position::parse(&format!("{}.1", i64::MAX)), None);
        assert_eq!(Position::parse("1795000000123"), None);
    }
}
