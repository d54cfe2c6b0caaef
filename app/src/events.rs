//! Events a membership can subscribe to (webhooks) or watch (the live
//! stream). `emit` appends one to the event log on the connection of the
//! change it reports, so the event exists exactly when the change does;
//! the webhook dispatcher and the streams pick it up from the log, on any
//! node.

use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use vitalfarm_domain::{MembershipId, SubjectId};
use vitalfarm_storage::StorageError;
use vitalfarm_storage::entity::event;
use vitalfarm_storage::repo::events::{self, NewEvent};

/// The kinds of event, by their public names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    #[serde(rename = "alert.opened")]
    AlertOpened,
    #[serde(rename = "alert.resolved")]
    AlertResolved,
    #[serde(rename = "consent.granted")]
    ConsentGranted,
    #[serde(rename = "consent.revoked")]
    ConsentRevoked,
    #[serde(rename = "device.offline")]
    DeviceOffline,
    #[serde(rename = "export.ready")]
    ExportReady,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::AlertOpened,
        EventKind::AlertResolved,
        EventKind::ConsentGranted,
        EventKind::ConsentRevoked,
        EventKind::DeviceOffline,
        EventKind::ExportReady,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::AlertOpened => "alert.opened",
            EventKind::AlertResolved => "alert.resolved",
            EventKind::ConsentGranted => "consent.granted",
            EventKind::ConsentRevoked => "consent.revoked",
            EventKind::DeviceOffline => "device.offline",
            EventKind::ExportReady => "export.ready",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Appends an event of `membership` on `conn`: pass the transaction of the
/// change it reports. `data` is the event's `data` object as webhooks and
/// streams deliver it (ids, statuses, and for alerts the values behind
/// them: it goes only to the membership's own endpoints, never to logs).
pub async fn emit(
    conn: &impl ConnectionTrait,
    membership: MembershipId,
    kind: EventKind,
    subject: Option<SubjectId>,
    data: serde_json::Value,
) -> Result<event::Model, StorageError> {
    events::append(
        conn,
        NewEvent {
            membership,
            kind: kind.as_str(),
            subject,
            data: &data,
        },
    )
    .await
}
