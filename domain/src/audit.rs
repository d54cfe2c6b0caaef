//! The audit log's hash chain. Each membership has its own append-only
//! sequence of events; every event's hash covers the previous event's hash
//! and an unambiguous encoding of all its own fields, so changing, removing
//! or reordering any stored event breaks the chain at that point.
//!
//! The encoding is length-prefixed rather than, say, JSON: two different
//! events can never encode to the same bytes, whatever their text contains.
//! What a chain cannot show by itself is the loss of its newest events (or
//! of all of them): so every append also records the chain's head (its
//! newest seq and hash) apart from the events, and [`Verifier::finish`]
//! checks the chain ends where its head says.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ids::{AuditEventId, ConsentId, MembershipId};

/// The `prev_hash` of a membership's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Bumped if the encoding ever changes, so old and new hashes cannot meet.
const ENCODING_TAG: &[u8] = b"vitalfarm.audit.v1";

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    User,
    ApiKey,
    App,
    Device,
    Anonymous,
    System,
}

impl ActorKind {
    pub const ALL: [ActorKind; 6] = [
        ActorKind::User,
        ActorKind::ApiKey,
        ActorKind::App,
        ActorKind::Device,
        ActorKind::Anonymous,
        ActorKind::System,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiKey => "api_key",
            ActorKind::App => "app",
            ActorKind::Device => "device",
            ActorKind::Anonymous => "anonymous",
            ActorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How the attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allowed,
    Denied,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Allowed, Outcome::Denied, Outcome::Failed];

    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One audit event as it is stored. The text columns are kept as the stored
/// text (not parsed into `ActorKind` or `Outcome`), so a tampered row is still
/// an event whose hash can be checked rather than one that fails to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub membership: MembershipId,
    pub seq: i64,
    pub at_ms: i64,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_membership: Option<MembershipId>,
    pub action: String,
    pub resource: String,
    pub consent: Option<ConsentId>,
    pub outcome: String,
    /// A small JSON object of ids and counts.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_uuid(out: &mut Vec<u8>, id: Option<Uuid>) {
    match id {
        // A presence byte keeps "absent" apart from any 16-byte value.
        None => out.push(0),
        Some(id) => {
            out.push(1);
            put_bytes(out, id.as_bytes());
        }
    }
}

/// The bytes the hash covers: every field but the two hashes, in a fixed
/// order, each with its length in front.
pub fn canonical(e: &AuditEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + e.resource.len() + e.detail.len());
    put_bytes(&mut out, ENCODING_TAG);
    put_uuid(&mut out, Some(e.id.as_uuid()));
    put_uuid(&mut out, Some(e.membership.as_uuid()));
    put_bytes(&mut out, &e.seq.to_be_bytes());
    put_bytes(&mut out, &e.at_ms.to_be_bytes());
    put_bytes(&mut out, e.actor_kind.as_bytes());
    put_uuid(&mut out, e.actor_id);
    put_uuid(&mut out, e.actor_membership.map(|m| m.as_uuid()));
    put_bytes(&mut out, e.action.as_bytes());
    put_bytes(&mut out, e.resource.as_bytes());
    put_uuid(&mut out, e.consent.map(|c| c.as_uuid()));
    put_bytes(&mut out, e.outcome.as_bytes());
    put_bytes(&mut out, e.detail.as_bytes());
    out
}

/// `SHA-256(prev_hash || canonical(event))` in lowercase hex, where
/// `prev_hash` is the previous event's hash as its 64 hex characters.
pub fn chain_hash(prev_hash: &str, e: &AuditEvent) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical(e));
    hex::encode(h.finalize())
}

/// Fills in `prev_hash` and `hash` of the event that follows `prev_hash`.
pub fn seal(mut e: AuditEvent, prev_hash: &str) -> AuditEvent {
    e.prev_hash = prev_hash.to_owned();
    e.hash = chain_hash(prev_hash, &e);
    e
}

/// Why the chain is broken at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakReason {
    /// The event's `seq` is not the one after the previous event's: events
    /// are missing (or were renumbered) before it.
    SeqGap,
    /// Its `prev_hash` is not the previous event's hash.
    PrevMismatch,
    /// Its own fields do not hash to its `hash`: the event was altered.
    HashMismatch,
    /// The chain ends before the newest event its recorded head names (or
    /// ends on another event): events were removed from its end, or all of
    /// them.
    Truncated,
}

impl BreakReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakReason::SeqGap => "seq_gap",
            BreakReason::PrevMismatch => "prev_mismatch",
            BreakReason::HashMismatch => "hash_mismatch",
            BreakReason::Truncated => "truncated",
        }
    }
}

/// The first event at which the chain does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    /// `None` when the event is missing altogether (`Truncated`).
    pub event_id: Option<AuditEventId>,
    pub reason: BreakReason,
}

/// Checks a chain event by event, so a long one can be fed in pages.
#[derive(Debug, Clone)]
pub struct Verifier {
    next_seq: i64,
    prev_hash: String,
    checked: usize,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier expecting the chain's first event (seq 1).
    pub fn new() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            checked: 0,
        }
    }

    /// The next event, in seq order.
    pub fn push(&mut self, e: &AuditEvent) -> Result<(), Broken> {
        let broken = |reason| Broken {
            seq: e.seq,
            event_id: Some(e.id),
            reason,
        };
        if e.seq != self.next_seq {
            return Err(broken(BreakReason::SeqGap));
        }
        if e.prev_hash != self.prev_hash {
            return Err(broken(BreakReason::PrevMismatch));
        }
        if chain_hash(&e.prev_hash, e) != e.hash {
            return Err(broken(BreakReason::HashMismatch));
        }
        self.next_seq = e.seq.saturating_add(1);
        self.prev_hash.clone_from(&e.hash);
        self.checked += 1;
        Ok(())
    }

    /// How many events have been found intact so far.
    pub fn checked(&self) -> usize {
        self.checked
    }

    /// The seq of the last intact event (0 before the first).
    pub fn last_seq(&self) -> i64 {
        self.next_seq - 1
    }

    /// The hash of the last intact event ([`GENESIS_HASH`] before the
    /// first).
    pub fn last_hash(&self) -> &str {
        &self.prev_hash
    }

    /// After the last event: checks that the chain ends at `head`, the
    /// `(seq, hash)` recorded apart from the events at the latest append
    /// (`None` for a membership that never had one). An emptied or
    /// shortened chain fails here, though every event left is intact.
    pub fn finish(&self, head: Option<(i64, &str)>) -> Result<(), Broken> {
        let Some((seq, hash)) = head else {
            return Ok(());
        };
        if seq == self.last_seq() && hash == self.prev_hash {
            return Ok(());
        }
        Err(Broken {
            seq: if seq > self.last_seq() {
                self.last_seq() + 1
            } else {
                seq
            },
            event_id: None,
            reason: BreakReason::Truncated,
        })
    }
}

/// Checks a whole chain, given in seq order: the number of events checked,
/// or the first one that breaks it.
pub fn verify<'a>(events: impl IntoIterator<Item = &'a AuditEvent>) -> Result<usize, Broken> {
    let mut v = Verifier::new();
    for e in events {
        v.push(e)?;
    }
    Ok(v.checked())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn event(membership: MembershipId, seq: i64, resource: &str) -> AuditEvent {
        AuditEvent {
            id: AuditEventId::new(),
            membership,
            seq,
            at_ms: 1_700_000_000_000 + seq,
            actor_kind: ActorKind::User.as_str().to_owned(),
            actor_id: Some(Uuid::now_v7()),
            actor_membership: None,
            action: "auth.sign_in".to_owned(),
            resource: resource.to_owned(),
            consent: None,
            outcome: Outcome::Allowed.as_str().to_owned(),
            detail: "{}".to_owned(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn chain(n: i64) -> Vec<AuditEvent> {
        let m = MembershipId::new();
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let e = seal(event(m, seq, &format!("subject/{seq}")), &prev);
                prev.clone_from(&e.hash);
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
        assert_eq!(verify(&[]), Ok(0));
        let c = chain(1);
        assert_eq!(c[0].prev_hash, GENESIS_HASH);
        assert_eq!(c[0].hash.len(), 64);
    }

    #[test]
    fn each_reason_is_told_apart() {
        let mut c = chain(4);
        c[2].resource = "subject/other".into();
        assert_eq!(
            verify(&c).map_err(|b| (b.seq, b.reason)),
            Err((3, BreakReason::HashMismatch))
        );

        let mut c = chain(4);
        c.remove(1);
        assert_eq!(verify(&c).map_err(|b| (b.seq, b.reason)), Err((3, BreakReason::SeqGap)));

        let mut c = chain(4);
        c[3].prev_hash = c[1].hash.clone();
        assert_eq!(
            verify(&c).map_err(|b| (b.seq, b.reason)),
            Err((4, BreakReason::PrevMismatch))
        );
    }

    #[test]
    fn an_emptied_or_shortened_chain_fails_against_its_head() {
        let c = chain(4);
        let head = (4, c[3].hash.as_str());
        let run = |events: &[AuditEvent]| {
            let mut v = Verifier::new();
            for e in events {
                v.push(e).unwrap();
            }
            v.finish(Some(head))
        };
        assert_eq!(run(&c), Ok(()));
        let emptied = run(&[]).unwrap_err();
        assert_eq!(
            (emptied.seq, emptied.event_id, emptied.reason),
            (1, None, BreakReason::Truncated)
        );
        let shortened = run(&c[..2]).unwrap_err();
        assert_eq!((shortened.seq, shortened.reason), (3, BreakReason::Truncated));
        // A chain rebuilt to the same length ends on another hash.
        let other = chain(4);
        assert_eq!(run(&other).unwrap_err().reason, BreakReason::Truncated);
        // No head recorded: nothing to compare with.
        assert_eq!(Verifier::new().finish(None), Ok(()));
    }

    #[test]
    fn a_resealed_event_still_breaks_its_successor() {
        // Someone who alters an event and recomputes its hash must rewrite
        // every later event too; the next one already shows it.
        let mut c = chain(3);
        c[1].resource = "subject/other".into();
        let prev = c[0].hash.clone();
        c[1] = seal(c[1].clone(), &prev);
        let b = verify(&c).err();
        assert_eq!(b.map(|b| (b.seq, b.reason)), Some((3, BreakReason::PrevMismatch)));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let m = MembershipId::new();
        let mut a = event(m, 1, "ab");
        a.action = "x".into();
        let mut b = a.clone();
        b.resource = "b".into();
        b.action = "xa".into();
        assert_ne!(canonical(&a), canonical(&b));
        let mut c = a.clone();
        c.actor_id = None;
        c.actor_membership = a.actor_id.map(MembershipId::from_uuid);
        assert_ne!(canonical(&a), canonical(&c));
    }

    #[test]
    fn kinds_and_outcomes_round_trip() {
        for k in ActorKind::ALL {
            assert_eq!(ActorKind::parse(k.as_str()), Some(k));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(ActorKind::parse("root"), None);
        assert_eq!(Outcome::parse("ok"), None);
    }

    /// Changes field `which` of `e` to something different.
    fn mutate(e: &mut AuditEvent, which: u8, text: &str) {
        let other = |s: &str| if s == text { format!("{text}!") } else { text.to_owned() };
        match which {
            0 => e.id = AuditEventId::new(),
            1 => e.membership = MembershipId::new(),
            2 => e.seq += 1,
            3 => e.at_ms += 1,
            4 => e.actor_kind = other(&e.actor_kind),
            5 => {
                e.actor_id = if e.actor_id.is_some() {
                    None
                } else {
                    Some(Uuid::now_v7())
                }
            }
            6 => e.actor_membership = Some(MembershipId::new()),
            7 => e.action = other(&e.action),
            8 => e.resource = other(&e.resource),
            9 => e.consent = Some(ConsentId::new()),
            10 => e.outcome = other(&e.outcome),
            11 => e.detail = other(&e.detail),
            12 => e.prev_hash = other(&e.prev_hash),
            _ => e.hash = other(&e.hash),
        }
    }

    proptest! {
        #[test]
        fn any_single_field_change_is_detected(
            n in 1i64..12,
            at in any::<prop::sample::Index>(),
            which in 0u8..14,
            text in ".{0,20}",
        ) {
            let mut c = chain(n);
            let i = at.index(c.len());
            mutate(&mut c[i], which, &text);
            let broken = verify(&c);
            prop_assert!(broken.is_err());
            if let Err(b) = broken {
                // The break shows at the altered event, whatever was changed.
                prop_assert_eq!(b.event_id, Some(c[i].id));
            }
        }

        #[test]
        fn reordering_is_detected(n in 2i64..12, a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
            let mut c = chain(n);
            let (a, b) = (a.index(c.len()), b.index(c.len()));
            prop_assume!(a != b);
            c.swap(a, b);
            prop_assert_eq!(verify(&c).map_err(|b| b.seq), Err(c[a.min(b)].seq));
        }

        #[test]
        fn a_deleted_middle_event_is_detected(n in 3i64..12, at in any::<prop::sample::Index>()) {
            let mut c = chain(n);
            let i = 1 + at.index(c.len() - 2);
            c.remove(i);
            let b = verify(&c).err();
            prop_assert_eq!(b.map(|b| (b.seq, b.reason)), Some((i as i64 + 2, BreakReason::SeqGap)));
        }

        #[test]
        fn a_chain_fed_in_pages_verifies_like_a_whole(n in 0i64..20, page in 1usize..6) {
            let c = chain(n);
            let mut v = Verifier::new();
            for part in c.chunks(page) {
                for e in part {
                    prop_assert!(v.push(e).is_ok());
                }
            }
            prop_assert_eq!(v.checked() as i64, n);
            prop_assert_eq!(v.last_seq(), n);
        }
    }
}
