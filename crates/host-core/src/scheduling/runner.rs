//! The schedule loop: sleeps until each tick, starts the run, applies the
//! overlap and catch-up rules, and returns when the service stops or a run
//! fails.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::SystemTime;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Notify, watch};
use tokio::task::JoinError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::clock::{Now, WallClock};
use super::events::{ScheduleEvents, SkipReason};
use super::schedule::Overlap;
use super::timetable::{Anchor, Due, Scheduled, Tick, Timetable, Wake};
use crate::ServiceError;
use crate::services::failure::panic_message;

/// What one run is told.
#[derive(Clone, Debug)]
pub(crate) struct RunInfo {
    /// 1 for the loop's first run, then counting up (run-now included).
    pub(crate) number: u64,
    /// The wall time the run was due: its tick's (jitter included), or
    /// when "run now" was asked.
    pub(crate) scheduled: SystemTime,
    /// Why the run was made.
    pub(crate) trigger: Trigger,
    /// Cancelled when the service stops (a child of its stopping token), or
    /// by [`Overlap::CancelRunning`] for a newer run.
    pub(crate) token: CancellationToken,
    /// The tick, without jitter (the same on every instance), for a run on
    /// schedule; `None` for "run now".
    pub(crate) tick: Option<SystemTime>,
    /// Earlier ticks whose claims may be recovered first (a cluster-wide
    /// schedule at least once), newest first.
    pub(crate) earlier: Vec<SystemTime>,
    /// The overlap policy in force.
    pub(crate) overlap: Overlap,
}

/// Why a run was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Its tick came (possibly for several missed ticks, caught up).
    Schedule,
    /// "Run now" was asked.
    RunNow,
}

/// What the loop reads besides its callback.
pub(crate) struct ScheduleInputs {
    /// The schedule; a new value (a reloaded configuration) takes effect at
    /// once: the next tick is computed from it. A dropped sender just ends
    /// the reloads.
    pub(crate) timetable: watch::Receiver<Timetable>,
    /// The wall clock cron times are read on.
    pub(crate) clock: Arc<dyn WallClock>,
    /// The service's stopping token: the loop returns when it fires.
    pub(crate) stopping: CancellationToken,
    /// Asks for a run out of schedule, still under the overlap policy.
    /// Several asks before the loop sees them make one run.
    pub(crate) run_now: Arc<Notify>,
    /// Where the loop reports.
    pub(crate) events: Arc<dyn ScheduleEvents>,
    /// A cluster-wide schedule: on start, the latest tick before it within
    /// the catch-up window is run too (its claim decides whether here).
    pub(crate) misfire_on_start: bool,
    /// A cluster-wide schedule at least once, with this claim deadline:
    /// each run on schedule is told the earlier ticks to recover.
    pub(crate) recovery: Option<std::time::Duration>,
}

/// Runs the schedule until the stopping token fires or a run fails.
///
/// Each run is a task of its own, started by `start_run`, so that ticks are
/// seen while it runs; a run never overlaps itself (see [`Overlap`]). A
/// panic in a run is caught and becomes its error.
///
/// Returns:
/// - `Err` with the first failing run's error (or panic), at once: a run
///   never overlaps itself, so no other run is going then; a run queued
///   behind it is dropped. The host's restart policy then applies to the
///   whole loop.
/// - `Ok(())` once the stopping token has fired and the run in progress, if
///   any, has ended: the loop cancels nothing itself (the run's token is a
///   child of the stopping token, already cancelled) and waits for it (the
///   host bounds that wait); a queued run is dropped. If that last run
///   fails, its error is returned.
///
/// An error from a run that [`Overlap::CancelRunning`] cancelled is logged
/// and is not a failure: ending with an error is how many runs stop midway.
pub(crate) async fn run_schedule<F>(
    inputs: ScheduleInputs,
    start_run: F,
) -> Result<(), ServiceError>
where
    F: FnMut(RunInfo) -> BoxFuture<'static, Result<(), ServiceError>> + Send,
{
    let ScheduleInputs {
        timetable: mut timetables,
        clock,
        stopping,
        run_now,
        events,
        misfire_on_start,
        recovery,
    } = inputs;
    let mut runs = Runs {
        timetable: timetables.borrow_and_update().clone(),
        stopping: stopping.clone(),
        events,
        start_run,
        started: 0,
        running: None,
        queued: None,
        shown: None,
        recovery,
    };
    let start = Now::read(clock.as_ref());
    let mut anchor = Anchor::Start(start);
    let mut tick = runs.timetable.first_tick(start);
    runs.show_next(tick);
    if misfire_on_start && let Some((scheduled, base)) = runs.timetable.missed_at_start(start) {
        tracing::debug!(
            service = runs.timetable.service(),
            "the tick of {} fell before the start, within the catch-up window of {}: it runs \
             here unless another instance claimed it",
            humantime::format_rfc3339_millis(base),
            humantime::format_duration(runs.timetable.misfire_window())
        );
        runs.trigger(Pending {
            scheduled,
            trigger: Trigger::Schedule,
            tick: Some(base),
        });
    }
    let mut reloads = true;

    let ended = loop {
        let deadline = tick.map(|tick| runs.timetable.deadline(tick, Now::read(clock.as_ref())));
        tokio::select! {
            // Stopping first: once asked to stop, nothing new starts.
            biased;
            () = stopping.cancelled() => break Ok(()),
            joined = join(&mut runs.running) => {
                if let Err(error) = runs.ended(joined) {
                    break Err(error);
                }
            }
            () = sleep_until(deadline) => {
                let now = Now::read(clock.as_ref());
                // `deadline` is `Some` only with a tick.
                let Some(due_tick) = tick else { continue };
                match runs.timetable.on_wake(due_tick, now) {
                    Wake::Early => tick = runs.timetable.next_tick(anchor, now),
                    Wake::Due(due) => {
                        anchor = Anchor::Tick(due.latest);
                        tick = due.next;
                        runs.came_due(&due);
                    }
                }
                runs.show_next(tick);
            }
            () = run_now.notified() => {
                let now = Now::read(clock.as_ref());
                runs.trigger(Pending {
                    scheduled: Scheduled { instant: now.instant, wall: now.wall },
                    trigger: Trigger::RunNow,
                    tick: None,
                });
            }
            changed = timetables.changed(), if reloads => match changed {
                Ok(()) => {
                    runs.timetable = timetables.borrow_and_update().clone();
                    tracing::info!(service = runs.timetable.service(),
                        "schedule reloaded: {}", runs.timetable.description());
                    tick = runs.timetable.next_tick(anchor, Now::read(clock.as_ref()));
                    runs.show_next(tick);
                }
                Err(_) => reloads = false,
            },
        }
    };
    runs.finish(ended).await
}

/// The runs of one loop: the one going, the one queued behind it.
struct Runs<F> {
    timetable: Timetable,
    stopping: CancellationToken,
    events: Arc<dyn ScheduleEvents>,
    start_run: F,
    /// How many runs were started.
    started: u64,
    running: Option<Running>,
    queued: Option<Pending>,
    /// The next tick last reported, so that only changes are.
    shown: Option<Option<SystemTime>>,
    /// The claim deadline of a cluster-wide schedule at least once.
    recovery: Option<std::time::Duration>,
}

/// A run in progress.
struct Running {
    number: u64,
    token: CancellationToken,
    /// Aborts the run if the loop is dropped unfinished (the host aborts a
    /// service that outlives its shutdown timeout): no run outlives its loop.
    handle: AbortOnDropHandle<Outcome>,
    /// Cancelled by [`Overlap::CancelRunning`] for a newer run.
    superseded: bool,
}

/// A run to start: its due time and why.
#[derive(Clone, Copy, Debug)]
struct Pending {
    scheduled: Scheduled,
    trigger: Trigger,
    /// The tick without jitter, for a run on schedule.
    tick: Option<SystemTime>,
}

/// What a run's task returns: the run's result, or its panic's payload.
type Outcome = Result<Result<(), ServiceError>, Box<dyn Any + Send>>;

impl<F> Runs<F>
where
    F: FnMut(RunInfo) -> BoxFuture<'static, Result<(), ServiceError>> + Send,
{
    /// Reports the next tick's wall time if it changed.
    fn show_next(&mut self, tick: Option<Tick>) {
        let at = tick.map(|tick| self.timetable.wall_time(tick));
        if self.shown != Some(at) {
            self.shown = Some(at);
            self.events.next_tick(at);
        }
    }

    /// Ticks came due: report the missed ones, run the latest if it is to be.
    fn came_due(&mut self, due: &Due) {
        if due.missed > 0 {
            let caught_up = due.run.is_some();
            self.skipped(due.missed, SkipReason::Missed { caught_up });
            let window = humantime::format_duration(self.timetable.catch_up());
            let late = humantime::format_duration(due.late);
            if caught_up {
                tracing::warn!(
                    service = self.timetable.service(),
                    skipped = due.missed,
                    "{} missed: the schedule woke {late} after the first; one run is made \
                     for them (catch-up window {window})",
                    ticks(due.missed + 1)
                );
            } else {
                tracing::warn!(
                    service = self.timetable.service(),
                    skipped = due.missed,
                    "{} missed: the schedule woke {late} after the first, and the latest is \
                     more than the catch-up window of {window} ago; skipped",
                    ticks(due.missed)
                );
            }
        }
        if let Some(scheduled) = due.run {
            self.trigger(Pending {
                scheduled,
                trigger: Trigger::Schedule,
                tick: Some(due.latest.wall()),
            });
        }
    }

    /// A tick or "run now": start a run, or apply the overlap policy.
    fn trigger(&mut self, pending: Pending) {
        let Some(running) = &mut self.running else {
            self.start(pending);
            return;
        };
        let number = running.number;
        let what = describe(pending);
        let overlap = self.timetable.overlap();
        match overlap {
            Overlap::Skip => {
                self.skip_overlap(&what, format_args!("run {number} is still going"), overlap);
            }
            Overlap::BufferOne if self.queued.is_some() => self.skip_overlap(
                &what,
                format_args!("run {number} is still going and a run is queued already"),
                overlap,
            ),
            Overlap::BufferOne => self.queued = Some(pending),
            Overlap::CancelRunning => {
                if !running.superseded {
                    running.superseded = true;
                    running.token.cancel();
                    tracing::info!(
                        service = self.timetable.service(),
                        "run {number} cancelled for {what} (overlap: {overlap}); \
                         the new run starts when it has ended"
                    );
                }
                if let Some(replaced) = self.queued.replace(pending) {
                    self.skip_overlap(
                        &describe(replaced),
                        format_args!("run {number} is still ending; {what} replaces it"),
                        overlap,
                    );
                }
            }
        }
    }

    fn skip_overlap(&self, what: &str, why: std::fmt::Arguments<'_>, overlap: Overlap) {
        self.skipped(1, SkipReason::Overlap);
        tracing::warn!(
            service = self.timetable.service(),
            skipped = 1,
            "{what} skipped: {why} (overlap: {overlap})"
        );
    }

    fn skipped(&self, count: u64, reason: SkipReason) {
        self.events.skipped(count, reason);
    }

    fn start(&mut self, pending: Pending) {
        self.started += 1;
        let number = self.started;
        let token = self.stopping.child_token();
        let earlier = match (self.recovery, pending.tick) {
            (Some(deadline), Some(tick)) => self.timetable.recovery_candidates(tick, deadline),
            _ => Vec::new(),
        };
        let run = RunInfo {
            number,
            scheduled: pending.scheduled.wall,
            trigger: pending.trigger,
            token: token.clone(),
            tick: pending.tick,
            earlier,
            overlap: self.timetable.overlap(),
        };
        let lateness = Instant::now().saturating_duration_since(pending.scheduled.instant);
        self.events.run_started(&run, lateness);
        tracing::debug!(
            service = self.timetable.service(),
            "run {number} starts, {} after {}",
            humantime::format_duration(lateness),
            describe(pending)
        );
        let run = (self.start_run)(run);
        // In the loop's span (the service's), which a new task would not be.
        let handle = AbortOnDropHandle::new(tokio::spawn(
            AssertUnwindSafe(run)
                .catch_unwind()
                .instrument(tracing::Span::current()),
        ));
        self.running = Some(Running {
            number,
            token,
            handle,
            superseded: false,
        });
    }

    /// The running run ended: judge it, then start the queued run, if any.
    fn ended(&mut self, joined: Result<Outcome, JoinError>) -> Result<(), ServiceError> {
        let running = self.running.take().expect("only a running run ends");
        self.judge(&running, joined)?;
        if let Some(pending) = self.queued.take() {
            self.start(pending);
        }
        Ok(())
    }

    fn judge(
        &self,
        running: &Running,
        joined: Result<Outcome, JoinError>,
    ) -> Result<(), ServiceError> {
        let number = running.number;
        match joined {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) if running.superseded => {
                tracing::warn!(
                    service = self.timetable.service(),
                    "run {number} ended with an error after it was cancelled for a newer run \
                     (overlap: cancel_running); not a failure: {error:#}"
                );
                Ok(())
            }
            Ok(Ok(Err(error))) => Err(error.context(format!("scheduled run {number} failed"))),
            Ok(Err(payload)) => Err(anyhow::anyhow!(
                "scheduled run {number} panicked: {}",
                panic_message(payload.as_ref())
            )),
            Err(error) => Err(anyhow::anyhow!(
                "scheduled run {number} did not finish: {error}"
            )),
        }
    }

    /// After the loop: await the run in progress (the queued one is dropped).
    async fn finish(mut self, ended: Result<(), ServiceError>) -> Result<(), ServiceError> {
        self.queued = None;
        let Some(mut running) = self.running.take() else {
            return ended;
        };
        let joined = (&mut running.handle).await;
        ended.and(self.judge(&running, joined))
    }
}

/// Waits for the running run's task; never completes without one.
async fn join(running: &mut Option<Running>) -> Result<Outcome, JoinError> {
    match running {
        Some(running) => (&mut running.handle).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`; never completes without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// "the tick of 2026-01-01T00:00:10Z" or "run now", for logs.
fn describe(pending: Pending) -> String {
    let at = humantime::format_rfc3339_millis(pending.scheduled.wall);
    match pending.trigger {
        Trigger::Schedule => format!("the tick of {at}"),
        Trigger::RunNow => format!("run now (asked at {at})"),
    }
}

/// "1 tick", "3 ticks".
fn ticks(count: u64) -> String {
    match count {
        1 => "1 tick".to_owned(),
        _ => format!("{count} ticks"),
    }
}

#[cfg(test)]
mod tests;
