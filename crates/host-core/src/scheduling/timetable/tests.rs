use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::scheduling::clock::{format_time, parse_time};

const NOW: &str = "2026-01-01T00:00:00Z";

fn compile(schedule: Schedule) -> Timetable {
    schedule
        .compile_at("app::Cleanup", parse_time(NOW))
        .unwrap_or_else(|error| panic!("{error}"))
}

fn error(schedule: Schedule) -> String {
    schedule
        .compile_at("app::Cleanup", parse_time(NOW))
        .unwrap_err()
        .to_string()
}

/// A reading `seconds` after `start` on both clocks.
fn at(start: Now, seconds: f64) -> Now {
    let elapsed = Duration::from_secs_f64(seconds);
    Now {
        instant: start.instant + elapsed,
        wall: start.wall + elapsed,
    }
}

fn start() -> Now {
    Now {
        instant: Instant::now(),
        wall: parse_time(NOW),
    }
}

fn due(wake: Wake) -> Due {
    match wake {
        Wake::Due(due) => due,
        Wake::Early => panic!("expected the tick to be due"),
    }
}

fn secs(start: Now, instant: Instant) -> f64 {
    (instant - start.instant).as_secs_f64()
}

fn wall(timetable: &Timetable, tick: Option<Tick>) -> String {
    format_time(timetable.wall_time(tick.expect("a tick")))
}

#[test]
fn errors_name_the_service_the_expression_and_the_reason() {
    assert_eq!(
        error(Schedule::cron("0 */5 * *")),
        "`app::Cleanup`: invalid cron expression \"0 */5 * *\": \
         Invalid pattern: Pattern must have between 5 and 7 fields."
    );
    assert_eq!(
        error(Schedule::cron("* * * * *").time_zone("Europe/Berln")),
        "`app::Cleanup`: unknown time zone \"Europe/Berln\": expects an IANA name such as \
         \"Europe/Berlin\" or \"UTC\" (the case matters)"
    );
    assert_eq!(
        error(Schedule::cron("0 0 30 2 *")),
        "`app::Cleanup`: cron expression \"0 0 30 2 *\" matches no time after 2026-01-01T00:00:00Z"
    );
    assert_eq!(
        error(Schedule::cron("0 0 12 1 1 * 2025")),
        "`app::Cleanup`: cron expression \"0 0 12 1 1 * 2025\" matches no time after 2026-01-01T00:00:00Z"
    );
    assert_eq!(
        error(Schedule::every(Duration::ZERO)),
        "`app::Cleanup`: a schedule of `every` needs a period above zero"
    );
    assert_eq!(
        error(Schedule::every(Duration::from_secs(10)).time_zone("Europe/Berlin")),
        "`app::Cleanup`: time zone \"Europe/Berlin\" given for every 10s: a time zone applies \
         to a cron schedule only (an interval counts on the monotonic clock)"
    );
    assert_eq!(
        error(Schedule::cron("* * * * *").starting_now()),
        "`app::Cleanup`: `starting_now` given for cron \"* * * * *\" (UTC): it applies to a \
         schedule of `every` only (a cron schedule runs at its expression's times)"
    );
}

#[test]
fn the_error_is_a_std_error_with_the_parser_as_source() {
    let error = Schedule::cron("0 */5 * *")
        .compile_at("app::Cleanup", parse_time(NOW))
        .unwrap_err();
    assert_eq!(error.service(), "app::Cleanup");
    let source = std::error::Error::source(&error).expect("the parser's error");
    assert!(source.to_string().contains("between 5 and 7 fields"));
}

#[test]
fn a_catch_up_window_under_a_second_counts_as_a_second() {
    let timetable = compile(Schedule::every(Duration::from_secs(1)).catch_up(Duration::ZERO));
    assert_eq!(timetable.catch_up(), Duration::from_secs(1));
    let timetable = compile(Schedule::every(Duration::from_secs(1)));
    assert_eq!(timetable.catch_up(), Duration::from_secs(60));
}

#[test]
fn jitter_comes_from_the_service_name_and_key() {
    let schedule = Schedule::every(Duration::from_secs(10)).jitter(Duration::from_secs(60));
    let one = schedule.compile_at("app::One", parse_time(NOW)).unwrap();
    let two = schedule.compile_at("app::Two", parse_time(NOW)).unwrap();
    assert_ne!(one.jitter(), two.jitter());
    assert!(one.jitter() < Duration::from_secs(60));
    let again = schedule.compile_at("app::One", parse_time(NOW)).unwrap();
    assert_eq!(one.jitter(), again.jitter());
    let keyed = schedule
        .clone()
        .jitter_key("host-2")
        .compile_at("app::One", parse_time(NOW))
        .unwrap();
    assert_ne!(one.jitter(), keyed.jitter());
    assert_eq!(
        compile(Schedule::every(Duration::from_secs(10))).jitter(),
        Duration::ZERO
    );
}

#[test]
fn an_interval_ticks_one_period_after_the_start_or_at_once() {
    let start = start();
    let timetable = compile(Schedule::every(Duration::from_secs(10)));
    let first = timetable.first_tick(start).unwrap();
    assert_eq!(secs(start, timetable.deadline(first, start)), 10.0);
    assert_eq!(wall(&timetable, Some(first)), "2026-01-01T00:00:10Z");

    let timetable = compile(Schedule::every(Duration::from_secs(10)).starting_now());
    let first = timetable.first_tick(start).unwrap();
    assert_eq!(secs(start, timetable.deadline(first, start)), 0.0);
}

#[test]
fn jitter_shifts_every_interval_tick_by_the_same_offset() {
    let start = start();
    let timetable =
        compile(Schedule::every(Duration::from_secs(10)).jitter(Duration::from_secs(5)));
    let offset = timetable.jitter().as_secs_f64();
    assert!(offset > 0.0);
    let first = timetable.first_tick(start).unwrap();
    assert_eq!(secs(start, timetable.deadline(first, start)), 10.0 + offset);
    let woke = at(start, 10.0 + offset);
    let due = due(timetable.on_wake(first, woke));
    assert_eq!(secs(start, due.run.unwrap().instant), 10.0 + offset);
    assert_eq!(
        secs(start, timetable.deadline(due.next.unwrap(), woke)),
        20.0 + offset
    );
}

#[test]
fn an_interval_on_time_runs_and_goes_on_one_period_later() {
    let start = start();
    let timetable = compile(Schedule::every(Duration::from_secs(10)));
    let first = timetable.first_tick(start).unwrap();
    let now = at(start, 10.0);
    let due = due(timetable.on_wake(first, now));
    let run = due.run.expect("a run");
    assert_eq!(secs(start, run.instant), 10.0);
    assert_eq!(format_time(run.wall), "2026-01-01T00:00:10Z");
    assert_eq!((due.missed, due.late), (0, Duration::ZERO));
    assert_eq!(
        secs(start, timetable.deadline(due.next.unwrap(), now)),
        20.0
    );
}

#[test]
fn an_interval_woken_late_within_the_window_runs_once_for_the_latest_tick() {
    let start = start();
    let timetable = compile(Schedule::every(Duration::from_secs(10)));
    let first = timetable.first_tick(start).unwrap();
    // Due at 10, 20, 30; woke at 35.
    let now = at(start, 35.0);
    let due = due(timetable.on_wake(first, now));
    assert_eq!(secs(start, due.run.expect("a run").instant), 30.0);
    assert_eq!(due.missed, 2);
    assert_eq!(due.late, Duration::from_secs(25));
    // The next is on the grid and after now: never in the past.
    assert_eq!(
        secs(start, timetable.deadline(due.next.unwrap(), now)),
        40.0
    );
}

#[test]
fn an_interval_woken_beyond_the_window_skips_every_due_tick() {
    let start = start();
    let timetable =
        compile(Schedule::every(Duration::from_secs(10)).catch_up(Duration::from_secs(2)));
    let first = timetable.first_tick(start).unwrap();
    // Due at 10, 20, 30; woke at 35: the latest is 5 s late, beyond 2 s.
    let now = at(start, 35.0);
    let due = due(timetable.on_wake(first, now));
    assert_eq!(due.run, None);
    assert_eq!(due.missed, 3);
    assert_eq!(
        secs(start, timetable.deadline(due.next.unwrap(), now)),
        40.0
    );
    // The latest due tick is what a reloaded period follows.
    let reloaded = compile(Schedule::every(Duration::from_secs(100)));
    let next = reloaded.next_tick(Anchor::Tick(due.latest), now).unwrap();
    assert_eq!(secs(start, reloaded.deadline(next, now)), 130.0);
}

#[test]
fn a_reloaded_interval_follows_the_latest_tick_and_is_never_in_the_past() {
    let start = start();
    let old = compile(Schedule::every(Duration::from_secs(10)));
    let first = old.first_tick(start).unwrap();
    let latest = due(old.on_wake(first, at(start, 10.0))).latest;

    let shorter = compile(Schedule::every(Duration::from_secs(3)));
    let now = at(start, 17.5);
    let next = shorter.next_tick(Anchor::Tick(latest), now).unwrap();
    // 10 + 3k after 17.5: 19.
    assert_eq!(secs(start, shorter.deadline(next, now)), 19.0);

    // Before any tick, from the start.
    let next = shorter
        .next_tick(Anchor::Start(start), at(start, 4.0))
        .unwrap();
    assert_eq!(secs(start, shorter.deadline(next, start)), 6.0);
}

#[test]
fn an_interval_too_long_to_add_never_ticks() {
    let timetable = compile(Schedule::every(Duration::MAX));
    assert_eq!(timetable.first_tick(start()), None);
}

#[test]
fn a_cron_schedule_ticks_at_its_next_time_after_the_start() {
    let start = Now {
        instant: Instant::now(),
        wall: parse_time("2026-01-01T00:07:30Z"),
    };
    let timetable = compile(Schedule::cron("*/5 * * * *"));
    let first = timetable.first_tick(start);
    assert_eq!(wall(&timetable, first), "2026-01-01T00:10:00Z");
    // No sleep is longer than a minute: the wall clock is read again.
    assert_eq!(secs(start, timetable.deadline(first.unwrap(), start)), 60.0);
    let later = at(start, 120.0);
    assert_eq!(
        secs(start, timetable.deadline(first.unwrap(), later)),
        150.0
    );
    // Woken by the one-minute limit: not due yet.
    assert!(matches!(
        timetable.on_wake(first.unwrap(), at(start, 60.0)),
        Wake::Early
    ));
}

#[test]
fn a_cron_tick_on_time_runs_and_the_next_follows() {
    let start = start();
    let timetable = compile(Schedule::cron("*/5 * * * * *"));
    let first = timetable.first_tick(start).unwrap();
    assert_eq!(wall(&timetable, Some(first)), "2026-01-01T00:00:05Z");
    let now = at(start, 5.0);
    let due = due(timetable.on_wake(first, now));
    let run = due.run.unwrap();
    assert_eq!(format_time(run.wall), "2026-01-01T00:00:05Z");
    assert_eq!(secs(start, run.instant), 5.0);
    assert_eq!(due.missed, 0);
    assert_eq!(wall(&timetable, due.next), "2026-01-01T00:00:10Z");
}

#[test]
fn a_cron_schedule_woken_late_within_the_window_runs_once_for_the_latest() {
    let start = start();
    let timetable = compile(Schedule::cron("*/5 * * * * *"));
    let first = timetable.first_tick(start).unwrap();
    // A wall clock 2 hours ahead (a suspended machine): 1440 ticks due, the
    // latest on time.
    let now = at(start, 7200.0);
    let due = due(timetable.on_wake(first, now));
    let run = due.run.unwrap();
    assert_eq!(format_time(run.wall), "2026-01-01T02:00:00Z");
    assert_eq!(due.missed, 1439);
    assert_eq!(due.late, Duration::from_secs(7195));
    assert_eq!(wall(&timetable, due.next), "2026-01-01T02:00:05Z");
}

#[test]
fn a_cron_schedule_woken_beyond_the_window_skips_and_goes_on_from_now() {
    let start = start();
    let timetable = compile(Schedule::cron("0 0 3 * * *"));
    let first = timetable.first_tick(start).unwrap();
    assert_eq!(wall(&timetable, Some(first)), "2026-01-01T03:00:00Z");
    // Woke at 05:00: 03:00 is two hours late.
    let now = at(start, 5.0 * 3600.0);
    let due = due(timetable.on_wake(first, now));
    assert_eq!(due.run, None);
    assert_eq!(due.missed, 1);
    assert_eq!(wall(&timetable, due.next), "2026-01-02T03:00:00Z");

    // Woke 30 s late: within the default minute.
    let now = at(start, 3.0 * 3600.0 + 30.0);
    let due = due_of(&timetable, first, now);
    assert_eq!(format_time(due.run.unwrap().wall), "2026-01-01T03:00:00Z");
}

fn due_of(timetable: &Timetable, tick: Tick, now: Now) -> Due {
    due(timetable.on_wake(tick, now))
}

#[test]
fn a_long_sleep_over_a_frequent_schedule_counts_up_to_a_limit() {
    let start = start();
    let timetable = compile(Schedule::cron("* * * * * *"));
    let first = timetable.first_tick(start).unwrap();
    // A day of ticks behind: counted up to the limit, the run still made
    // for the tick right before now.
    let now = at(start, 86_400.5);
    let due = due_of(&timetable, first, now);
    assert_eq!(format_time(due.run.unwrap().wall), "2026-01-02T00:00:00Z");
    assert!(due.missed >= MAX_COUNTED, "{}", due.missed);
    assert_eq!(wall(&timetable, due.next), "2026-01-02T00:00:01Z");
}

#[test]
fn a_cron_schedule_skips_with_a_tick_before_and_none_within_the_window() {
    let start = start();
    let timetable = compile(Schedule::cron("0 */10 * * * *").catch_up(Duration::from_secs(120)));
    let first = timetable.first_tick(start).unwrap();
    // Due 00:10, 00:20, 00:30; woke 00:35: the latest is 5 minutes late.
    let now = at(start, 35.0 * 60.0);
    let due = due_of(&timetable, first, now);
    assert_eq!(due.run, None);
    assert_eq!(due.missed, 3);
    assert_eq!(wall(&timetable, due.next), "2026-01-01T00:40:00Z");
    // Woke 00:31: 00:30 is within the window: one run for the three.
    let due = due_of(&timetable, first, at(start, 31.0 * 60.0));
    assert_eq!(format_time(due.run.unwrap().wall), "2026-01-01T00:30:00Z");
    assert_eq!(due.missed, 2);
}

#[test]
fn a_wall_clock_set_back_within_the_window_does_not_repeat_a_tick() {
    let start = start();
    let timetable = compile(Schedule::cron("*/10 * * * * *"));
    let first = timetable.first_tick(start).unwrap();
    let ran = due_of(&timetable, first, at(start, 10.0));
    // The wall clock goes back 30 s (NTP): 00:00:10 must not run again.
    let set_back = Now {
        instant: start.instant + Duration::from_secs(11),
        wall: parse_time("2025-12-31T23:59:41Z"),
    };
    let next = timetable.next_tick(Anchor::Tick(ran.latest), set_back);
    assert_eq!(wall(&timetable, next), "2026-01-01T00:00:20Z");
    assert!(matches!(
        timetable.on_wake(next.unwrap(), set_back),
        Wake::Early
    ));

    // Back by a day, beyond the window: the clock is trusted, ticks go on from it.
    let set_back = Now {
        instant: start.instant + Duration::from_secs(11),
        wall: parse_time("2025-12-31T00:00:01Z"),
    };
    let next = timetable.next_tick(Anchor::Tick(ran.latest), set_back);
    assert_eq!(wall(&timetable, next), "2025-12-31T00:00:10Z");
}

#[test]
fn a_cron_schedule_with_jitter_runs_each_time_shifted_once() {
    let start = start();
    let timetable = compile(Schedule::cron("0 * * * * *").jitter(Duration::from_secs(30)));
    let offset = timetable.jitter();
    assert!(offset > Duration::ZERO && offset < Duration::from_secs(30));
    // 00:00:00 itself, shifted, is after the start at 00:00:00.
    let first = timetable.first_tick(start).unwrap();
    assert_eq!(
        timetable.wall_time(first),
        parse_time("2026-01-01T00:00:00Z") + offset
    );
    let now = Now {
        instant: start.instant + offset,
        wall: timetable.wall_time(first),
    };
    assert_eq!(timetable.deadline(first, start), now.instant);
    let due = due_of(&timetable, first, now);
    assert_eq!(due.run.unwrap().wall, timetable.wall_time(first));
    assert_eq!(
        timetable.wall_time(due.next.unwrap()),
        parse_time("2026-01-01T00:01:00Z") + offset
    );
    // A loop started between a time and its shifted tick still gets that tick.
    let between = Now {
        instant: start.instant,
        wall: parse_time("2026-01-01T00:00:00Z") + offset / 2,
    };
    let again = timetable.first_tick(between).unwrap();
    assert_eq!(timetable.wall_time(again), timetable.wall_time(first));
}

#[test]
fn the_next_tick_of_a_year_limited_expression_ends() {
    let timetable = compile(Schedule::cron("0 0 12 1 1 * 2026"));
    let start = start();
    let first = timetable.first_tick(start).unwrap();
    assert_eq!(wall(&timetable, Some(first)), "2026-01-01T12:00:00Z");
    let due = due_of(&timetable, first, at(start, 12.0 * 3600.0));
    assert!(due.run.is_some());
    assert_eq!(due.next, None);
}

#[test]
fn a_berlin_time_in_the_spring_gap_runs_once_after_it() {
    let start = Now {
        instant: Instant::now(),
        wall: parse_time("2026-03-28T12:00:00Z"),
    };
    let timetable = compile(Schedule::cron("30 2 * * *").time_zone("Europe/Berlin"));
    let first = timetable.first_tick(start).unwrap();
    assert_eq!(wall(&timetable, Some(first)), "2026-03-29T01:00:00Z");
    let now = Now {
        instant: start.instant,
        wall: parse_time("2026-03-29T01:00:00Z"),
    };
    let due = due_of(&timetable, first, now);
    assert!(due.run.is_some());
    assert_eq!(wall(&timetable, due.next), "2026-03-30T00:30:00Z");
}

#[test]
fn elapsed_wall_time_is_what_makes_a_cron_tick_due() {
    let start = start();
    let timetable = compile(Schedule::cron("0 * * * * *"));
    let first = timetable.first_tick(start).unwrap();
    // The monotonic clock says a minute passed; the wall clock says less.
    let now = Now {
        instant: start.instant + Duration::from_secs(60),
        wall: start.wall + Duration::from_secs(59),
    };
    assert!(matches!(timetable.on_wake(first, now), Wake::Early));
}

/// `start` at `wall` (RFC 3339) on both clocks.
fn start_at(wall: &str) -> Now {
    Now {
        instant: Instant::now(),
        wall: parse_time(wall),
    }
}

#[test]
fn on_start_the_latest_tick_within_the_catch_up_window_is_the_misfire() {
    // Every 5 minutes; started 2 min 30 s after 00:05.
    let start = start_at("2026-01-01T00:07:30Z");
    let looked = |window: u64| {
        compile(Schedule::cron("0 */5 * * * *").catch_up(Duration::from_secs(window)))
            .missed_at_start(start)
            .map(|(scheduled, base)| (format_time(scheduled.wall), format_time(base)))
    };
    let expected = Some((
        "2026-01-01T00:05:00Z".to_owned(),
        "2026-01-01T00:05:00Z".to_owned(),
    ));
    assert_eq!(looked(150), expected, "exactly the window");
    assert_eq!(looked(600), expected, "the latest only");
    assert_eq!(looked(149), None, "further back than the window");
    assert_eq!(looked(0), None, "a zero window");
    // An interval has no ticks before its start.
    let every = compile(Schedule::every(Duration::from_secs(10)));
    assert!(every.missed_at_start(start).is_none());
    assert!(!every.is_cron());
}

#[test]
fn the_misfire_on_start_is_keyed_without_jitter() {
    let timetable = compile(Schedule::cron("0 */5 * * * *").jitter(Duration::from_secs(60)));
    let jitter = timetable.jitter();
    let start = Now {
        instant: Instant::now(),
        wall: parse_time("2026-01-01T00:05:00Z") + jitter + Duration::from_secs(1),
    };
    let (scheduled, base) = timetable.missed_at_start(start).expect("a second late");
    assert_eq!(format_time(base), "2026-01-01T00:05:00Z");
    assert_eq!(scheduled.wall, base + jitter);
}

#[test]
fn recovery_looks_at_the_latest_tick_a_deadline_old_and_the_one_before() {
    let timetable = compile(Schedule::cron("0 */5 * * * *"));
    let tick = parse_time("2026-01-01T01:00:00Z");
    let candidates = |deadline: u64| {
        timetable
            .recovery_candidates(tick, Duration::from_secs(deadline))
            .into_iter()
            .map(format_time)
            .collect::<Vec<_>>()
    };
    // A deadline shorter than the period: the tick just before, and the
    // one before that.
    assert_eq!(
        candidates(60),
        ["2026-01-01T00:55:00Z", "2026-01-01T00:50:00Z"]
    );
    // Twelve minutes: the latest tick at least that old.
    assert_eq!(
        candidates(720),
        ["2026-01-01T00:45:00Z", "2026-01-01T00:40:00Z"]
    );
    // Exactly a period: that tick, and the one before it.
    assert_eq!(
        candidates(300),
        ["2026-01-01T00:55:00Z", "2026-01-01T00:50:00Z"]
    );
    let every = compile(Schedule::every(Duration::from_secs(10)));
    assert!(
        every
            .recovery_candidates(tick, Duration::from_secs(60))
            .is_empty()
    );
}
