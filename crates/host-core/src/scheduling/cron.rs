//! Cron expressions in a time zone: parsing, and the next matching time
//! after a wall-clock time.
//!
//! # Why `croner`, with `chrono-tz`
//!
//! - `croner` reads five fields (minute precision), six (seconds first) and
//!   seven (year last) with one parser, as users of Quartz (six or seven)
//!   and of Unix cron (five) write them; the `cron` crate requires the
//!   seconds field, so every Unix expression would be refused. `saffron`
//!   has no seconds and no time zones, and is unmaintained.
//! - `croner` defines what a time in a daylight-saving gap or repeat does
//!   (the Open Cron Pattern Specification, OCPS), tests it against real
//!   zones, and is maintained.
//! - `chrono-tz` compiles the IANA database into the binary: a zone means
//!   the same on every machine, with or without `/usr/share/zoneinfo`
//!   (slim containers have none).
//!
//! # Daylight saving time
//!
//! Times are matched on the wall clock of the zone, and each match is one
//! instant on the absolute time line, which the loop sleeps until. What a
//! time in a skipped or repeated hour does is `croner`'s OCPS behaviour,
//! documented for users on [`Schedule`](super::Schedule) and pinned by the
//! tests below with real dates, so that an upgrade that changes it fails.

use std::str::FromStr;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::error::Problem;

/// A parsed cron expression with its time zone.
#[derive(Clone, Debug)]
pub(crate) struct CronTimes {
    cron: croner::Cron,
    zone: Tz,
}

impl CronTimes {
    /// Parses `expression`, read in the IANA zone `zone` (UTC when `None`).
    pub(super) fn parse(expression: &str, zone: Option<&str>) -> Result<Self, Problem> {
        let zone = match zone {
            None => Tz::UTC,
            Some(name) => Tz::from_str(name).map_err(|_| Problem::UnknownTimeZone {
                name: name.to_owned(),
            })?,
        };
        // The default parser: seconds and year optional (5, 6 or 7 fields).
        let cron = croner::Cron::from_str(expression).map_err(|source| Problem::InvalidCron {
            expression: expression.to_owned(),
            source,
        })?;
        Ok(Self { cron, zone })
    }

    /// The first time the expression matches strictly after `after`;
    /// `None` when there is none (a year field in the past, `30 2 *`…:
    /// `croner` searches up to the year 5000).
    pub(crate) fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let local = DateTime::<Utc>::from(after).with_timezone(&self.zone);
        // Exclusive: a match at `after` itself (to the second) is not "after".
        let next = self.cron.find_next_occurrence(&local, false).ok()?;
        Some(SystemTime::from(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::clock::{format_time, parse_time};

    fn times(expression: &str, zone: &str) -> CronTimes {
        CronTimes::parse(expression, Some(zone)).unwrap()
    }

    /// The next `count` times after `after`, in UTC.
    fn next(cron: &CronTimes, after: &str, count: usize) -> Vec<String> {
        let mut at = parse_time(after);
        (0..count)
            .map(|_| {
                at = cron.next_after(at).expect("a next time");
                format_time(at)
            })
            .collect()
    }

    #[test]
    fn five_six_and_seven_fields() {
        let utc = |expression| CronTimes::parse(expression, None).unwrap();
        // Five: minute precision, at second 0.
        assert_eq!(
            next(&utc("*/15 * * * *"), "2026-01-01T00:00:00Z", 2),
            ["2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z"]
        );
        // Six: seconds first.
        assert_eq!(
            next(&utc("30 */15 * * * *"), "2026-01-01T00:00:00Z", 2),
            ["2026-01-01T00:00:30Z", "2026-01-01T00:15:30Z"]
        );
        // Seven: year last.
        assert_eq!(
            next(&utc("0 0 12 1 1 * 2028"), "2026-01-01T00:00:00Z", 1),
            ["2028-01-01T12:00:00Z"]
        );
        // A year in the past matches nothing after now.
        assert_eq!(
            utc("0 0 12 1 1 * 2020").next_after(parse_time("2026-01-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn names_and_nicknames() {
        let utc = |expression| CronTimes::parse(expression, None).unwrap();
        assert_eq!(
            next(&utc("@daily"), "2026-01-01T10:00:00Z", 1),
            ["2026-01-02T00:00:00Z"]
        );
        // 2026-01-01 is a Thursday.
        assert_eq!(
            next(&utc("0 9 * JAN MON-FRI"), "2026-01-01T10:00:00Z", 2),
            ["2026-01-02T09:00:00Z", "2026-01-05T09:00:00Z"]
        );
        assert_eq!(
            next(&utc("0 0 L * *"), "2026-01-01T10:00:00Z", 1),
            ["2026-01-31T00:00:00Z"]
        );
    }

    #[test]
    fn next_is_strictly_after_to_the_sub_second() {
        let every_second = CronTimes::parse("* * * * * *", None).unwrap();
        assert_eq!(
            next(&every_second, "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T00:00:01Z"]
        );
        let just_before = parse_time("2026-01-01T00:00:00.900Z");
        assert_eq!(
            format_time(every_second.next_after(just_before).unwrap()),
            "2026-01-01T00:00:01Z"
        );
        let half_past = parse_time("2026-01-01T00:00:00.5Z");
        assert_eq!(
            every_second.next_after(half_past),
            Some(parse_time("2026-01-01T00:00:01Z"))
        );
    }

    #[test]
    fn a_time_zone_moves_the_wall_times() {
        // 03:00 in Berlin is 02:00 UTC in winter, 01:00 UTC in summer.
        let cron = times("0 0 3 * * *", "Europe/Berlin");
        assert_eq!(
            next(&cron, "2026-01-10T12:00:00Z", 1),
            ["2026-01-11T02:00:00Z"]
        );
        assert_eq!(
            next(&cron, "2026-07-10T12:00:00Z", 1),
            ["2026-07-11T01:00:00Z"]
        );
    }

    #[test]
    fn berlin_spring_forward_runs_a_time_in_the_gap_once_at_the_end_of_the_gap() {
        // 2026-03-29: 02:00 CET (01:00 UTC) becomes 03:00 CEST; 02:30 does not exist.
        let cron = times("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            next(&cron, "2026-03-28T12:00:00Z", 3),
            [
                "2026-03-29T01:00:00Z", // 03:00 CEST: the first instant after the gap
                "2026-03-30T00:30:00Z", // 02:30 CEST, as every day after
                "2026-03-31T00:30:00Z",
            ]
        );
    }

    #[test]
    fn berlin_fall_back_runs_a_repeated_time_once() {
        // 2026-10-25: 03:00 CEST (01:00 UTC) becomes 02:00 CET; 02:30 happens twice.
        let cron = times("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            next(&cron, "2026-10-24T12:00:00Z", 2),
            [
                "2026-10-25T00:30:00Z", // the first 02:30 (CEST); not 01:30 UTC too
                "2026-10-26T01:30:00Z", // 02:30 CET
            ]
        );
        // From between the two passes, the second pass is not run either.
        assert_eq!(
            next(&cron, "2026-10-25T00:45:00Z", 1),
            ["2026-10-26T01:30:00Z"]
        );
    }

    #[test]
    fn new_york_gap_and_repeat() {
        // 2026-03-08: 02:00 EST (07:00 UTC) becomes 03:00 EDT.
        let in_gap = times("30 2 * * *", "America/New_York");
        assert_eq!(
            next(&in_gap, "2026-03-07T12:00:00Z", 2),
            ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
        );
        // 2026-11-01: 02:00 EDT (06:00 UTC) becomes 01:00 EST; 01:30 happens twice.
        let repeated = times("30 1 * * *", "America/New_York");
        assert_eq!(
            next(&repeated, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
    }

    /// Every time `cron` matches from `from` to `to` keeps `spacing` seconds.
    fn assert_even_spacing(cron: &CronTimes, from: &str, to: &str, spacing: u64) -> usize {
        let (mut at, to) = (parse_time(from), parse_time(to));
        let mut count = 0;
        while at < to {
            let next = cron.next_after(at).unwrap();
            assert_eq!(
                next.duration_since(at).unwrap().as_secs(),
                spacing,
                "after {}",
                format_time(at)
            );
            at = next;
            count += 1;
        }
        count
    }

    #[test]
    fn intervals_keep_their_absolute_spacing_through_both_changes() {
        for zone in ["Europe/Berlin", "America/New_York"] {
            let quarter = times("*/15 * * * *", zone);
            let second = times("* * * * * *", zone);
            // Four hours around each change, from a time on the grid.
            for (from, to) in [
                ("2026-03-28T23:00:00Z", "2026-03-29T03:00:00Z"),
                ("2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z"),
                ("2026-03-08T05:00:00Z", "2026-03-08T09:00:00Z"),
                ("2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z"),
            ] {
                // 16 quarters in 4 hours: none lost in the gap, none doubled in the repeat.
                assert_eq!(
                    assert_even_spacing(&quarter, from, to, 900),
                    16,
                    "{zone} {from}"
                );
                assert_eq!(
                    assert_even_spacing(&second, from, to, 1),
                    4 * 3600,
                    "{zone} {from}"
                );
            }
        }
    }

    #[test]
    fn an_interval_naming_a_changed_hour_skips_it_in_the_gap_and_runs_it_twice_in_the_repeat() {
        // Documented OCPS behaviour: two hours make an interval, not a fixed time.
        let cron = times("30 2,14 * * *", "Europe/Berlin");
        assert_eq!(
            next(&cron, "2026-03-29T00:00:00Z", 1),
            ["2026-03-29T12:30:00Z"] // 14:30 CEST; 02:30 did not exist
        );
        assert_eq!(
            next(&cron, "2026-10-25T00:00:00Z", 3),
            [
                "2026-10-25T00:30:00Z", // 02:30 CEST
                "2026-10-25T01:30:00Z", // 02:30 CET
                "2026-10-25T13:30:00Z", // 14:30 CET
            ]
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        let Err(Problem::InvalidCron { expression, source }) = CronTimes::parse("0 */5 * *", None)
        else {
            panic!("four fields must be refused");
        };
        assert_eq!(expression, "0 */5 * *");
        assert!(
            source.to_string().contains("between 5 and 7 fields"),
            "{source}"
        );

        assert!(matches!(
            CronTimes::parse("61 * * * *", None),
            Err(Problem::InvalidCron { .. })
        ));
        let Err(Problem::UnknownTimeZone { name }) =
            CronTimes::parse("* * * * *", Some("Europe/Berln"))
        else {
            panic!("an unknown zone must be refused");
        };
        assert_eq!(name, "Europe/Berln");
    }
}
