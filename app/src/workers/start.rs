//! The one place every background loop is started, each under the
//! supervisor ([`super::Supervisor`]) that restarts it after a panic and
//! stops it at shutdown.

use std::sync::Arc;
use std::time::Duration;

use super::{Supervisor, maintenance};
use crate::state::AppState;

/// Starts every background loop under one supervisor.
pub fn start_all(state: &Arc<AppState>) -> Supervisor {
    let mut workers = Supervisor::new();
    let db = state.db.clone();
    workers.spawn("janitor", move |stop| maintenance::janitor(db.clone(), stop));
    let s = state.clone();
    workers.spawn("blob-sweeper", move |stop| maintenance::sweeper(s.clone(), stop));
    let s = state.clone();
    workers.spawn("command-expirer", move |stop| maintenance::expirer(s.clone(), stop));
    if !state.config.no_jobs {
        let s = state.clone();
        workers.spawn("jobs", move |stop| crate::jobs::worker(s.clone(), stop));
    }
    let s = state.clone();
    workers.spawn("export-sweeper", move |stop| {
        crate::jobs::export_sweeper(s.clone(), stop)
    });
    let s = state.clone();
    workers.spawn("webhooks", move |stop| crate::webhooks::run(s.clone(), stop));
    let db = state.db.clone();
    let every = Duration::from_millis(state.config.alert_due_interval_ms);
    workers.spawn("alert-due", move |stop| {
        crate::alerts::due_loop(db.clone(), every, stop)
    });
    workers
}
