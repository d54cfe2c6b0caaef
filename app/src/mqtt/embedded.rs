//! The in-process broker: rumqttd on a loopback port only vitalfarm knows,
//! reachable with a per-process token that only the front and vitalfarm's
//! own link present. Devices never talk to it directly.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio_util::sync::CancellationToken;

use super::{MAX_PACKET, Mqtt, MqttLink, Topics, front};
use crate::state::AppState;

/// The login vitalfarm's front and link use at the internal broker.
pub struct InternalLogin {
    pub addr: SocketAddr,
    pub token: String,
}

pub async fn start(state: Arc<AppState>, topics: Topics, stop: CancellationToken) -> anyhow::Result<Mqtt> {
    let bind: SocketAddr = state.config.mqtt_bind.parse().context("mqtt_bind")?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding the MQTT listener on {bind}"))?;
    let front_addr = listener.local_addr()?;
    let login = Arc::new(start_broker(SEGMENT_BYTES)?);

    let mut options = MqttOptions::new("vitalfarm-link", login.addr.ip().to_string(), login.addr.port());
    options
        .set_credentials("vitalfarm-link", login.token.clone())
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    let (client, eventloop) = AsyncClient::new(options, 1024);
    let _ = state.mqtt.set(Arc::new(MqttLink {
        client,
        topics: topics.clone(),
    }));
    let link = tokio::spawn(drive_link(state.clone(), eventloop, stop.clone()));
    let front = tokio::spawn(front::serve(state, topics, listener, login, stop.clone()));
    tracing::info!(addr = %front_addr, "MQTT broker listening");
    Ok(Mqtt {
        // The front first: it finishes the devices' acknowledgements.
        tasks: vec![front, link],
        front_addr: Some(front_addr),
        stop,
    })
}

/// The size of each of the four log segments per subscribed filter (a
/// device's commands): small segments keep a large fleet's memory in check.
pub const SEGMENT_BYTES: usize = 256 * 1024;

/// Starts rumqttd on a free loopback port, with log segments of
/// `segment_bytes` (a subscriber more than four segments behind loses
/// messages). Its `start` blocks, so it runs on a thread of its own.
pub fn start_broker(segment_bytes: usize) -> anyhow::Result<InternalLogin> {
    // rumqttd binds by itself and does not report the port it got: take a
    // free one from the OS first.
    let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let token = hex::encode(crate::auth::secrets::random_bytes::<32>()?);
    let expected = token.clone();
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: MAX_PACKET,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |_client, _user, password: String| {
        let ok = crate::auth::secrets::equal(&password, &expected);
        async move { ok }
    });
    let server = ServerSettings {
        name: "vitalfarm-internal".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let config = Config {
        router: RouterConfig {
            max_connections: 100_000,
            max_outgoing_packet_count: 200,
            max_segment_size: segment_bytes,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("internal".to_owned(), server)])),
        ..Config::default()
    };
    std::thread::Builder::new().name("mqtt-broker".into()).spawn(move || {
        let mut broker = Broker::new(config);
        if let Err(e) = broker.start() {
            tracing::error!(error = %e, "the MQTT broker stopped");
        }
    })?;
    Ok(InternalLogin { addr, token })
}

/// Polls vitalfarm's own link (it reconnects by being polled) and sends the
/// commands that waited for it each time it connects.
async fn drive_link(state: Arc<AppState>, mut eventloop: rumqttc::EventLoop, stop: CancellationToken) {
    loop {
        let event = tokio::select! {
            e = eventloop.poll() => e,
            () = stop.cancelled() => return,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = crate::commands::dispatch_pending(&state).await {
                        tracing::warn!(error = format!("{e:#}"), "sending queued commands failed");
                    }
                });
            }
            Ok(_) => {}
            Err(e) => {
                // The broker thread may still be binding: the first polls
                // can be refused.
                tracing::debug!(error = %e, "MQTT link reconnecting");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
