//! Periodic services: [`Schedule`] (an interval or a cron expression, with
//! its overlap, catch-up and jitter rules), checked into a `Timetable` when
//! the host is built, and the schedule loop that runs a service by it.
//!
//! - `schedule`: the public [`Schedule`] and [`Overlap`]; `config`: reading
//!   one from configuration; `error`: [`ScheduleError`].
//! - `cron`: cron expressions in a time zone (`croner`, `chrono-tz`), and
//!   what daylight saving time does to them.
//! - `jitter`: the stable offset derived from the service's name.
//! - `clock`: the monotonic and wall clocks the loop reads.
//! - `timetable`: next tick; on waking, run or skip.
//! - `runner`, `events`: the loop, and what it reports.
//! - `cluster_wide`: [`ClusterWide`], and the claim of each tick of a
//!   cluster-wide schedule in the host's claim store.

pub(crate) mod clock;
pub(crate) mod cluster_wide;
mod config;
pub(crate) mod cron;
mod error;
pub(crate) mod events;
mod jitter;
pub(crate) mod periodic;
pub(crate) mod runner;
mod schedule;
pub(crate) mod timetable;

pub use cluster_wide::{ClusterWide, TickClaim};
pub use error::ScheduleError;
pub use periodic::{Periodic, PeriodicService, RunContext};
pub use schedule::{Overlap, Schedule};
