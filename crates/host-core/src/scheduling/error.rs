//! [`ScheduleError`]: a schedule that cannot run, named by its service.

use std::fmt;
use std::time::SystemTime;

/// A schedule that cannot run: a bad cron expression, an unknown time zone,
/// a zero period, an option that does not apply to its kind of schedule, or
/// a cron expression that matches no time after now. It names the service
/// and what is wrong:
///
/// ```text
/// `app::Cleanup`: invalid cron expression "0 */5 * *": Invalid pattern: Pattern must have between 5 and 7 fields.
/// ```
///
/// The host reports it as a build error (exit code 2).
#[derive(Debug)]
pub struct ScheduleError {
    service: String,
    problem: Problem,
}

/// What is wrong with a schedule.
#[derive(Debug)]
pub(super) enum Problem {
    /// The cron expression does not parse.
    InvalidCron {
        expression: String,
        source: croner::errors::CronError,
    },
    /// The cron expression matches no time after `after`.
    NeverFires {
        expression: String,
        after: SystemTime,
    },
    /// The time zone is not an IANA name the build knows.
    UnknownTimeZone { name: String },
    /// `every` with a zero period.
    ZeroPeriod,
    /// A time zone on an `every` schedule.
    TimeZoneOnInterval { name: String, schedule: String },
    /// `starting_now` on a cron schedule.
    StartingNowOnCron { schedule: String },
}

impl ScheduleError {
    pub(super) fn new(service: &str, problem: Problem) -> Self {
        Self {
            service: service.to_owned(),
            problem,
        }
    }

    /// The service whose schedule this is.
    pub fn service(&self) -> &str {
        &self.service
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: ", self.service)?;
        match &self.problem {
            Problem::InvalidCron { expression, source } => {
                write!(f, "invalid cron expression {expression:?}: {source}")
            }
            Problem::NeverFires { expression, after } => write!(
                f,
                "cron expression {expression:?} matches no time after {}",
                humantime::format_rfc3339_seconds(*after)
            ),
            Problem::UnknownTimeZone { name } => write!(
                f,
                "unknown time zone {name:?}: expects an IANA name such as \"Europe/Berlin\" \
                 or \"UTC\" (the case matters)"
            ),
            Problem::ZeroPeriod => f.write_str("a schedule of `every` needs a period above zero"),
            Problem::TimeZoneOnInterval { name, schedule } => write!(
                f,
                "time zone {name:?} given for {schedule}: a time zone applies to a cron \
                 schedule only (an interval counts on the monotonic clock)"
            ),
            Problem::StartingNowOnCron { schedule } => write!(
                f,
                "`starting_now` given for {schedule}: it applies to a schedule of `every` \
                 only (a cron schedule runs at its expression's times)"
            ),
        }
    }
}

impl std::error::Error for ScheduleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            Problem::InvalidCron { source, .. } => Some(source),
            _ => None,
        }
    }
}
