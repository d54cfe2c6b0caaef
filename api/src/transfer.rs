//! Slow and stalled transfers. actix's `client_request_timeout` covers the
//! request head only: a client that sent its headers could then hold a
//! request (an upload, a login, an ingest) open for ever by sending nothing,
//! and one that stops reading a download held the response as long.
//!
//! - `limit_request_body` (middleware): every request body must deliver a
//!   byte at least every `body_read_timeout_secs` and, once it has run that
//!   long, average `min_transfer_bytes_per_sec`. A body that fails either is
//!   cut off; the handler sees a failed read (an upload then stores nothing)
//!   and the client gets 408 with its connection closed.
//! - `on_connect`: a response the client does not read stays unacknowledged
//!   or behind a zero TCP window; Linux's `TCP_USER_TIMEOUT` drops such a
//!   connection after `body_read_timeout_secs`. actix does not poll a
//!   response body while its write buffer is full, so nothing inside the
//!   application could notice that stall; the kernel can.
//! - `Metered`: a response body that crawls (read, but slower than
//!   `min_transfer_bytes_per_sec` on average) is cut short.
//! - `LinkSlots`: at most `share_link_max_concurrent_downloads` downloads
//!   through one share link at a time on this node.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use bytes::Bytes;
use futures_util::Stream;
use uuid::Uuid;

use crate::error::{ApiError, AppError};
use vitalfarm_app::config::Config;
use vitalfarm_app::state::AppState;

/// How fast a body must move.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// The longest wait for the next piece.
    pub idle: Duration,
    /// The lowest average rate once `idle` has passed; 0: no check.
    pub min_bytes_per_sec: u64,
}

impl Pace {
    pub fn of(config: &Config) -> Self {
        Self {
            idle: Duration::from_secs(config.body_read_timeout_secs),
            min_bytes_per_sec: config.min_transfer_bytes_per_sec,
        }
    }

    /// Whether `moved` bytes in `elapsed` is too slow: the first `idle` is
    /// free (a transfer starts slowly), after that the average must hold.
    fn too_slow(&self, moved: u64, elapsed: Duration) -> bool {
        if self.min_bytes_per_sec == 0 || elapsed <= self.idle {
            return false;
        }
        let owed = self.min_bytes_per_sec as f64 * (elapsed - self.idle).as_secs_f64();
        (moved as f64) < owed
    }
}

/// A request payload that fails when it stalls or crawls, raising `tripped`.
struct PacedPayload {
    inner: Payload,
    pace: Pace,
    /// Armed while the consumer waits for a piece: only time spent waiting
    /// on the client counts, not the handler's own work between reads.
    timer: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
    started: Option<Instant>,
    received: u64,
    tripped: Arc<AtomicBool>,
    done: bool,
}

impl PacedPayload {
    fn trip(&mut self) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.done = true;
        self.tripped.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body stalled or arrived too slowly",
        )))))
    }
}

impl Stream for PacedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.armed = false;
                this.received += chunk.len() as u64;
                if this.pace.too_slow(this.received, started.elapsed()) {
                    return this.trip();
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => {
                this.done = other.is_none();
                Poll::Ready(other)
            }
            Poll::Pending => {
                if !this.armed {
                    let deadline = tokio::time::Instant::now() + this.pace.idle;
                    this.timer.as_mut().reset(deadline);
                    this.armed = true;
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.trip(),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// Whether a request announces a body: any `Transfer-Encoding`, or a
/// `Content-Length` other than 0.
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().ok().map(str::trim) != Some("0"))
}

/// Middleware: paces every request body (see the module). A request whose
/// body was cut off is answered 408 and its connection closed, whatever the
/// handler made of the failed read.
pub async fn limit_request_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let pace = req.app_data::<web::Data<AppState>>().map(|s| Pace::of(&s.config));
    let (Some(pace), true) = (pace, has_body(&req)) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let tripped = Arc::new(AtomicBool::new(false));
    let paced = PacedPayload {
        inner: req.take_payload(),
        pace,
        timer: Box::pin(tokio::time::sleep(pace.idle)),
        armed: false,
        started: None,
        received: 0,
        tripped: tripped.clone(),
        done: false,
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(paced),
    });
    let res = next.call(req).await?;
    if !tripped.load(Ordering::Relaxed) {
        return Ok(res.map_into_boxed_body());
    }
    let (req, _) = res.into_parts();
    let mut timeout = ApiError(AppError::RequestTimeout {
        after_secs: pace.idle.as_secs(),
    })
    .error_response();
    // The rest of the body is still on the wire: the connection cannot
    // carry another request.
    timeout.head_mut().set_connection_type(ConnectionType::Close);
    Ok(ServiceResponse::new(req, timeout))
}

/// `HttpServer::on_connect`: bounds how long data the server sent may stay
/// unacknowledged, or unsent behind the client's zero window, before the
/// kernel drops the connection (Linux only; elsewhere a no-op).
pub fn on_connect(config: &Config) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    let millis = u32::try_from(config.body_read_timeout_secs.saturating_mul(1000)).unwrap_or(u32::MAX);
    move |conn: &dyn Any, _: &mut Extensions| {
        #[cfg(target_os = "linux")]
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>()
            && let Err(e) = rustix::net::sockopt::set_tcp_user_timeout(tcp, millis)
        {
            tracing::debug!(error = %e, "TCP_USER_TIMEOUT not set");
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (conn, millis);
    }
}

/// A response body that is cut short when the client reads it slower than
/// the pace allows on average. (A client that stops reading altogether is
/// not polled at all: `on_connect` covers that.)
pub struct Metered<B> {
    inner: B,
    pace: Pace,
    started: Option<Instant>,
    sent: u64,
    /// Held until the body is dropped (a share-link download slot).
    _slot: Option<LinkSlot>,
}

impl<B> Metered<B> {
    pub fn new(inner: B, pace: Pace) -> Self {
        Self {
            inner,
            pace,
            started: None,
            sent: 0,
            _slot: None,
        }
    }

    /// Holds `slot` for as long as the body is being sent.
    pub fn holding(mut self, slot: LinkSlot) -> Self {
        self._slot = Some(slot);
        self
    }
}

impl<B> MessageBody for Metered<B>
where
    B: MessageBody + Unpin,
    B::Error: Into<Box<dyn std::error::Error>>,
{
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.sent += chunk.len() as u64;
                if this.pace.too_slow(this.sent, started.elapsed()) {
                    tracing::info!("a response body was read too slowly; the connection is dropped");
                    return Poll::Ready(Some(Err("the client read the response too slowly".into())));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Wraps the body of `res` in `Metered`, holding `slot` until it is sent.
pub fn meter(res: actix_web::HttpResponse, pace: Pace, slot: Option<LinkSlot>) -> actix_web::HttpResponse {
    res.map_body(|_, body| {
        let metered = Metered::new(body, pace);
        match slot {
            Some(slot) => BoxBody::new(metered.holding(slot)),
            None => BoxBody::new(metered),
        }
    })
}

/// Downloads in progress per share link, on this node. Link ids are unique
/// across every server, so one table serves the whole process.
static LINK_SLOTS: LazyLock<Mutex<HashMap<Uuid, usize>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// One download through a share link; dropping it frees the slot.
pub struct LinkSlot {
    link: Uuid,
}

impl LinkSlot {
    /// Takes a slot of `link` if fewer than `max` are taken.
    pub fn acquire(link: Uuid, max: usize) -> Option<Self> {
        let mut slots = LINK_SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        let taken = slots.entry(link).or_insert(0);
        if *taken >= max {
            return None;
        }
        *taken += 1;
        Some(Self { link })
    }
}

impl Drop for LinkSlot {
    fn drop(&mut self) {
        let mut slots = LINK_SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(taken) = slots.get_mut(&self.link) {
            *taken = taken.saturating_sub(1);
            if *taken == 0 {
                slots.remove(&self.link);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_idle_period_is_free_then_the_average_must_hold() {
        let pace = Pace {
            idle: Duration::from_secs(2),
            min_bytes_per_sec: 1000,
        };
        assert!(!pace.too_slow(0, Duration::from_secs(2)));
        assert!(pace.too_slow(500, Duration::from_secs(3)));
        assert!(!pace.too_slow(1000, Duration::from_secs(3)));
        let off = Pace {
            min_bytes_per_sec: 0,
            ..pace
        };
        assert!(!off.too_slow(0, Duration::from_secs(3600)));
    }

    #[test]
    fn link_slots_are_counted_and_freed() {
        let link = Uuid::now_v7();
        let a = LinkSlot::acquire(link, 2).unwrap();
        let _b = LinkSlot::acquire(link, 2).unwrap();
        assert!(LinkSlot::acquire(link, 2).is_none());
        drop(a);
        assert!(LinkSlot::acquire(link, 2).is_some());
    }
}
