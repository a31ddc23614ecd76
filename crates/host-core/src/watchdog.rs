//! The last resort of the run-to-exit path: a thread that ends the process
//! when the stop overruns its timeout, even if every runtime thread is
//! blocked.

use std::sync::mpsc;
use std::time::Duration;

use crate::ServiceStates;
use crate::error::exit_code;
use crate::state::ServiceState;

/// How long past the shutdown timeout the watchdog waits: long enough for
/// the host's own timeout handling (one more poll, abort, a short wait for
/// aborted tasks) to finish first, short enough that the process never
/// outlives the timeout by more than a second.
pub(crate) const GRACE: Duration = Duration::from_millis(750);

pub(crate) struct Watchdog {
    disarm: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    pub(crate) fn arm(shutdown_timeout: Duration, states: ServiceStates) -> Self {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("host-shutdown-watchdog".into())
            .spawn(move || {
                if disarmed.recv_timeout(shutdown_timeout + GRACE)
                    != Err(mpsc::RecvTimeoutError::Timeout)
                {
                    return;
                }
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
                tracing::error!(target: "host::lifetime",
                    "shutdown timed out after {shutdown_timeout:?}; still running: {} \
                     (the host cannot make progress: a thread is blocked); exiting",
                    if still_running.is_empty() { "none".to_owned() } else { still_running.join(", ") });
                std::process::exit(i32::from(exit_code::SHUTDOWN_TIMED_OUT));
            });
        Self {
            disarm: spawned.ok().map(|_| disarm),
        }
    }

    pub(crate) fn disarm(mut self) {
        self.disarm.take();
    }
}
