//! The embedded broker's front door. Each device connection is read packet
//! by packet (MQTT 3.1.1):
//!
//! - CONNECT: username = device id, password = the device's secret, checked
//!   against its stored hash; the client id is the device id (or empty).
//!   The session itself is opened at the internal broker under the device
//!   id, with vitalfarm's token instead of the secret.
//! - PUBLISH to the device's readings or command-result topic is handled
//!   here: stored first, acknowledged (PUBACK, in the order received) only
//!   after the commit. A crash before the commit leaves the message
//!   unacknowledged, so the device sends it again. Any other topic ends the
//!   connection.
//! - SUBSCRIBE to anything but the device's own commands is refused.
//! - Everything else (pings, acknowledgements of commands, unsubscribe,
//!   disconnect) passes through to the internal broker, which holds the
//!   session and delivers commands.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::BytesMut;
use rumqttc::mqttbytes::{self, QoS};
use rumqttc::{
    ConnAck, ConnectReturnCode, Login, Packet, PubAck, SubAck, Subscribe, SubscribeFilter, SubscribeReasonCode,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vitalfarm_domain::DeviceStatus;
use vitalfarm_storage::repo::mqtt_sessions;

use super::embedded::InternalLogin;
use super::{DeviceCache, Handled, MAX_PACKET, Topics, Uplink, handle_uplink};
use crate::state::AppState;

/// Messages of one connection being stored at once; beyond it the front
/// stops reading that device until the oldest is acknowledged.
const IN_FLIGHT: usize = 128;

/// The largest first packet (CONNECT) of a connection. Before it is read
/// nobody is authenticated, so a stranger must not make the front hold
/// megabytes; a CONNECT carries an id, a login and perhaps a small will.
pub const MAX_FIRST_PACKET: usize = 8 * 1024;

/// Accepts device connections until `stop`; then stops listening and
/// returns once every connection has acknowledged what it stored and
/// closed.
pub async fn serve(
    state: Arc<AppState>,
    topics: Topics,
    listener: TcpListener,
    login: Arc<InternalLogin>,
    stop: CancellationToken,
) {
    let cache = Arc::new(DeviceCache::default());
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (state, topics, cache, login, stop) = (
                    state.clone(),
                    topics.clone(),
                    cache.clone(),
                    login.clone(),
                    stop.clone(),
                );
                connections.spawn(async move {
                    if let Err(e) = connection(state, topics, cache, login, stream, stop).await {
                        tracing::debug!(%peer, error = format!("{e:#}"), "MQTT connection ended");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, go on.
                tracing::warn!(error = %e, "accepting an MQTT connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Reads one whole packet, reading more from the stream as needed.
async fn read_packet<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) -> anyhow::Result<Packet> {
    read_packet_limited(rd, buf, MAX_PACKET).await
}

/// Reads one whole packet of at most `max` bytes; a larger one is refused
/// as soon as its fixed header announces it, before its body is read.
async fn read_packet_limited<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> anyhow::Result<Packet> {
    loop {
        match Packet::read(buf, max) {
            Ok(p) => return Ok(p),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {
                if rd.read_buf(buf).await? == 0 {
                    bail!("connection closed");
                }
            }
            Err(e) => return Err(anyhow!("malformed packet: {e:?}")),
        }
    }
}

async fn write_packet<W: tokio::io::AsyncWrite + Unpin>(wr: &mut W, packet: &Packet) -> anyhow::Result<()> {
    let mut out = BytesMut::new();
    packet
        .write(&mut out, MAX_PACKET)
        .map_err(|e| anyhow!("encoding a packet: {e:?}"))?;
    wr.write_all(&out).await?;
    Ok(())
}

async fn refuse(stream: &mut TcpStream, code: ConnectReturnCode, why: &str) -> anyhow::Result<()> {
    write_packet(stream, &Packet::ConnAck(ConnAck::new(code, false))).await?;
    let _ = stream.shutdown().await;
    bail!("refused: {why}")
}

async fn connection(
    state: Arc<AppState>,
    topics: Topics,
    cache: Arc<DeviceCache>,
    login: Arc<InternalLogin>,
    mut stream: TcpStream,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let first = tokio::time::timeout(
        Duration::from_secs(10),
        read_packet_limited(&mut stream, &mut buf, MAX_FIRST_PACKET),
    )
    .await;
    let mut connect = match first {
        Ok(Ok(Packet::Connect(c))) => c,
        Ok(Ok(_)) => bail!("the first packet was not CONNECT"),
        Ok(Err(e)) if format!("{e}").contains("Protocol") => {
            return refuse(
                &mut stream,
                ConnectReturnCode::RefusedProtocolVersion,
                "only MQTT 3.1.1",
            )
            .await;
        }
        Ok(Err(e)) => {
            // Closed at once, whatever the client still sends.
            let _ = stream.shutdown().await;
            return Err(e);
        }
        Err(_) => bail!("no CONNECT within 10 s"),
    };
    let Some(credentials) = connect.login.take() else {
        return refuse(&mut stream, ConnectReturnCode::BadUserNamePassword, "no credentials").await;
    };
    let dev = match crate::auth::device::verify(&state, &credentials.username, &credentials.password).await {
        Ok(dev) => dev,
        Err(_) => {
            // Slow down guessing a little, as a failed HTTP login does.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return refuse(&mut stream, ConnectReturnCode::BadUserNamePassword, "bad credentials").await;
        }
    };
    let device: Uuid = dev.id;
    let status = DeviceStatus::parse(&dev.status).unwrap_or(DeviceStatus::Retired);
    if !status.may_ingest() {
        return refuse(&mut stream, ConnectReturnCode::NotAuthorized, "device not active").await;
    }
    if !(connect.client_id.is_empty() || connect.client_id == device.to_string()) {
        return refuse(
            &mut stream,
            ConnectReturnCode::BadClientId,
            "client id is not the device id",
        )
        .await;
    }
    if let Some(will) = &connect.last_will
        && !topics.may_will(device, &will.topic)
    {
        return refuse(
            &mut stream,
            ConnectReturnCode::NotAuthorized,
            "will outside the device's topics",
        )
        .await;
    }
    connect.client_id = device.to_string();
    connect.login = Some(Login::new(device.to_string(), login.token.clone()));
    // The internal broker forgets sessions when vitalfarm restarts; the
    // database remembers them, so that a device's unacknowledged messages
    // (which it drops when told there is no session) survive a restart.
    let persistent = !connect.clean_session;
    let mut saved = None;
    if persistent {
        saved = mqtt_sessions::find(&state.db, device).await?;
        if saved.is_none() {
            mqtt_sessions::open(&state.db, device).await?;
        }
    } else {
        mqtt_sessions::close(&state.db, device).await?;
    }

    // The session at the internal broker.
    let mut upstream = TcpStream::connect(login.addr)
        .await
        .context("reaching the internal broker")?;
    upstream.set_nodelay(true)?;
    write_packet(&mut upstream, &Packet::Connect(connect)).await?;
    let mut up_buf = BytesMut::with_capacity(8 * 1024);
    let connack = tokio::time::timeout(Duration::from_secs(10), read_packet(&mut upstream, &mut up_buf))
        .await
        .context("the internal broker did not answer")??;
    let Packet::ConnAck(mut connack) = connack else {
        bail!("the internal broker answered CONNECT with something else");
    };
    if connack.code != ConnectReturnCode::Success {
        write_packet(&mut stream, &Packet::ConnAck(connack)).await?;
        bail!("the internal broker refused the session");
    }
    let mut subscriptions = saved.clone().unwrap_or_default();
    if let Some(saved) = saved {
        if !connack.session_present && !saved.is_empty() {
            // Restore the subscriptions before the device can act.
            let filters = saved.iter().map(|(f, q)| SubscribeFilter::new(f.clone(), qos(*q)));
            let mut sub = Subscribe::new_many(filters);
            sub.pkid = 1;
            write_packet(&mut upstream, &Packet::Subscribe(sub)).await?;
            match tokio::time::timeout(Duration::from_secs(10), read_packet(&mut upstream, &mut up_buf)).await {
                Ok(Ok(Packet::SubAck(_))) => {}
                _ => bail!("restoring the device's subscriptions failed"),
            }
        }
        connack.session_present = true;
    }
    write_packet(&mut stream, &Packet::ConnAck(connack)).await?;
    tracing::debug!(%device, "device connected over MQTT");

    let (mut client_rd, client_wr) = stream.into_split();
    let (mut up_rd, mut up_wr) = upstream.into_split();
    let (to_client, outbox) = mpsc::channel::<Packet>(256);
    let (ack_tx, ack_rx) = mpsc::channel::<oneshot::Receiver<Ack>>(IN_FLIGHT);

    // Set when the session upstream or the acknowledgements end: then the
    // connection ends too.
    let ended = Arc::new(Notify::new());
    let writer = tokio::spawn(write_client(client_wr, outbox));
    let downlink = {
        let (to_client, ended) = (to_client.clone(), ended.clone());
        tokio::spawn(async move {
            while let Ok(packet) = read_packet(&mut up_rd, &mut up_buf).await {
                if to_client.send(packet).await.is_err() {
                    break;
                }
            }
            ended.notify_one();
        })
    };
    let acker = {
        let (to_client, ended) = (to_client.clone(), ended.clone());
        tokio::spawn(async move {
            acknowledge(ack_rx, to_client).await;
            ended.notify_one();
        })
    };

    let result: anyhow::Result<()> = async {
        loop {
            let packet = tokio::select! {
                p = read_packet(&mut client_rd, &mut buf) => p?,
                () = ended.notified() => return Ok(()),
                // Shutdown: read nothing more; what was read is stored and
                // acknowledged below, the rest the device sends again.
                () = stop.cancelled() => return Ok(()),
            };
            match packet {
                Packet::Publish(publish) => {
                    let uplink = topics
                        .parse_uplink(&publish.topic)
                        .filter(|u| matches!(u, Uplink::Readings(d) | Uplink::CommandResult { device: d, .. } if *d == device))
                        .ok_or_else(|| anyhow!("device {device} published outside its topics"))?;
                    let pkid = match publish.qos {
                        QoS::AtMostOnce => None,
                        QoS::AtLeastOnce => Some(publish.pkid),
                        QoS::ExactlyOnce => bail!("QoS 2 is not supported; use QoS 1"),
                    };
                    let (done, ack) = oneshot::channel();
                    let (state, cache) = (state.clone(), cache.clone());
                    tokio::spawn(async move {
                        let ack = match handle_uplink(&state, &cache, uplink, &publish.payload).await {
                            Ok(Handled::Done) => Ack::Send(pkid),
                            Ok(Handled::Refused(why)) => Ack::Close(why),
                            Err(e) => {
                                tracing::warn!(error = format!("{e:#}"), "storing an MQTT message failed; it stays unacknowledged");
                                Ack::Close("storage failed")
                            }
                        };
                        let _ = done.send(ack);
                    });
                    ack_tx.send(ack).await.map_err(|_| anyhow!("acknowledgements stopped"))?;
                }
                Packet::Subscribe(sub) => {
                    if sub.filters.iter().all(|f| topics.may_subscribe(device, &f.path)) {
                        if persistent {
                            for f in &sub.filters {
                                subscriptions.retain(|(p, _)| *p != f.path);
                                subscriptions.push((f.path.clone(), f.qos as u8));
                            }
                            mqtt_sessions::set_subscriptions(&state.db, device, &subscriptions).await?;
                        }
                        write_packet(&mut up_wr, &Packet::Subscribe(sub)).await?;
                        // Commands sent while the device had no session
                        // went nowhere: send them again now that it listens.
                        let state = state.clone();
                        tokio::spawn(async move {
                            if let Err(e) = crate::commands::redeliver(&state, device).await {
                                tracing::warn!(error = format!("{e:#}"), "redelivering commands failed");
                            }
                        });
                    } else {
                        let codes = vec![SubscribeReasonCode::Failure; sub.filters.len()];
                        to_client
                            .send(Packet::SubAck(SubAck::new(sub.pkid, codes)))
                            .await
                            .map_err(|_| anyhow!("client writer stopped"))?;
                    }
                }
                Packet::Unsubscribe(unsub) => {
                    if persistent {
                        subscriptions.retain(|(p, _)| !unsub.topics.contains(p));
                        mqtt_sessions::set_subscriptions(&state.db, device, &subscriptions).await?;
                    }
                    write_packet(&mut up_wr, &Packet::Unsubscribe(unsub)).await?;
                }
                Packet::Disconnect => {
                    write_packet(&mut up_wr, &Packet::Disconnect).await?;
                    return Ok(());
                }
                Packet::Connect(_) | Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                    bail!("protocol violation")
                }
                other => write_packet(&mut up_wr, &other).await?,
            }
        }
    }
    .await;
    // Let the acknowledgements of what was already stored go out, then
    // close both sides: the writer ends, after writing what is queued,
    // once every sender of its outbox is gone.
    drop(ack_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), acker).await;
    downlink.abort();
    let _ = downlink.await;
    drop(to_client);
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(5), &mut writer).await.is_err() {
        writer.abort();
    }
    result
}

/// What to do once a message was handled.
enum Ack {
    /// Acknowledge it (QoS 1) or nothing (QoS 0).
    Send(Option<u16>),
    /// End the connection without acknowledging.
    Close(&'static str),
}

/// Sends PUBACKs in the order the messages arrived, each once its message
/// is stored: MQTT requires that order, and it keeps a device's view
/// simple.
async fn acknowledge(mut pending: mpsc::Receiver<oneshot::Receiver<Ack>>, to_client: mpsc::Sender<Packet>) {
    while let Some(next) = pending.recv().await {
        match next.await {
            Ok(Ack::Send(Some(pkid))) => {
                if to_client.send(Packet::PubAck(PubAck::new(pkid))).await.is_err() {
                    return;
                }
            }
            Ok(Ack::Send(None)) => {}
            Ok(Ack::Close(why)) => {
                tracing::info!(reason = why, "closing a device's MQTT connection");
                return;
            }
            Err(_) => return,
        }
    }
}

/// Writes packets to the device, as many as are waiting per write.
async fn write_client(mut wr: tokio::net::tcp::OwnedWriteHalf, mut outbox: mpsc::Receiver<Packet>) {
    let mut out = BytesMut::with_capacity(8 * 1024);
    while let Some(first) = outbox.recv().await {
        let mut next = Some(first);
        while let Some(p) = next {
            if p.write(&mut out, MAX_PACKET).is_err() {
                return;
            }
            next = outbox.try_recv().ok();
        }
        if wr.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
    let _ = wr.shutdown().await;
}

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        _ => QoS::AtLeastOnce,
    }
}
