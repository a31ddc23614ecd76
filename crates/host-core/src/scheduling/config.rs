//! A [`Schedule`] read from configuration (`services.<name>.schedule`):
//!
//! ```toml
//! [services.cleanup.schedule]
//! cron = "0 */5 * * * *"     # or: every = "10s"
//! time_zone = "Europe/Berlin"
//! overlap = "cancel_running" # skip (default), buffer_one, cancel_running
//! catch_up = "5m"
//! jitter = "30s"
//! ```
//!
//! The section gives a whole schedule; what only the host can check (the
//! expression, the zone) is checked with the rest when the host is built.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::schedule::{Overlap, Schedule};

/// The keys of a schedule's section, as configuration spells them.
#[derive(Deserialize)]
pub(super) struct ScheduleSection {
    #[serde(default, with = "host_config::duration::option")]
    every: Option<Duration>,
    #[serde(default)]
    cron: Option<String>,
    #[serde(default)]
    starting_now: bool,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    overlap: Option<Overlap>,
    #[serde(default, with = "host_config::duration::option")]
    catch_up: Option<Duration>,
    #[serde(default, with = "host_config::duration::option")]
    jitter: Option<Duration>,
    #[serde(default)]
    jitter_key: Option<String>,
}

/// Why a section is no schedule: it must give `every` or `cron`, not both.
#[derive(Debug)]
pub(super) enum SectionError {
    Neither,
    Both,
}

impl fmt::Display for SectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Neither => {
                "a schedule expects `every` (such as \"10s\") or `cron`, found neither"
            }
            Self::Both => "a schedule expects one of `every` and `cron`, found both",
        })
    }
}

impl TryFrom<ScheduleSection> for Schedule {
    type Error = SectionError;

    fn try_from(section: ScheduleSection) -> Result<Self, SectionError> {
        let mut schedule = match (section.every, section.cron) {
            (Some(period), None) => Schedule::every(period),
            (None, Some(expression)) => Schedule::cron(expression),
            (None, None) => return Err(SectionError::Neither),
            (Some(_), Some(_)) => return Err(SectionError::Both),
        };
        schedule.starting_now = section.starting_now;
        schedule.time_zone = section.time_zone;
        if let Some(overlap) = section.overlap {
            schedule.overlap = overlap;
        }
        if let Some(window) = section.catch_up {
            schedule.catch_up = window;
        }
        if let Some(max) = section.jitter {
            schedule.jitter = max;
        }
        schedule.jitter_key = section.jitter_key;
        Ok(schedule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: serde_json::Value) -> Result<Schedule, String> {
        serde_json::from_value(json).map_err(|error| error.to_string())
    }

    #[test]
    fn an_interval_in_human_units() {
        let schedule = read(serde_json::json!({ "every": "1m 30s" })).unwrap();
        assert_eq!(schedule, Schedule::every(Duration::from_secs(90)));
    }

    #[test]
    fn a_cron_schedule_with_every_option() {
        let schedule = read(serde_json::json!({
            "cron": "0 */5 * * * *",
            "time_zone": "Europe/Berlin",
            "overlap": "cancel_running",
            "catch_up": "5m",
            "jitter": "30s",
            "jitter_key": "host-1",
        }))
        .unwrap();
        assert_eq!(
            schedule,
            Schedule::cron("0 */5 * * * *")
                .time_zone("Europe/Berlin")
                .overlap(Overlap::CancelRunning)
                .catch_up(Duration::from_secs(300))
                .jitter(Duration::from_secs(30))
                .jitter_key("host-1")
        );
    }

    #[test]
    fn every_overlap_by_name() {
        for (name, overlap) in [
            ("skip", Overlap::Skip),
            ("buffer_one", Overlap::BufferOne),
            ("cancel_running", Overlap::CancelRunning),
        ] {
            let schedule = read(serde_json::json!({ "every": "1s", "overlap": name })).unwrap();
            assert_eq!(schedule.overlap, overlap, "{name}");
        }
        let error = read(serde_json::json!({ "every": "1s", "overlap": "queue" })).unwrap_err();
        assert!(error.contains("unknown variant `queue`"), "{error}");
    }

    #[test]
    fn starting_now_and_its_default() {
        let schedule = read(serde_json::json!({ "every": "10s", "starting_now": true })).unwrap();
        assert_eq!(
            schedule,
            Schedule::every(Duration::from_secs(10)).starting_now()
        );
    }

    #[test]
    fn exactly_one_of_every_and_cron() {
        assert_eq!(
            read(serde_json::json!({ "time_zone": "UTC" })).unwrap_err(),
            "a schedule expects `every` (such as \"10s\") or `cron`, found neither"
        );
        assert_eq!(
            read(serde_json::json!({ "every": "10s", "cron": "* * * * *" })).unwrap_err(),
            "a schedule expects one of `every` and `cron`, found both"
        );
        let error = read(serde_json::json!({ "every": "often" })).unwrap_err();
        assert!(
            error.contains("expected a duration such as \"5s\""),
            "{error}"
        );
    }

    #[test]
    fn a_section_of_the_host_configuration_binds() {
        #[derive(Deserialize)]
        struct Cleanup {
            schedule: Schedule,
        }
        let mut builder = host_config::ConfigurationBuilder::new();
        builder.args([
            "app",
            "--services.cleanup.schedule.cron=0 0 3 * * *",
            "--services.cleanup.schedule.time_zone=Europe/Berlin",
            "--services.cleanup.schedule.jitter=1m",
        ]);
        let configuration = builder.build("Production", std::env::temp_dir()).unwrap();
        let cleanup = configuration
            .bind(host_config::OptionsBinding::<Cleanup>::new(
                "services.cleanup",
            ))
            .unwrap();
        assert_eq!(
            cleanup.current().schedule,
            Schedule::cron("0 0 3 * * *")
                .time_zone("Europe/Berlin")
                .jitter(Duration::from_secs(60))
        );
    }
}
