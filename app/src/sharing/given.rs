//! The consents some memberships have given, as alert evaluation judges a
//! stored reading by them. Part of `sharing`, the one place consents are
//! evaluated; a file of its own because the ingest writer reaches it, and
//! it needs nothing of the service state.

use std::collections::BTreeSet;

use uuid::Uuid;
use vitalfarm_domain::SubjectId;
use vitalfarm_domain::consent::{self, Access as ConsentAccess, Consent, Request};
use vitalfarm_storage::repo::{alerts as alerts_repo, consents};
use vitalfarm_storage::{Database, StorageError};

/// The active consents some memberships have given: what alert evaluation
/// judges a stored reading by when a rule of another membership watches
/// it. Loaded per batch, so a revoked consent stops its rules at the next
/// reading.
pub struct Given {
    items: Vec<Consent>,
    now_ms: i64,
}

impl Given {
    /// The consents `grantors` have given, active at `now_ms`.
    pub async fn load(db: &Database, grantors: &[Uuid], now_ms: i64) -> Result<Self, StorageError> {
        let rows = alerts_repo::consents_granted_by(db, grantors).await?;
        Ok(Given {
            items: rows
                .iter()
                .filter_map(consents::to_domain)
                .filter(|c| c.state(now_ms) == consent::State::Active)
                .collect(),
            now_ms,
        })
    }

    /// Whether `grantee` may read `metric` of `subject` (of `grantor`) at
    /// `ts_ms` now; with no metric, whether the subject is shared at all.
    pub fn permits(&self, grantor: Uuid, grantee: Uuid, subject: Uuid, metric: Option<&str>, ts_ms: i64) -> bool {
        let subject = SubjectId::from_uuid(subject);
        self.items
            .iter()
            .filter(|c| c.grantor.as_uuid() == grantor && c.grantee.as_uuid() == grantee)
            .any(|c| {
                let request = match metric {
                    Some(metric) => Request::Readings {
                        subject,
                        metric,
                        from: ts_ms,
                        to: ts_ms.saturating_add(1),
                        access: ConsentAccess::Read,
                    },
                    None => Request::Subject { subject },
                };
                match consent::evaluate(c, &request, self.now_ms) {
                    Ok(p) => p.window.is_none_or(|(f, t)| f < t),
                    Err(_) => false,
                }
            })
    }

    /// The memberships some of these consents share one of `subjects` with.
    pub fn grantees_sharing<'a>(&'a self, subjects: &'a BTreeSet<SubjectId>) -> impl Iterator<Item = Uuid> + 'a {
        self.items
            .iter()
            .filter(|c| c.subjects.iter().any(|s| subjects.contains(s)))
            .map(|c| c.grantee.as_uuid())
    }
}
