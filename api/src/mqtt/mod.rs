//! MQTT: devices publish readings and command results, and receive
//! commands. With embedded defaults an in-process broker (rumqttd) serves
//! them behind a front that authenticates devices and enforces their topics;
//! with `mqtt_url` an external broker does, and vitalfarm subscribes to it.

use uuid::Uuid;

/// vitalfarm's own connection to the broker, used to send commands.
pub struct MqttLink {
    client: rumqttc::AsyncClient,
    root: String,
}

impl MqttLink {
    /// The topic a device receives its commands on.
    pub fn commands_topic(&self, device: Uuid) -> String {
        format!("{}/devices/{device}/commands", self.root)
    }

    /// Publishes a command to `device` (QoS 1). Returns once the broker has
    /// the message in its queue for the device's session.
    pub async fn publish_command(&self, device: Uuid, payload: Vec<u8>) -> anyhow::Result<()> {
        self.client
            .publish(self.commands_topic(device), rumqttc::QoS::AtLeastOnce, false, payload)
            .await?;
        Ok(())
    }
}
