//! [`Schedule`]: when a periodic service runs, as written at registration or
//! in configuration.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::error::ScheduleError;
use super::timetable::Timetable;

/// When a periodic service runs: every fixed period, or at the times of a
/// cron expression; and what happens when a run is still going at the next
/// tick, when ticks were missed, and how far ticks are spread.
///
/// Nothing is checked when a schedule is written: the host checks it when
/// it is built, and reports a bad expression or time zone as a build error
/// naming the service. [`validate`](Self::validate) runs the same checks.
///
/// ```
/// use std::time::Duration;
/// use host_core::{Overlap, Schedule};
///
/// // Every 10 seconds, the first time 10 seconds after the start.
/// let poll = Schedule::every(Duration::from_secs(10));
/// assert_eq!(poll.to_string(), "every 10s");
///
/// // At second 0 of every fifth minute, Berlin time; a run still going at
/// // the next tick is cancelled in favour of the new one.
/// let cleanup = Schedule::cron("0 */5 * * * *")
///     .time_zone("Europe/Berlin")
///     .overlap(Overlap::CancelRunning)
///     .jitter(Duration::from_secs(30));
/// assert_eq!(cleanup.to_string(), r#"cron "0 */5 * * * *" (Europe/Berlin)"#);
/// assert!(cleanup.validate("app::Cleanup").is_ok());
///
/// // Checked when the host is built, or by `validate`.
/// let error = Schedule::cron("0 */5 * *").validate("app::Cleanup").unwrap_err();
/// assert!(error.to_string().starts_with(r#"`app::Cleanup`: invalid cron expression "0 */5 * *": "#));
/// ```
///
/// # Interval or cron
///
/// [`every`](Self::every) counts on the monotonic clock from the start of
/// the service: it does not move when the wall clock is set, and the ticks
/// stay on their grid (start + k × period) whatever the runs take. A cron
/// schedule follows the wall clock in its [time zone](Self::time_zone), so
/// that `0 0 3 * * *` is 03:00 local time through daylight saving changes.
///
/// # Daylight saving time
///
/// A cron expression is a *fixed time* when its second, minute and hour
/// fields each hold one value (`30 2 * * *`, `0 0 3 * * MON`), and an
/// *interval* otherwise (`*/15 * * * *`, `0 * * * *`, `30 2,14 * * *`), as
/// the Open Cron Pattern Specification (OCPS) has it. In Europe/Berlin
/// (other zones alike, at their own hours):
///
/// | | fixed time (`30 2 * * *`) | interval (`*/15 * * * *`, `* * * * * *`) |
/// |---|---|---|
/// | spring forward, 02:00 → 03:00 (2026-03-29) | runs once, at 03:00 CEST, the first instant after the gap | keeps its spacing on absolute time: 01:45 CET, then 03:00 CEST, 15 minutes later |
/// | fall back, 03:00 → 02:00 (2026-10-25) | runs once, at the first 02:30 (CEST) | keeps its spacing on absolute time: 02:45 CEST, 02:00 CET, 02:15 CET, … |
///
/// An interval expression thus fires every 15 minutes (every second) of
/// absolute time through both changes, with no gap and no double. An
/// interval expression that names an hour inside the gap or the repeat
/// (`30 2,14 * * *`) therefore skips 02:30 on the spring day and runs it
/// twice on the autumn day: write such a time as an expression of its own,
/// or use UTC, when that matters.
///
/// # Missed ticks
///
/// When the schedule wakes late (the process was suspended, the runtime was
/// starved, the wall clock jumped ahead), every tick due by then is missed.
/// If the latest of them is at most the [catch-up window](Self::catch_up)
/// late, one run is made at once for all of them; otherwise they are all
/// skipped, with a warning. Either way the next tick is the first one after
/// now: a schedule never runs a burst of old ticks and never stops firing.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "super::config::ScheduleSection")]
pub struct Schedule {
    pub(super) when: When,
    pub(super) starting_now: bool,
    pub(super) time_zone: Option<String>,
    pub(super) overlap: Overlap,
    pub(super) catch_up: Duration,
    pub(super) jitter: Duration,
    pub(super) jitter_key: Option<String>,
}

/// The ticks themselves: an interval or a cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum When {
    Every(Duration),
    Cron(String),
}

/// What happens when a run is still going at the next tick (or at a "run
/// now"). Whatever the choice, a run never overlaps itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// The tick is skipped, with a warning, and counted. The default: a
    /// slow run neither doubles up nor piles work up behind it.
    #[default]
    Skip,
    /// One further run is queued and made as soon as the current one ends;
    /// ticks while one is already queued are skipped.
    BufferOne,
    /// The running run's token is cancelled and the run is awaited, then
    /// the new one starts. A run that ignores its token is awaited all the
    /// same, however long it takes: the new run waits for it. An error from
    /// a run cancelled this way is logged, not a failure of the service.
    CancelRunning,
}

/// Quartz's misfire threshold: a tick up to a minute late still runs.
const DEFAULT_CATCH_UP: Duration = Duration::from_secs(60);

impl Schedule {
    /// Runs every `period`, on the monotonic clock, the first time one
    /// `period` after the schedule starts ([`starting_now`](Self::starting_now)
    /// for a first run at once). A zero period is refused when the schedule
    /// is checked.
    pub fn every(period: Duration) -> Self {
        Self::new(When::Every(period))
    }

    /// Runs at the times of a cron `expression`, in UTC unless
    /// [`time_zone`](Self::time_zone) says otherwise.
    ///
    /// Five fields are minute, hour, day of month, month, day of week
    /// (`*/15 * * * *`, at second 0); six put the second first
    /// (`30 */15 * * * *`); seven add the year last. Names (`MON`, `JAN`),
    /// `L`, `W`, `#` and `@daily`-style nicknames are understood, as the
    /// `croner` crate reads them. The expression is checked when the
    /// schedule is (at the host's build), not here.
    pub fn cron(expression: impl Into<String>) -> Self {
        Self::new(When::Cron(expression.into()))
    }

    fn new(when: When) -> Self {
        Self {
            when,
            starting_now: false,
            time_zone: None,
            overlap: Overlap::Skip,
            catch_up: DEFAULT_CATCH_UP,
            jitter: Duration::ZERO,
            jitter_key: None,
        }
    }

    /// Makes the first run of an [`every`](Self::every) schedule at once
    /// when the schedule starts (later by the [jitter](Self::jitter) offset,
    /// if any), then every period from there, as Quartz's `StartNow()`.
    /// Refused on a cron schedule, whose times are its expression's.
    pub fn starting_now(mut self) -> Self {
        self.starting_now = true;
        self
    }

    /// Reads a cron schedule's times in the IANA time zone `name`
    /// (`"Europe/Berlin"`, `"America/New_York"`, `"UTC"`); UTC by default.
    /// An unknown name is refused when the schedule is checked, and so is a
    /// time zone on an [`every`](Self::every) schedule, which ignores the
    /// wall clock.
    pub fn time_zone(mut self, name: impl Into<String>) -> Self {
        self.time_zone = Some(name.into());
        self
    }

    /// What happens when a run is still going at the next tick; see
    /// [`Overlap`]. [`Overlap::Skip`] by default.
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }

    /// How late the latest missed tick may be for one run to still be made
    /// for the missed ticks; 60 seconds by default (Quartz's misfire
    /// threshold). A window under one second counts as one second: a timer
    /// that wakes a few milliseconds late has not missed its tick.
    pub fn catch_up(mut self, window: Duration) -> Self {
        self.catch_up = window;
        self
    }

    /// Shifts every tick later by an offset in `[0, max)` derived from the
    /// service's name (a stable hash): services on the same schedule spread
    /// out, and each lands at the same offset on every run and every build.
    ///
    /// Every instance of one application has the same service names and so
    /// the same offsets; give each instance a [key](Self::jitter_key) of its
    /// own to spread the instances too.
    pub fn jitter(mut self, max: Duration) -> Self {
        self.jitter = max;
        self
    }

    /// Adds `key` (a host or pod name, an instance number) to what the
    /// [jitter](Self::jitter) offset is derived from, so that instances of
    /// one application land at different offsets.
    pub fn jitter_key(mut self, key: impl Into<String>) -> Self {
        self.jitter_key = Some(key.into());
        self
    }

    /// Checks the schedule as the host does when it is built, for the
    /// service named `service` (named in the error): the cron expression,
    /// the time zone, the period, and that a cron expression still matches
    /// some time after now.
    pub fn validate(&self, service: &str) -> Result<(), ScheduleError> {
        self.compile(service).map(drop)
    }

    /// The schedule, checked, in the form the schedule loop runs.
    pub(crate) fn compile(&self, service: &str) -> Result<Timetable, ScheduleError> {
        self.compile_at(service, SystemTime::now())
    }

    /// [`compile`](Self::compile) with "now" given, for tests with fixed dates.
    pub(crate) fn compile_at(
        &self,
        service: &str,
        now: SystemTime,
    ) -> Result<Timetable, ScheduleError> {
        Timetable::compile(self, service, now)
    }
}

/// For logs: `every 10s`, `every 1m 30s, starting now`,
/// `cron "0 */5 * * * *" (Europe/Berlin)`.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.when {
            When::Every(period) => {
                write!(f, "every {}", humantime::format_duration(*period))?;
                if self.starting_now {
                    f.write_str(", starting now")?;
                }
                Ok(())
            }
            When::Cron(expression) => {
                let zone = self.time_zone.as_deref().unwrap_or("UTC");
                write!(f, "cron {expression:?} ({zone})")
            }
        }
    }
}

/// As configuration spells it: `skip`, `buffer_one`, `cancel_running`.
impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Skip => "skip",
            Self::BufferOne => "buffer_one",
            Self::CancelRunning => "cancel_running",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_kind_and_the_time_zone() {
        assert_eq!(
            Schedule::every(Duration::from_secs(10)).to_string(),
            "every 10s"
        );
        assert_eq!(
            Schedule::every(Duration::from_secs(90))
                .starting_now()
                .to_string(),
            "every 1m 30s, starting now"
        );
        assert_eq!(
            Schedule::cron("0 */5 * * * *").to_string(),
            r#"cron "0 */5 * * * *" (UTC)"#
        );
        assert_eq!(
            Schedule::cron("0 */5 * * * *")
                .time_zone("Europe/Berlin")
                .to_string(),
            r#"cron "0 */5 * * * *" (Europe/Berlin)"#
        );
    }

    #[test]
    fn defaults_are_skip_a_minute_of_catch_up_and_no_jitter() {
        let schedule = Schedule::cron("* * * * *");
        assert_eq!(schedule.overlap, Overlap::Skip);
        assert_eq!(schedule.catch_up, Duration::from_secs(60));
        assert_eq!(schedule.jitter, Duration::ZERO);
        assert_eq!(schedule.time_zone, None);
        assert!(!schedule.starting_now);
    }

    #[test]
    fn a_schedule_is_clone_debug_send_and_sync() {
        fn check<T: Clone + fmt::Debug + Send + Sync + 'static>() {}
        check::<Schedule>();
        check::<Overlap>();
    }

    #[test]
    fn overlap_displays_as_configuration_spells_it() {
        assert_eq!(Overlap::Skip.to_string(), "skip");
        assert_eq!(Overlap::BufferOne.to_string(), "buffer_one");
        assert_eq!(Overlap::CancelRunning.to_string(), "cancel_running");
    }
}
