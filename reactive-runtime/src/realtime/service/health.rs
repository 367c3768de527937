//! The outage rules: every call to the log and the bus is bounded by a timeout, and
//! after a failure calls fail at once for a while (see the parent module's docs).

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::RealtimeShared;
use super::repair::Lost;
use crate::seams::RealtimeError;

/// Time limits of the calls to the event log and bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest wait for one call to the log or the bus (default 1 s): a paused Redis
    /// costs a request this much at most.
    pub operation: Duration,
    /// After a failed call, how long calls fail at once without trying (default 1 s);
    /// also the interval of repair attempts.
    pub retry_after: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            operation: Duration::from_secs(1),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// Whether the log and bus answer, and what waits for them to answer again.
pub(super) struct Health {
    pub(super) timeouts: Timeouts,
    pub(super) epoch: Instant,
    /// Milliseconds since `epoch` until which calls are not tried (0: try).
    pub(super) down_until_ms: AtomicU64,
    /// An outage was logged and its end was not yet.
    pub(super) warned: AtomicBool,
    pub(super) lost: Mutex<Lost>,
    pub(super) repairing: AtomicBool,
}

impl RealtimeShared {
    /// `call`, bounded by the operation timeout, and not tried at all while the log and
    /// bus are considered down.
    pub(super) async fn guarded<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<T, RealtimeError>>,
    ) -> Result<T, RealtimeError> {
        let health = &self.health;
        let now = health.epoch.elapsed().as_millis() as u64;
        if now < health.down_until_ms.load(Ordering::Relaxed) {
            return Err(RealtimeError::Unavailable);
        }
        let result = match tokio::time::timeout(health.timeouts.operation, call).await {
            Ok(r) => r,
            Err(_) => Err(RealtimeError::Timeout(what)),
        };
        match &result {
            Ok(_) => {
                if health.warned.swap(false, Ordering::Relaxed) {
                    tracing::info!("event log and bus answer again");
                }
            }
            // A corrupt entry is about one tenant's data, not about reaching the store.
            Err(RealtimeError::Corrupt(_)) => {}
            Err(e) => {
                // Counted from the failure, not from the call's start: a call that
                // timed out must not let the next one wait again at once.
                let failed_at = health.epoch.elapsed().as_millis() as u64;
                let retry = health.timeouts.retry_after.as_millis() as u64;
                health
                    .down_until_ms
                    .store(failed_at.max(1) + retry, Ordering::Relaxed);
                if !health.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(what, error = %e, "event log or bus failed; serving with degraded watermarks until it answers");
                }
            }
        }
        result
    }
}
