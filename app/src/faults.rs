//! Failure injection for tests of the units of work: a test arms a fault
//! point on its server's state and the next unit of work that passes it
//! fails there, as a crash or a database error between two steps would.
//! Nothing reachable from a request arms one, and a disarmed point costs
//! one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{AppError, AppResult};

/// Where a unit of work can be made to fail.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// A consent change, after the consent (or request) row is written and
    /// before the audit events and outbound events are.
    ConsentMidway,
}

/// The armed fault points of one server; all disarmed by default.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Faults {
    consent_midway: AtomicBool,
}

impl Faults {
    fn flag(&self, point: FaultPoint) -> &AtomicBool {
        match point {
            FaultPoint::ConsentMidway => &self.consent_midway,
        }
    }

    /// Makes every unit of work passing `point` fail there until disarmed.
    #[doc(hidden)]
    pub fn arm(&self, point: FaultPoint, armed: bool) {
        self.flag(point).store(armed, Ordering::SeqCst);
    }

    /// An internal error when `point` is armed.
    pub(crate) fn check(&self, point: FaultPoint) -> AppResult<()> {
        if self.flag(point).load(Ordering::Relaxed) {
            return Err(AppError::Internal(anyhow::anyhow!("injected fault at {point:?}")));
        }
        Ok(())
    }
}
