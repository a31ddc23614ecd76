//! systemd's watchdog (`WatchdogSec=`): `WATCHDOG=1` at half the interval.

use std::sync::Arc;
use std::time::Duration;

use super::{Systemd, Task};
use crate::ServiceStates;

/// The watchdog's interval, when it is ours to feed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watchdog {
    interval: Duration,
}

impl Watchdog {
    /// From `WATCHDOG_USEC` and `WATCHDOG_PID`: set, and the pid unset or
    /// `pid` (a child inherits the variables; the watchdog is its parent's).
    pub(crate) fn from_vars(
        usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> Option<Self> {
        let usec: u64 = usec?.trim().parse().ok().filter(|&usec| usec > 0)?;
        if let Some(owner) = watchdog_pid
            && owner.trim().parse::<u32>().ok() != Some(pid)
        {
            return None;
        }
        Some(Self {
            interval: Duration::from_micros(usec),
        })
    }

    /// Feeds the watchdog every half interval, from a task on the host's
    /// runtime: a runtime that can no longer run tasks stops feeding it,
    /// and systemd restarts the unit, which is the point. Runs until the
    /// returned task is dropped (at the end of the run-to-exit path).
    pub(crate) fn spawn(self, systemd: Arc<Systemd>, states: ServiceStates) -> Task {
        let period = self.interval / 2;
        Task::new(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            // After a stall, one ping, not a burst: systemd wants a recent
            // one, not a count.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut withheld = false;
            loop {
                ticks.tick().await;
                // Alive enough to feed the watchdog: its runtime runs this
                // task, and no service is hung beyond what its restart
                // policy mends; so a hung worker, not only a dead runtime,
                // makes systemd restart the unit.
                if states.is_live() {
                    withheld = false;
                    systemd.notifier.send("WATCHDOG=1");
                } else if !withheld {
                    withheld = true;
                    tracing::error!(target: crate::LIFETIME_TARGET,
                        "a service is hung: no longer feeding systemd's watchdog");
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_when_the_pid_is_unset_or_ours() {
        let interval = |w: Option<Watchdog>| w.map(|w| w.interval);
        let two = Some(Duration::from_secs(2));
        assert_eq!(interval(Watchdog::from_vars(Some("2000000"), None, 7)), two);
        assert_eq!(
            interval(Watchdog::from_vars(Some("2000000"), Some("7"), 7)),
            two
        );
        assert!(Watchdog::from_vars(Some("2000000"), Some("8"), 7).is_none());
        assert!(Watchdog::from_vars(Some("0"), None, 7).is_none());
        assert!(Watchdog::from_vars(Some("soon"), None, 7).is_none());
        assert!(Watchdog::from_vars(None, None, 7).is_none());
    }
}
