//! What the schedule loop tells the host as it goes: the next tick (for the
//! service's state), each run's lateness (for metrics), and skipped ticks.

use std::time::{Duration, SystemTime};

use super::runner::RunInfo;

/// Why ticks got no run of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SkipReason {
    /// A run was still going ([`Overlap`](super::Overlap) skipped the tick,
    /// or replaced a queued one).
    Overlap,
    /// The loop woke after the ticks' time. `caught_up`: one run was made
    /// for them (and these are the others); otherwise none was.
    Missed { caught_up: bool },
}

/// Receives the schedule loop's events. Every method is called on the
/// loop's task and must return quickly; each does nothing by default.
pub(crate) trait ScheduleEvents: Send + Sync {
    /// The wall time of the next tick, jitter included; `None` when the
    /// schedule has no further tick (a cron expression with a past year).
    /// Called when it changes.
    fn next_tick(&self, _at: Option<SystemTime>) {}

    /// A run starts, `lateness` after its scheduled time.
    fn run_started(&self, _run: &RunInfo, _lateness: Duration) {}

    /// `count` ticks got no run of their own, for `reason`.
    fn skipped(&self, _count: u64, _reason: SkipReason) {}
}

/// No one listening.
impl ScheduleEvents for () {}
