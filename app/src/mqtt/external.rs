//! An external broker (Mosquitto, EMQX, HiveMQ…): vitalfarm subscribes to
//! every device's uplink topics with a persistent session (clean session
//! off, a stable client id), so the broker keeps what arrives while this
//! node is down, and acknowledges each message only after handling it
//! (manual acks), so a crash before the commit means redelivery, and the
//! unique key of readings makes that redelivery a duplicate, not a second
//! row. With `mqtt_shared_group` several nodes split the stream through a
//! shared subscription.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, Transport};
use tokio_util::sync::CancellationToken;

use super::{DeviceCache, Handled, MAX_PACKET, Mqtt, MqttLink, Topics, handle_uplink};
use crate::state::AppState;

/// Messages being handled at once before the link stops reading.
const IN_FLIGHT: usize = 256;

/// Connection options from `mqtt://[user:password@]host[:port]` (or
/// `mqtts://` for TLS with the system's roots).
pub fn options(url: &str, client_id: &str) -> anyhow::Result<MqttOptions> {
    let parsed = reqwest::Url::parse(url).map_err(|e| anyhow!("invalid mqtt_url: {e}"))?;
    let tls = match parsed.scheme() {
        "mqtt" => false,
        "mqtts" => true,
        other => return Err(anyhow!("invalid mqtt_url: unsupported scheme {other}")),
    };
    let host = parsed.host_str().context("mqtt_url has no host")?.to_owned();
    let port = parsed.port().unwrap_or(if tls { 8883 } else { 1883 });
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(IN_FLIGHT as u16)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if !parsed.username().is_empty() {
        let password = percent_encoding::percent_decode_str(parsed.password().unwrap_or(""))
            .decode_utf8_lossy()
            .into_owned();
        let user = percent_encoding::percent_decode_str(parsed.username())
            .decode_utf8_lossy()
            .into_owned();
        options.set_credentials(user, password);
    }
    if tls {
        options.set_transport(Transport::tls_with_default_config());
    }
    Ok(options)
}

pub async fn start(state: Arc<AppState>, topics: Topics, url: &str, stop: CancellationToken) -> anyhow::Result<Mqtt> {
    let options = options(url, &state.config.mqtt_client_id)?;
    // The request channel carries our acknowledgements. rumqttc reads
    // several messages per network turn but sends one request per turn, so
    // acknowledgements can pile up while a broker floods us; if they filled
    // the channel, handlers would wait on it while the poll loop waits on
    // the handlers. Sized far above any broker's in-flight window.
    let (client, eventloop) = AsyncClient::new(options, 65_536);
    let _ = state.mqtt.set(Arc::new(MqttLink {
        client: client.clone(),
        topics: topics.clone(),
    }));
    let (subscribed, ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(drive(state, topics, client, eventloop, subscribed, stop.clone()));
    // Messages published before the first subscription exists would have
    // nobody to go to: wait for it, but do not let a broker that is down
    // keep the HTTP API from starting (the link keeps trying).
    if tokio::time::timeout(Duration::from_secs(10), ready).await.is_err() {
        tracing::warn!("the MQTT broker is not reachable yet; ingest over MQTT starts once it is");
    }
    Ok(Mqtt {
        tasks: vec![task],
        front_addr: None,
        stop,
    })
}

async fn drive(
    state: Arc<AppState>,
    topics: Topics,
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    subscribed: tokio::sync::oneshot::Sender<()>,
    stop: CancellationToken,
) {
    let mut subscribed = Some(subscribed);
    let cache = Arc::new(DeviceCache::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let filters: Vec<String> = topics
        .uplink_filters()
        .into_iter()
        .map(|f| match &state.config.mqtt_shared_group {
            Some(group) => format!("$share/{group}/{f}"),
            None => f,
        })
        .collect();
    // Set at shutdown: messages still arriving are left unacknowledged
    // (the broker keeps them for this session), the ones being handled are
    // finished, and once their acknowledgements are queued the link
    // disconnects; polling goes on until then, since it sends them.
    let mut draining = false;
    loop {
        let event = tokio::select! {
            e = eventloop.poll() => e,
            () = stop.cancelled(), if !draining => {
                draining = true;
                let (slots, client) = (slots.clone(), client.clone());
                tokio::spawn(async move {
                    let _all = slots.acquire_many_owned(IN_FLIGHT as u32).await;
                    let _ = client.disconnect().await;
                });
                continue;
            }
        };
        if draining {
            match event {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                _ => continue,
            }
        }
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                tracing::info!(session_present = ack.session_present, "connected to the MQTT broker");
                // A broker that kept our session keeps the subscriptions
                // too; subscribing again is harmless and covers one that
                // lost them.
                for f in &filters {
                    if let Err(e) = client.subscribe(f.clone(), QoS::AtLeastOnce).await {
                        tracing::warn!(error = %e, "subscribing failed");
                    }
                }
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = crate::commands::dispatch_pending(&state).await {
                        tracing::warn!(error = format!("{e:#}"), "sending queued commands failed");
                    }
                });
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                if let Some(tx) = subscribed.take() {
                    let _ = tx.send(());
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                tracing::trace!(pkid = publish.pkid, dup = publish.dup, "uplink message");
                let Some(uplink) = topics.parse_uplink(&publish.topic) else {
                    // Not ours to judge: acknowledge so the broker does not
                    // redeliver it forever.
                    let _ = client.ack(&publish).await;
                    continue;
                };
                // Bounded: beyond IN_FLIGHT messages in progress the link
                // stops polling, and the broker holds the rest.
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (state, cache, client) = (state.clone(), cache.clone(), client.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match handle_uplink(&state, &cache, uplink, &publish.payload).await {
                        Ok(Handled::Done) => {
                            let _ = client.ack(&publish).await;
                        }
                        Ok(Handled::Refused(why)) => {
                            // The broker should have refused this device;
                            // the message is dropped, not stored.
                            tracing::warn!(reason = why, "dropped a message of a device that may not send");
                            let _ = client.ack(&publish).await;
                        }
                        Err(e) => {
                            // Unacknowledged: the broker redelivers it after
                            // the next reconnect.
                            tracing::warn!(
                                error = format!("{e:#}"),
                                "storing an MQTT message failed; it stays unacknowledged"
                            );
                        }
                    }
                });
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "MQTT broker connection lost; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
