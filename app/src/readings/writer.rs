//! The coalescing writer behind the one write path of readings
//! ([`super::store`]).
//!
//! Every write (an HTTP batch, an MQTT message, an import) hands its
//! validated readings to the writer as one job. Writer tasks take as
//! many waiting jobs as fit in one batch and store them in one statement
//! (PostgreSQL) or one transaction (SQLite), so many devices sending a
//! reading each cost one round trip, not thousands. The queue in front of
//! the writers is bounded: when the database is slower than the stream,
//! senders wait, which reaches HTTP clients as slower answers and MQTT
//! devices as later acknowledgements (and so fewer messages in flight).
//! A job's answer is sent only after its batch committed.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vitalfarm_storage::Database;
use vitalfarm_storage::repo::readings::{self, NewRow, ReadingKey};

use crate::alerts::StoredReading;

/// A validated reading, ready to store: its rows (one per component) and
/// their common identity.
pub(super) struct Pending {
    pub(super) key: ReadingKey,
    pub(super) rows: Vec<NewRow>,
}

/// Where a job's outcome goes: per reading, whether it was new.
type Reply = oneshot::Sender<Result<Vec<bool>, String>>;

struct Job {
    readings: Vec<Pending>,
    done: Reply,
}

/// Why a job was not stored.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("storing readings failed: {0}")]
    Storage(String),
    #[error("the ingest writer has stopped")]
    Stopped,
}

/// The coalescing writer: cheap to clone, shared by every ingest path.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    /// Cancelled by [`Writer::drain`]: the queue takes no new jobs.
    stop: CancellationToken,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Writer {
    /// Starts `writers` tasks draining a queue of `queue` jobs into batches
    /// of up to `batch_rows` rows. The tasks end at [`Writer::drain`] or
    /// when every `Writer` clone is dropped.
    pub fn start(db: Database, writers: usize, queue: usize, batch_rows: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let stop = CancellationToken::new();
        let tasks = (0..writers.max(1))
            .map(|_| tokio::spawn(run(db.clone(), rx.clone(), batch_rows, stop.clone())))
            .collect();
        Self {
            tx,
            stop,
            tasks: Arc::new(std::sync::Mutex::new(tasks)),
        }
    }

    /// Shutdown: closes the queue (later jobs fail with
    /// [`WriteError::Stopped`], so nothing is acknowledged that was not
    /// stored), stores every job already queued, answers its waiters, and
    /// returns once the writer tasks ended or `deadline` passed.
    pub async fn drain(&self, deadline: std::time::Duration) {
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let until = tokio::time::Instant::now() + deadline;
        for mut task in tasks {
            if tokio::time::timeout_at(until, &mut task).await.is_err() {
                tracing::warn!("the ingest writer did not drain its queue in time");
                task.abort();
            }
        }
    }

    /// Stores what is new among `readings` and returns, per reading, whether
    /// it was new (false: stored before, or twice in this job). Only
    /// [`super::store`] calls it: the write path's other steps come with it.
    pub(super) async fn write(&self, readings: Vec<Pending>) -> Result<Vec<bool>, WriteError> {
        if readings.is_empty() {
            return Ok(Vec::new());
        }
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Job { readings, done })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer
            .await
            .map_err(|_| WriteError::Stopped)?
            .map_err(WriteError::Storage)
    }
}

/// One writer task: waits for a job, takes every job already waiting up to
/// `batch_rows`, stores them together, answers each.
/// At shutdown the queue is closed and what it holds is still stored.
async fn run(db: Database, rx: Arc<Mutex<mpsc::Receiver<Job>>>, batch_rows: usize, stop: CancellationToken) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut rx = rx.lock().await;
            let next = tokio::select! {
                job = rx.recv() => job,
                () = stop.cancelled() => {
                    rx.close();
                    rx.recv().await
                }
            };
            let Some(first) = next else { return };
            let mut rows: usize = first.readings.iter().map(|p| p.rows.len()).sum();
            jobs.push(first);
            while rows < batch_rows {
                match rx.try_recv() {
                    Ok(job) => {
                        rows += job.readings.iter().map(|p| p.rows.len()).sum::<usize>();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
        }
        write_batch(&db, jobs).await;
    }
}

async fn write_batch(db: &Database, jobs: Vec<Job>) {
    // The first occurrence of a key in the batch is the one that may be
    // new; a repeat (a retry racing its original) is a duplicate.
    let mut first: HashMap<ReadingKey, (usize, usize)> = HashMap::new();
    let mut rows = Vec::new();
    let mut answers: Vec<(Reply, Vec<bool>)> = Vec::with_capacity(jobs.len());
    for (j, job) in jobs.into_iter().enumerate() {
        let mut flags = vec![false; job.readings.len()];
        for (i, p) in job.readings.into_iter().enumerate() {
            if let std::collections::hash_map::Entry::Vacant(e) = first.entry(p.key) {
                e.insert((j, i));
                rows.extend(p.rows);
                flags[i] = true;
            }
        }
        answers.push((job.done, flags));
    }
    // What alert evaluation needs of each row, kept before the rows go
    // to storage; only the new ones are evaluated.
    let stored: Vec<(ReadingKey, StoredReading)> = rows
        .iter()
        .map(|r| {
            let reading = StoredReading {
                membership_id: r.membership_id.as_uuid(),
                subject_id: r.subject_id.as_uuid(),
                metric: r.metric,
                component: r.component,
                ts_ms: r.ts_ms,
                value: r.value,
            };
            (r.key(), reading)
        })
        .collect();
    match readings::insert_new(db, rows).await {
        Ok(new) => {
            let fresh: Vec<StoredReading> = stored
                .into_iter()
                .filter(|(key, _)| new.contains(key))
                .map(|(_, r)| r)
                .collect();
            // Before answering, so a client that sent a breaching reading
            // finds its alert; evaluation logs its own errors and never
            // fails the batch.
            crate::alerts::evaluate(db, &fresh).await;
            for (key, (j, i)) in first {
                if !new.contains(&key)
                    && let Some(flag) = answers.get_mut(j).and_then(|(_, f)| f.get_mut(i))
                {
                    *flag = false;
                }
            }
            for (done, flags) in answers {
                let _ = done.send(Ok(flags));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "storing a batch of readings failed");
            for (done, _) in answers {
                let _ = done.send(Err("the database refused the batch".to_owned()));
            }
        }
    }
}
