//! The last resort of the run-to-exit path: a thread that ends the process
//! when a stop overruns its timeout, even if every runtime thread is blocked.

use std::sync::mpsc;
use std::time::Duration;

use futures::future::{self, Either};
use tokio_util::sync::CancellationToken;

use crate::error::exit_code;
use crate::state::ServiceState;
use crate::{ApplicationLifetime, ServiceStates};

/// How long past the shutdown timeout the watchdog waits: long enough for
/// the host's own timeout handling (overtime, abort, disposal) to finish
/// first, short enough that the process never outlives the timeout by more
/// than a second.
pub(crate) const GRACE: Duration = Duration::from_millis(750);

/// Counts from the moment a stop is requested, on a thread of its own, so
/// that neither a blocked runtime nor a blocked host task can stop it.
pub(crate) struct Watchdog {
    disarmed: CancellationToken,
    disarm: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    pub(crate) fn arm(
        lifetime: &ApplicationLifetime,
        shutdown_timeout: Duration,
        states: ServiceStates,
    ) -> Self {
        let disarmed = CancellationToken::new();
        let (disarm, wait) = mpsc::channel::<()>();
        let stop_requested = lifetime.stop_requested();
        let cancelled = disarmed.clone();
        let spawned = std::thread::Builder::new()
            .name("host-shutdown-watchdog".into())
            .spawn(move || {
                let requested = futures::executor::block_on(future::select(
                    Box::pin(stop_requested),
                    Box::pin(cancelled.cancelled_owned()),
                ));
                if matches!(requested, Either::Right(_)) {
                    return;
                }
                if wait.recv_timeout(shutdown_timeout + GRACE)
                    != Err(mpsc::RecvTimeoutError::Timeout)
                {
                    return;
                }
                expire(shutdown_timeout, &states);
            });
        Self {
            disarmed,
            disarm: spawned.ok().map(|_| disarm),
        }
    }

    pub(crate) fn disarm(mut self) {
        self.disarmed.cancel();
        self.disarm.take();
    }
}

fn expire(shutdown_timeout: Duration, states: &ServiceStates) {
    let still_running: Vec<String> = states
        .snapshot()
        .into_iter()
        .filter(|status| {
            matches!(
                status.state,
                ServiceState::Starting | ServiceState::Running | ServiceState::Stopping
            )
        })
        .map(|status| status.name.to_string())
        .collect();
    let log = std::panic::catch_unwind(|| {
        tracing::error!(target: crate::LIFETIME_TARGET,
            "shutdown timed out after {shutdown_timeout:?}; still running: {} \
             (the host cannot make progress: a thread is blocked); exiting",
            if still_running.is_empty() { "none".to_owned() } else { still_running.join(", ") });
    });
    drop(log);
    std::process::exit(i32::from(exit_code::SHUTDOWN_TIMED_OUT));
}
