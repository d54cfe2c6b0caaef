//! The supervisor of the background loops (janitor, sweepers, jobs,
//! webhooks, alert due-times, ...).
//!
//! Every loop is started here and its handle kept, so that a panic is seen
//! and shutdown can wait for the loops. A worker is a named factory that
//! makes the loop's future from a [`CancellationToken`]; when the future
//! panics (or returns before shutdown) the supervisor logs why and starts a
//! new one after a back-off that doubles up to a cap, so one bad row does
//! not spin a loop nor end it for good. On shutdown the token is cancelled;
//! a worker finishes the round it is in and returns, and one that does not
//! within the deadline is aborted.
//!
//! No actix type appears here: the module only needs tokio.

pub mod maintenance;
pub mod start;

pub use start::start_all;

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The first restart waits this long; each further one twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// No restart waits longer than this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run that lasted this long resets the back-off: the cause went away.
const HEALTHY_RUN: Duration = Duration::from_secs(300);

/// Owns the supervised workers.
pub struct Supervisor {
    stop: CancellationToken,
    workers: Vec<(&'static str, JoinHandle<()>)>,
    backoff: (Duration, Duration),
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Self::with_backoff(FIRST_BACKOFF, MAX_BACKOFF)
    }

    /// A supervisor whose restarts wait `first`, doubling up to `max`.
    pub fn with_backoff(first: Duration, max: Duration) -> Self {
        Self {
            stop: CancellationToken::new(),
            workers: Vec::new(),
            backoff: (first, max.max(first)),
        }
    }

    /// The token every worker is given; cancelled at shutdown.
    pub fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// The names of the workers started so far.
    pub fn names(&self) -> Vec<&'static str> {
        self.workers.iter().map(|(n, _)| *n).collect()
    }

    /// Starts `factory`'s loop under supervision: restarted after a panic
    /// or an early return, until shutdown.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, factory: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        let (first, max) = self.backoff;
        let handle = tokio::spawn(async move {
            let mut delay = first;
            loop {
                let started = tokio::time::Instant::now();
                let mut run = tokio::spawn(factory(stop.clone()));
                let outcome = tokio::select! {
                    r = &mut run => r,
                    () = stop.cancelled() => {
                        // Shutdown: the worker sees the token and finishes
                        // its round; the caller of `shutdown` bounds the wait
                        // and aborts this task, which must take the run along.
                        let guard = AbortOnDrop(run.abort_handle());
                        let r = run.await;
                        drop(guard);
                        r
                    }
                };
                if stop.is_cancelled() {
                    return;
                }
                match outcome {
                    Ok(()) => tracing::warn!(worker = name, "a background worker returned; restarting it"),
                    Err(e) if e.is_panic() => {
                        let cause = panic_message(e.into_panic());
                        tracing::error!(worker = name, cause, "a background worker panicked; restarting it");
                    }
                    Err(_) => {
                        tracing::warn!(worker = name, "a background worker was cancelled; restarting it");
                    }
                }
                if started.elapsed() >= HEALTHY_RUN {
                    delay = first;
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => return,
                }
                delay = (delay * 2).min(max);
            }
        });
        self.workers.push((name, handle));
    }

    /// Cancels every worker and waits up to `deadline` for them to return;
    /// those still running then are aborted. Returns the names of the
    /// abandoned ones.
    pub async fn shutdown(self, deadline: Duration) -> Vec<&'static str> {
        self.stop.cancel();
        let until = tokio::time::Instant::now() + deadline;
        let mut abandoned = Vec::new();
        for (name, mut handle) in self.workers {
            if tokio::time::timeout_at(until, &mut handle).await.is_err() {
                handle.abort();
                tracing::warn!(worker = name, "a background worker did not stop in time; abandoned");
                abandoned.push(name);
            }
        }
        abandoned
    }
}

/// Aborts the worker's run when the supervising task is aborted while it
/// waits for it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The message of a panic (`panic!("...")` carries a `&str` or a `String`).
/// Only the message: a panic's message names code, not health values.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

/// Sleeps `period`, or less when shutdown comes first: `false` then, and the
/// worker returns.
pub async fn idle(stop: &CancellationToken, period: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(period) => true,
        () = stop.cancelled() => false,
    }
}

/// Waits for the next tick of `tick`, or for shutdown (`false`).
pub async fn tick(stop: &CancellationToken, tick: &mut tokio::time::Interval) -> bool {
    tokio::select! {
        _ = tick.tick() => true,
        () = stop.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_worker_that_panics_twice_is_restarted_and_then_runs() {
        let mut sup = Supervisor::with_backoff(Duration::from_millis(10), Duration::from_millis(40));
        let starts = Arc::new(AtomicUsize::new(0));
        let rounds = Arc::new(AtomicUsize::new(0));
        let (s, r) = (starts.clone(), rounds.clone());
        sup.spawn("flaky", move |stop| {
            let (s, r) = (s.clone(), r.clone());
            async move {
                if s.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("flaky worker fails on purpose");
                }
                while idle(&stop, Duration::from_millis(5)).await {
                    r.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        for _ in 0..200 {
            if rounds.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(starts.load(Ordering::SeqCst), 3, "two panics, then one run that lasts");
        assert!(rounds.load(Ordering::SeqCst) >= 3);
        assert!(sup.shutdown(Duration::from_secs(5)).await.is_empty());
    }

    #[tokio::test]
    async fn shutdown_waits_for_a_worker_to_finish_its_round() {
        let mut sup = Supervisor::new();
        let finished = Arc::new(AtomicUsize::new(0));
        let f = finished.clone();
        sup.spawn("slow", move |stop| {
            let f = f.clone();
            async move {
                stop.cancelled().await;
                // The round in progress when shutdown came.
                tokio::time::sleep(Duration::from_millis(200)).await;
                f.fetch_add(1, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(sup.shutdown(Duration::from_secs(5)).await.is_empty());
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_worker_that_ignores_cancellation_is_abandoned_at_the_deadline() {
        let mut sup = Supervisor::new();
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        sup.spawn("stubborn", move |_stop| {
            let guard = Counted(d.clone());
            async move {
                let _guard = guard;
                loop {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            }
        });
        sup.spawn("polite", |stop| async move { stop.cancelled().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = std::time::Instant::now();
        let abandoned = sup.shutdown(Duration::from_millis(300)).await;
        assert_eq!(abandoned, vec!["stubborn"]);
        assert!(started.elapsed() < Duration::from_secs(2));
        // The abandoned run is aborted, not left running.
        for _ in 0..100 {
            if dropped.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
