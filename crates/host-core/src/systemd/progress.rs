//! `EXTEND_TIMEOUT_USEC` while a long start or stop is within the host's
//! own bound, with a status line naming what it waits for.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Systemd, Task};
use crate::ServiceStates;
use crate::services::state::ServiceState;

/// How long a start or a stop runs before systemd hears that it goes on,
/// and how often after that: well within systemd's default timeouts (90 s).
const EVERY: Duration = Duration::from_secs(2);

/// A start or a stop, as systemd hears of it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Extender {
    /// The start: waits on the services still `starting`.
    Start,
    /// The stop: waits on the services still `stopping` (or `running`).
    Stop,
}

impl Extender {
    /// Every [`EVERY`], until `deadline`: `EXTEND_TIMEOUT_USEC` with the rest
    /// of the host's own bound (systemd then waits that long from now, not
    /// less than it already would), and a `STATUS=` naming the services
    /// still being waited on, as the host's timeout errors name them.
    /// Ends when dropped (the start or stop ended) or at the deadline.
    pub(crate) fn spawn(
        self,
        systemd: Arc<Systemd>,
        states: ServiceStates,
        deadline: Instant,
    ) -> Task {
        Task::new(tokio::spawn(async move {
            let mut next = Instant::now() + EVERY;
            while next < deadline {
                tokio::time::sleep_until(next).await;
                let rest = deadline.saturating_duration_since(Instant::now());
                systemd.notifier.send(&format!(
                    "EXTEND_TIMEOUT_USEC={}\nSTATUS={}",
                    rest.as_micros(),
                    self.status(&states)
                ));
                next += EVERY;
            }
        }))
    }

    fn status(self, states: &ServiceStates) -> String {
        let (phase, waited_on): (&str, fn(&ServiceState) -> bool) = match self {
            Self::Start => ("starting", |state| matches!(state, ServiceState::Starting)),
            Self::Stop => ("stopping", |state| {
                matches!(state, ServiceState::Stopping | ServiceState::Running)
            }),
        };
        let names = states.names_where(waited_on);
        if names.is_empty() {
            phase.to_owned()
        } else {
            format!("{phase}: waiting for {}", names.join(", "))
        }
    }
}
