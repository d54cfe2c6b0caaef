//! The topic layout devices and vitalfarm share, and vitalfarm's own
//! connection to the broker (for commands). Held by the service state, so
//! nothing here reaches back into it.

use uuid::Uuid;

/// vitalfarm's own connection to the broker, used to send commands.
pub struct MqttLink {
    pub(super) client: rumqttc::AsyncClient,
    pub(super) topics: Topics,
}

impl MqttLink {
    /// Publishes a command to `device` (QoS 1). Returns once the message is
    /// handed to the link; the broker queues it in the device's session.
    pub async fn publish_command(&self, device: Uuid, payload: Vec<u8>) -> anyhow::Result<()> {
        self.client
            .publish(self.topics.commands(device), rumqttc::QoS::AtLeastOnce, false, payload)
            .await?;
        Ok(())
    }
}

/// The topic names, under an optional mount point.
#[derive(Debug, Clone)]
pub struct Topics {
    root: String,
}

/// What a device published to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uplink {
    Readings(Uuid),
    CommandResult { device: Uuid, command: Uuid },
}

impl Topics {
    pub fn new(mountpoint: &str) -> Self {
        Self {
            root: format!("{mountpoint}vitalfarm/v1/devices"),
        }
    }

    pub fn readings(&self, device: Uuid) -> String {
        format!("{}/{device}/readings", self.root)
    }

    pub fn commands(&self, device: Uuid) -> String {
        format!("{}/{device}/commands", self.root)
    }

    /// The filters vitalfarm subscribes to at an external broker.
    pub fn uplink_filters(&self) -> [String; 2] {
        [
            format!("{}/+/readings", self.root),
            format!("{}/+/commands/+/result", self.root),
        ]
    }

    /// Parses an uplink topic: `…/devices/{did}/readings` or
    /// `…/devices/{did}/commands/{cid}/result`.
    pub fn parse_uplink(&self, topic: &str) -> Option<Uplink> {
        let rest = topic.strip_prefix(&self.root)?.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let device = parts.next()?.parse().ok()?;
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("readings"), None, None, None) => Some(Uplink::Readings(device)),
            (Some("commands"), Some(cid), Some("result"), None) => Some(Uplink::CommandResult {
                device,
                command: cid.parse().ok()?,
            }),
            _ => None,
        }
    }

    /// Whether `device` may subscribe to `filter`: its own commands only.
    pub fn may_subscribe(&self, device: Uuid, filter: &str) -> bool {
        let own = self.commands(device);
        filter == own || filter.strip_prefix(own.as_str()) == Some("/#")
    }

    /// Whether a last will may go to `topic`: inside the device's own tree.
    pub fn may_will(&self, device: Uuid, topic: &str) -> bool {
        topic
            .strip_prefix(&format!("{}/{device}/", self.root))
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(['+', '#']))
    }
}
