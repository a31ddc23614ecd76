//! The last resort of the run-to-exit path: a thread that ends the process
//! when a stop overruns its timeout, even if every runtime thread is blocked.

use std::sync::mpsc;
use std::time::Duration;

use futures::future::{self, Either};
use tokio_util::sync::CancellationToken;

use crate::error::exit_code;
use crate::services::state::ServiceState;
use crate::{ApplicationLifetime, ServiceStates};

/// How long past the shutdown timeout the watchdog waits: long enough for
/// the host's own timeout handling (overtime, abort, disposal) to finish
/// first, short enough that the process never outlives the timeout by more
/// than a second.
pub(crate) const GRACE: Duration = Duration::from_millis(750);

/// Counts from the moment a stop is requested, or a stop begins without
/// being requested (the rollback of a failed start), on a thread of its own,
/// so that neither a blocked runtime nor a blocked host task can stop it.
/// Dropping it disarms it.
pub(crate) struct Watchdog {
    disarmed: CancellationToken,
    disarm: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    pub(crate) fn arm(
        lifetime: &ApplicationLifetime,
        stop_began: &CancellationToken,
        shutdown_timeout: Duration,
        states: ServiceStates,
    ) -> Self {
        let disarmed = CancellationToken::new();
        let (disarm, wait) = mpsc::channel::<()>();
        let stop_requested = lifetime.stop_requested();
        let stop_began = stop_began.clone().cancelled_owned();
        let cancelled = disarmed.clone();
        let spawned = std::thread::Builder::new()
            .name("host-shutdown-watchdog".into())
            .spawn(move || {
                let stopping = future::select(Box::pin(stop_requested), Box::pin(stop_began));
                let requested = futures::executor::block_on(future::select(
                    stopping,
                    Box::pin(cancelled.cancelled_owned()),
                ));
                if matches!(requested, Either::Right(_)) {
                    return;
                }
                // `recv_timeout` waits for good when the limit overflows.
                let limit = shutdown_timeout.saturating_add(GRACE);
                if wait.recv_timeout(limit) != Err(mpsc::RecvTimeoutError::Timeout) {
                    return;
                }
                expire(shutdown_timeout, &states);
            });
        Self {
            disarmed,
            disarm: spawned.ok().map(|_| disarm),
        }
    }

    pub(crate) fn disarm(self) {
        drop(self);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.disarmed.cancel();
        self.disarm.take();
    }
}

fn expire(shutdown_timeout: Duration, states: &ServiceStates) {
    let still_running = states.names_where(|state| {
        matches!(
            state,
            ServiceState::Starting | ServiceState::Running | ServiceState::Stopping
        )
    });
    crate::logging::log_guarded(|| {
        tracing::error!(target: crate::LIFETIME_TARGET,
            "shutdown timed out after {shutdown_timeout:?}; still running: {} \
             (the host cannot make progress: a thread is blocked); exiting",
            if still_running.is_empty() { "none".to_owned() } else { still_running.join(", ") });
    });
    std::process::exit(i32::from(exit_code::SHUTDOWN_TIMED_OUT));
}
