//! [`Timetable`]: a checked [`Schedule`], answering the schedule loop's two
//! questions: when is the next tick, and, on waking, run now or skip.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::clock::{Now, far_future};
use super::cron::CronTimes;
use super::error::{Problem, ScheduleError};
use super::jitter;
use super::schedule::{Overlap, Schedule, When};

/// A catch-up window under this counts as this: a timer that wakes a few
/// milliseconds late has not missed its tick.
const MIN_CATCH_UP: Duration = Duration::from_secs(1);

/// The longest the loop sleeps on a cron schedule before it reads the wall
/// clock again: the monotonic clock stands still while the machine is
/// suspended and ignores a wall clock that is set, so a long sleep alone
/// would notice neither until it ended.
const MAX_CRON_SLEEP: Duration = Duration::from_secs(60);

/// How many cron ticks a wake-up counts one by one. A loop that slept
/// through more (a day of an every-second expression) reports this many;
/// its decision, made on the ticks near now, does not depend on the count.
const MAX_COUNTED: u64 = 10_000;

/// A [`Schedule`] checked for one service, ready for the schedule loop.
#[derive(Clone, Debug)]
pub(crate) struct Timetable {
    service: Arc<str>,
    description: Arc<str>,
    ticks: Ticks,
    overlap: Overlap,
    catch_up: Duration,
    /// The catch-up window as given (a zero one is zero): how far back a
    /// cluster-wide schedule looks for a missed tick on start.
    misfire: Duration,
    jitter: Duration,
}

/// Where the ticks come from.
#[derive(Clone, Debug)]
enum Ticks {
    Every {
        period: Duration,
        starting_now: bool,
    },
    /// Shared: a timetable is cloned out of the reload channel, and a
    /// parsed expression is large.
    Cron(Arc<CronTimes>),
}

/// One tick, before jitter: its time on the monotonic clock (what an
/// interval counts on) and on the wall clock (what a cron schedule counts
/// on); the other is mapped when the tick is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tick {
    instant: Instant,
    wall: SystemTime,
}

impl Tick {
    /// The tick's wall time without jitter: what every instance computes
    /// alike, and what a cluster-wide tick is claimed as.
    pub(crate) fn wall(&self) -> SystemTime {
        self.wall
    }
}

/// What the next tick follows: the loop's start, or the latest tick that
/// came due.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Anchor {
    Start(Now),
    Tick(Tick),
}

/// When a run was due: the tick's time (with jitter) on both clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scheduled {
    pub(crate) instant: Instant,
    pub(crate) wall: SystemTime,
}

/// What to do on waking for a tick.
#[derive(Debug)]
pub(crate) enum Wake {
    /// The tick is not due yet: the sleep was cut short for a wall-clock
    /// check, or the wall clock was set back. Compute the tick again.
    Early,
    /// The tick and maybe later ones are due.
    Due(Due),
}

/// The ticks due on waking, and what to do about them.
#[derive(Debug)]
pub(crate) struct Due {
    /// The one run to make, for the latest due tick; `None` when the ticks
    /// are all further behind than the catch-up window.
    pub(crate) run: Option<Scheduled>,
    /// The due ticks that get no run of their own.
    pub(crate) missed: u64,
    /// How late the first due tick is: how long the loop overslept.
    pub(crate) late: Duration,
    /// The latest due tick, which the next one follows.
    pub(crate) latest: Tick,
    /// The first tick after now; `None` when the schedule has no more.
    pub(crate) next: Option<Tick>,
}

impl Timetable {
    /// Checks `schedule` for the service `service`; `now` is when a cron
    /// expression must still match some later time.
    pub(super) fn compile(
        schedule: &Schedule,
        service: &str,
        now: SystemTime,
    ) -> Result<Self, ScheduleError> {
        let error = |problem| ScheduleError::new(service, problem);
        let ticks = match &schedule.when {
            When::Every(period) => {
                if period.is_zero() {
                    return Err(error(Problem::ZeroPeriod));
                }
                if let Some(name) = &schedule.time_zone {
                    return Err(error(Problem::TimeZoneOnInterval {
                        name: name.clone(),
                        schedule: schedule.to_string(),
                    }));
                }
                Ticks::Every {
                    period: *period,
                    starting_now: schedule.starting_now,
                }
            }
            When::Cron(expression) => {
                let cron =
                    CronTimes::parse(expression, schedule.time_zone.as_deref()).map_err(error)?;
                if schedule.starting_now {
                    return Err(error(Problem::StartingNowOnCron {
                        schedule: schedule.to_string(),
                    }));
                }
                if cron.next_after(now).is_none() {
                    return Err(error(Problem::NeverFires {
                        expression: expression.clone(),
                        after: now,
                    }));
                }
                Ticks::Cron(Arc::new(cron))
            }
        };
        Ok(Self {
            service: service.into(),
            description: schedule.to_string().into(),
            ticks,
            overlap: schedule.overlap,
            catch_up: schedule.catch_up.max(MIN_CATCH_UP),
            misfire: schedule.catch_up,
            jitter: jitter::offset(service, schedule.jitter_key.as_deref(), schedule.jitter),
        })
    }

    /// The service the schedule is for.
    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// The schedule, as its `Display` wrote it.
    pub(crate) fn description(&self) -> &str {
        &self.description
    }

    /// What a tick does while a run is going.
    pub(crate) fn overlap(&self) -> Overlap {
        self.overlap
    }

    /// How late a missed tick may be for one run to be made for it (at
    /// least a second).
    pub(crate) fn catch_up(&self) -> Duration {
        self.catch_up
    }

    /// Whether the ticks are a cron expression's (wall-clock times every
    /// instance agrees on), not an interval's.
    pub(crate) fn is_cron(&self) -> bool {
        matches!(self.ticks, Ticks::Cron(_))
    }

    /// The catch-up window as configured (zero stays zero).
    pub(crate) fn misfire_window(&self) -> Duration {
        self.misfire
    }

    /// For a cluster-wide schedule starting at `start`: the latest cron tick
    /// due before it, if it is within the catch-up window (none with a zero
    /// window): when it was due, and its time without jitter.
    pub(crate) fn missed_at_start(&self, start: Now) -> Option<(Scheduled, SystemTime)> {
        let Ticks::Cron(cron) = &self.ticks else {
            return None;
        };
        if self.misfire.is_zero() {
            return None;
        }
        let latest_due = start.wall.checked_sub(self.jitter)?;
        let base = latest_at_or_before(cron, latest_due, self.misfire)?;
        let at = base + self.jitter;
        let late = start.wall.duration_since(at).ok()?;
        (late <= self.misfire).then(|| {
            (
                Scheduled {
                    instant: start.instant_at(at),
                    wall: at,
                },
                base,
            )
        })
    }

    /// For a cluster-wide schedule at least once, on the tick `tick`
    /// (without jitter): the earlier ticks whose claims may have passed
    /// `deadline` unfinished, newest first. They are the latest tick at
    /// least `deadline` before `tick` and the one before it: a claim made
    /// a little after its tick is not yet past its deadline at the first
    /// of these ticks, and is at the next. With a deadline shorter than
    /// the period, the first is the tick just before.
    pub(crate) fn recovery_candidates(
        &self,
        tick: SystemTime,
        deadline: Duration,
    ) -> Vec<SystemTime> {
        const LOOK_BACK: Duration = Duration::from_secs(400 * 86_400);
        let Ticks::Cron(cron) = &self.ticks else {
            return Vec::new();
        };
        let Some(until) = tick.checked_sub(deadline.max(Duration::from_millis(1))) else {
            return Vec::new();
        };
        let mut found = Vec::with_capacity(2);
        if let Some(first) = latest_at_or_before(cron, until, LOOK_BACK) {
            found.push(first);
            if let Some(second) = first
                .checked_sub(Duration::from_millis(1))
                .and_then(|before| latest_at_or_before(cron, before, LOOK_BACK))
            {
                found.push(second);
            }
        }
        found
    }

    /// The jitter offset every tick is shifted by.
    #[cfg(test)]
    pub(crate) fn jitter(&self) -> Duration {
        self.jitter
    }

    /// The first tick of a loop that starts at `start`.
    pub(crate) fn first_tick(&self, start: Now) -> Option<Tick> {
        match self.ticks {
            Ticks::Every {
                starting_now: true, ..
            } => Some(Tick {
                instant: start.instant,
                wall: start.wall,
            }),
            _ => self.next_tick(Anchor::Start(start), start),
        }
    }

    /// The first tick after `now` that follows `anchor`: an interval keeps
    /// the grid of the anchor (a reloaded period counts from the latest
    /// tick); a cron schedule takes its next time after now.
    ///
    /// If the wall clock was set back, a cron schedule does not run a time
    /// again that it already ran: it waits for the time after the latest
    /// tick, as long as the clock went back no further than the catch-up
    /// window. Further back than that, it goes on from the clock's new
    /// time, as it does when the clock jumps ahead by more than the window:
    /// a clock that was wrong is trusted once it is set right.
    pub(crate) fn next_tick(&self, anchor: Anchor, now: Now) -> Option<Tick> {
        match &self.ticks {
            Ticks::Every { period, .. } => {
                let origin = match anchor {
                    Anchor::Start(start) => start.instant,
                    Anchor::Tick(tick) => tick.instant,
                };
                let base = self.interval_after(origin, *period, now.instant)?;
                Some(Tick {
                    instant: base,
                    wall: now.wall_at(base),
                })
            }
            Ticks::Cron(cron) => {
                let floor = match anchor {
                    Anchor::Start(start) => start.wall,
                    Anchor::Tick(tick) => tick.wall + self.jitter,
                };
                let from = match floor.duration_since(now.wall) {
                    Ok(back) if back <= self.catch_up => floor,
                    _ => now.wall,
                };
                self.cron_after(cron, from, now)
            }
        }
    }

    /// The tick's time, jitter included, on the wall clock: the "next run"
    /// a service's state shows.
    pub(crate) fn wall_time(&self, tick: Tick) -> SystemTime {
        tick.wall + self.jitter
    }

    /// The instant to sleep until for `tick`, read at `now`. A cron tick is
    /// mapped from the wall clock anew on every sleep, and no sleep is
    /// longer than a minute, so that a changed wall clock is seen.
    pub(crate) fn deadline(&self, tick: Tick, now: Now) -> Instant {
        match self.ticks {
            Ticks::Every { .. } => tick
                .instant
                .checked_add(self.jitter)
                .unwrap_or_else(|| far_future(tick.instant)),
            Ticks::Cron(_) => now
                .instant_at(self.wall_time(tick))
                .min(now.instant + MAX_CRON_SLEEP),
        }
    }

    /// On waking at `now` for `tick`: not due yet, or every tick due by now
    /// and whether one run is made for them (the latest at most the
    /// catch-up window late) or none.
    pub(crate) fn on_wake(&self, tick: Tick, now: Now) -> Wake {
        match &self.ticks {
            Ticks::Every { period, .. } => self.interval_wake(tick, *period, now),
            Ticks::Cron(cron) => self.cron_wake(cron, tick, now),
        }
    }

    /// The first tick base on the grid `origin + k × period` (k ≥ 1) whose
    /// time, jitter included, is after `now`.
    fn interval_after(&self, origin: Instant, period: Duration, now: Instant) -> Option<Instant> {
        let first = origin.checked_add(period)?;
        let first_at = first.checked_add(self.jitter)?;
        if first_at > now {
            return Some(first);
        }
        let periods = (now - first_at).as_nanos() / period.as_nanos() + 1;
        first.checked_add(times(period, periods)?)
    }

    fn interval_wake(&self, tick: Tick, period: Duration, now: Now) -> Wake {
        let Some(first_at) = tick.instant.checked_add(self.jitter) else {
            return Wake::Early;
        };
        if now.instant < first_at {
            return Wake::Early;
        }
        let late = now.instant - first_at;
        let later = late.as_nanos() / period.as_nanos();
        // `later` periods fit within `late`, which was a `Duration`.
        let behind = times(period, later).unwrap_or(late);
        let latest_at = first_at + behind;
        let latest = Tick {
            instant: tick.instant + behind,
            wall: now.wall_at(tick.instant + behind),
        };
        let due = u64::try_from(later).unwrap_or(u64::MAX).saturating_add(1);
        let run = (now.instant - latest_at <= self.catch_up).then(|| Scheduled {
            instant: latest_at,
            wall: now.wall_at(latest_at),
        });
        let next = latest.instant.checked_add(period).map(|base| Tick {
            instant: base,
            wall: now.wall_at(base),
        });
        Wake::Due(Due {
            missed: due - u64::from(run.is_some()),
            run,
            late,
            latest,
            next,
        })
    }

    /// The first cron tick whose time, jitter included, is after `after`.
    fn cron_after(&self, cron: &CronTimes, after: SystemTime, now: Now) -> Option<Tick> {
        let base = cron.next_after(after.checked_sub(self.jitter).unwrap_or(after))?;
        Some(Tick {
            instant: now.instant_at(base),
            wall: base,
        })
    }

    fn cron_wake(&self, cron: &CronTimes, tick: Tick, now: Now) -> Wake {
        let first_at = self.wall_time(tick);
        let Ok(late) = now.wall.duration_since(first_at) else {
            return Wake::Early;
        };
        // Ticks at or before `window_from` are further behind than the window.
        let window_from = now.wall.checked_sub(self.catch_up);
        let within = |at: SystemTime| window_from.is_none_or(|from| at > from);
        let (behind, latest, in_window) = if within(first_at) {
            (0, tick, Some(tick))
        } else {
            let from = window_from.unwrap_or(first_at);
            let (behind, latest) = self.count_cron(cron, tick, from, now);
            let in_window = self
                .cron_after(cron, from, now)
                .filter(|next| self.wall_time(*next) <= now.wall);
            (behind, latest, in_window)
        };
        let (missed, latest, run) = match in_window {
            Some(first) => {
                let (count, last) = self.count_cron(cron, first, now.wall, now);
                let at = self.wall_time(last);
                let run = Scheduled {
                    instant: now.instant_at(at),
                    wall: at,
                };
                (behind + count - 1, last, Some(run))
            }
            None => (behind, latest, None),
        };
        Wake::Due(Due {
            run,
            missed,
            late,
            latest,
            next: self.cron_after(cron, now.wall, now),
        })
    }

    /// Counts the cron ticks from `first` (due) while their time is at most
    /// `until`, up to [`MAX_COUNTED`]; returns the count and the last one
    /// counted.
    fn count_cron(
        &self,
        cron: &CronTimes,
        first: Tick,
        until: SystemTime,
        now: Now,
    ) -> (u64, Tick) {
        let (mut count, mut last) = (1, first);
        while count < MAX_COUNTED {
            match self.cron_after(cron, self.wall_time(last), now) {
                Some(next) if self.wall_time(next) <= until => {
                    count += 1;
                    last = next;
                }
                _ => break,
            }
        }
        (count, last)
    }
}

/// The latest time of `cron` at or before `at`, looking back at most
/// `limit`: the expression only tells the next time after another, so the
/// search starts a second back and doubles.
fn latest_at_or_before(cron: &CronTimes, at: SystemTime, limit: Duration) -> Option<SystemTime> {
    let mut span = Duration::from_secs(1).min(limit);
    loop {
        // A time exactly `span` back counts: `next_after` is strictly after.
        let from = at.checked_sub(span)?.checked_sub(Duration::from_nanos(1))?;
        if let Some(first) = cron.next_after(from).filter(|time| *time <= at) {
            let mut latest = first;
            let mut walked = 0;
            while let Some(next) = cron.next_after(latest).filter(|time| *time <= at) {
                latest = next;
                walked += 1;
                if walked >= MAX_COUNTED {
                    break;
                }
            }
            return Some(latest);
        }
        if span >= limit {
            return None;
        }
        span = span.saturating_mul(2).min(limit);
    }
}

/// `period × count`, if it fits in a `Duration`.
fn times(period: Duration, count: u128) -> Option<Duration> {
    let nanos = period.as_nanos().checked_mul(count)?;
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests;
