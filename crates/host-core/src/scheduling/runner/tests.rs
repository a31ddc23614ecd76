use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinHandle;

use super::*;
use crate::scheduling::Schedule;
use crate::scheduling::clock::{TestClock, format_time, parse_time};

const START: &str = "2026-01-01T00:00:00Z";

/// What the loop reported, with the (monotonic) time of each report.
#[derive(Default)]
struct Recorder {
    origin: Mutex<Option<Instant>>,
    started: Mutex<Vec<Started>>,
    skipped: Mutex<Vec<(u64, SkipReason)>>,
    next: Mutex<Vec<Option<String>>>,
}

#[derive(Clone, Debug)]
struct Started {
    number: u64,
    /// Milliseconds since the loop started.
    at_ms: u128,
    lateness: Duration,
    scheduled: String,
    trigger: Trigger,
}

impl Recorder {
    fn ms(&self) -> u128 {
        let origin = self.origin.lock().unwrap().expect("an origin");
        (Instant::now() - origin).as_millis()
    }

    fn started_at(&self) -> Vec<u128> {
        self.started
            .lock()
            .unwrap()
            .iter()
            .map(|run| run.at_ms)
            .collect()
    }

    fn lateness_ms(&self) -> Vec<u128> {
        let started = self.started.lock().unwrap();
        started.iter().map(|run| run.lateness.as_millis()).collect()
    }

    fn scheduled(&self) -> Vec<String> {
        let started = self.started.lock().unwrap();
        started.iter().map(|run| run.scheduled.clone()).collect()
    }

    fn skipped(&self) -> Vec<(u64, SkipReason)> {
        self.skipped.lock().unwrap().clone()
    }

    fn next(&self) -> Vec<Option<String>> {
        self.next.lock().unwrap().clone()
    }
}

impl ScheduleEvents for Recorder {
    fn next_tick(&self, at: Option<SystemTime>) {
        self.next.lock().unwrap().push(at.map(format_time));
    }

    fn run_started(&self, run: &RunInfo, lateness: Duration) {
        let at_ms = self.ms();
        self.started.lock().unwrap().push(Started {
            number: run.number,
            at_ms,
            lateness,
            scheduled: humantime::format_rfc3339_millis(run.scheduled).to_string(),
            trigger: run.trigger,
        });
    }

    fn skipped(&self, count: u64, reason: SkipReason) {
        self.skipped.lock().unwrap().push((count, reason));
    }
}

/// A running loop and its handles.
struct Harness {
    recorder: Arc<Recorder>,
    stopping: CancellationToken,
    run_now: Arc<Notify>,
    reload: watch::Sender<Timetable>,
    clock: Arc<TestClock>,
    task: JoinHandle<Result<(), ServiceError>>,
}

type Body = Arc<dyn Fn(RunInfo) -> BoxFuture<'static, Result<(), ServiceError>> + Send + Sync>;

fn timetable(schedule: Schedule) -> Timetable {
    schedule
        .compile_at("app::Cleanup", parse_time(START))
        .unwrap()
}

/// Starts the loop on `schedule` at `START` on the wall clock; each run is `body`.
fn start(schedule: Schedule, body: Body) -> Harness {
    start_at(schedule, START, body)
}

fn start_at(schedule: Schedule, wall: &str, body: Body) -> Harness {
    let recorder = Arc::new(Recorder::default());
    *recorder.origin.lock().unwrap() = Some(Instant::now());
    let clock = TestClock::at(wall);
    let stopping = CancellationToken::new();
    let run_now = Arc::new(Notify::new());
    let (reload, timetables) = watch::channel(timetable(schedule));
    let inputs = ScheduleInputs {
        timetable: timetables,
        clock: clock.clone(),
        stopping: stopping.clone(),
        run_now: run_now.clone(),
        events: recorder.clone(),
        misfire_on_start: false,
        recovery: None,
    };
    let task = tokio::spawn(run_schedule(inputs, move |run| body(run)));
    Harness {
        recorder,
        stopping,
        run_now,
        reload,
        clock,
        task,
    }
}

impl Harness {
    /// Stops the loop and returns what it returned.
    async fn stop(self) -> (Arc<Recorder>, Result<(), ServiceError>) {
        self.stopping.cancel();
        let ended = self.task.await.expect("the loop does not panic");
        (self.recorder, ended)
    }
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A run that ends at once.
fn instant_run() -> Body {
    Arc::new(|_| async { Ok(()) }.boxed())
}

/// A run that takes `length`, or ends early when its token is cancelled.
fn cancellable_run(length: Duration) -> Body {
    Arc::new(move |run: RunInfo| {
        async move {
            tokio::select! {
                () = tokio::time::sleep(length) => {}
                () = run.token.cancelled() => {}
            }
            Ok(())
        }
        .boxed()
    })
}

/// A run that takes `length` whatever its token says; counts the runs that
/// saw their token cancelled, at their end.
fn stubborn_run(length: Duration, cancelled: Arc<Mutex<Vec<u64>>>) -> Body {
    Arc::new(move |run: RunInfo| {
        let cancelled = cancelled.clone();
        async move {
            tokio::time::sleep(length).await;
            if run.token.is_cancelled() {
                cancelled.lock().unwrap().push(run.number);
            }
            Ok(())
        }
        .boxed()
    })
}

#[tokio::test(start_paused = true)]
async fn a_ten_millisecond_interval_ticks_exactly_on_time() {
    let harness = start(Schedule::every(ms(10)), instant_run());
    tokio::time::sleep(ms(55)).await;
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    assert_eq!(recorder.started_at(), [10, 20, 30, 40, 50]);
    assert_eq!(recorder.lateness_ms(), [0, 0, 0, 0, 0]);
    let started = recorder.started.lock().unwrap().clone();
    let numbers: Vec<u64> = started.iter().map(|run| run.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
    assert!(started.iter().all(|run| run.trigger == Trigger::Schedule));
    assert_eq!(started[0].scheduled, "2026-01-01T00:00:00.010Z");
    assert!(recorder.skipped().is_empty());
    // The next tick, reported as each came due.
    assert_eq!(recorder.next()[0].as_deref(), Some("2026-01-01T00:00:00Z"));
    assert_eq!(recorder.next().len(), 6);
}

#[tokio::test(start_paused = true)]
async fn starting_now_runs_at_once_then_every_period() {
    let harness = start(Schedule::every(ms(10)).starting_now(), instant_run());
    tokio::time::sleep(ms(25)).await;
    let (recorder, _) = harness.stop().await;
    assert_eq!(recorder.started_at(), [0, 10, 20]);
}

#[tokio::test(start_paused = true)]
async fn overlap_skip_skips_ticks_while_a_run_is_going() {
    let harness = start(Schedule::every(ms(10)), cancellable_run(ms(25)));
    tokio::time::sleep(ms(75)).await;
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    // 10–35, 40–65, 70–(stopped at 75); 20, 30, 50, 60 skipped.
    assert_eq!(recorder.started_at(), [10, 40, 70]);
    assert_eq!(recorder.skipped(), [(1, SkipReason::Overlap); 4]);
}

#[tokio::test(start_paused = true)]
async fn overlap_buffer_one_queues_one_run_behind_the_current() {
    // Runs of 27 ms, so that no run ends at a tick.
    let schedule = Schedule::every(ms(10)).overlap(Overlap::BufferOne);
    let harness = start(schedule, cancellable_run(ms(27)));
    tokio::time::sleep(ms(93)).await;
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    // 10–37; 20 queued, 30 skipped; 37–64 for 20; 40 queued, 50 and 60
    // skipped; 64–91 for 40; 70 queued, 80 and 90 skipped; 91 for 70.
    assert_eq!(recorder.started_at(), [10, 37, 64, 91]);
    assert_eq!(recorder.lateness_ms(), [0, 17, 24, 21]);
    assert_eq!(recorder.skipped(), [(1, SkipReason::Overlap); 5]);
}

#[tokio::test(start_paused = true)]
async fn overlap_cancel_running_cancels_the_run_and_starts_the_new_one() {
    let schedule = Schedule::every(ms(10)).overlap(Overlap::CancelRunning);
    let harness = start(schedule, cancellable_run(ms(25)));
    tokio::time::sleep(ms(55)).await;
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    // Each run, cancelled at the next tick, ends at once: the new one starts then.
    assert_eq!(recorder.started_at(), [10, 20, 30, 40, 50]);
    assert!(recorder.skipped().is_empty());
}

#[tokio::test(start_paused = true)]
async fn overlap_cancel_running_awaits_a_run_that_ignores_its_token() {
    let cancelled = Arc::new(Mutex::new(Vec::new()));
    let schedule = Schedule::every(ms(10)).overlap(Overlap::CancelRunning);
    let harness = start(schedule, stubborn_run(ms(27), cancelled.clone()));
    tokio::time::sleep(ms(65)).await;
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    // 10–37 (cancelled at 20, awaited); 30 replaced 20 in the queue; 37–64
    // for 30 (cancelled at 40); 50 replaced 40, 60 replaced 50; 64 for 60.
    assert_eq!(recorder.started_at(), [10, 37, 64]);
    assert_eq!(recorder.lateness_ms(), [0, 7, 4]);
    assert_eq!(recorder.skipped(), [(1, SkipReason::Overlap); 3]);
    // Run 3 was cancelled by the stop, and awaited too.
    assert_eq!(*cancelled.lock().unwrap(), [1, 2, 3]);
    assert_eq!(recorder.ms(), 91);
}

#[tokio::test(start_paused = true)]
async fn an_error_from_a_run_cancelled_for_a_newer_one_is_no_failure() {
    let schedule = Schedule::every(ms(10)).overlap(Overlap::CancelRunning);
    let body: Body = Arc::new(|run: RunInfo| {
        async move {
            run.token.cancelled().await;
            anyhow::bail!("cancelled midway")
        }
        .boxed()
    });
    let harness = start(schedule, body);
    tokio::time::sleep(ms(35)).await;
    assert!(!harness.task.is_finished());
    let (recorder, _) = harness.stop().await;
    assert_eq!(recorder.started_at(), [10, 20, 30]);
}

#[tokio::test(start_paused = true)]
async fn a_starved_loop_catches_up_once_then_goes_on_on_schedule() {
    let harness = start(Schedule::every(ms(10)), instant_run());
    tokio::time::sleep(ms(15)).await;
    // The loop's task cannot run while the clock jumps a second: ticks
    // 20 to 1010 are all due when it wakes at 1015.
    tokio::time::advance(ms(1000)).await;
    tokio::time::sleep(ms(30)).await;
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    assert_eq!(recorder.started_at(), [10, 1015, 1020, 1030, 1040]);
    // One run, for the latest due tick (1010), 5 ms late; never in the past after.
    assert_eq!(recorder.lateness_ms(), [0, 5, 0, 0, 0]);
    assert_eq!(
        recorder.skipped(),
        [(99, SkipReason::Missed { caught_up: true })]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stall_beyond_the_window_skips_the_missed_ticks() {
    let schedule = Schedule::every(Duration::from_secs(10)).catch_up(Duration::from_secs(2));
    let harness = start(schedule, instant_run());
    tokio::time::sleep(Duration::from_secs(12)).await;
    // Asleep from 12 s to 37 s: 20 and 30 are due, the latest 7 s late.
    tokio::time::advance(Duration::from_secs(25)).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (recorder, _) = harness.stop().await;
    assert_eq!(recorder.started_at(), [10_000, 40_000, 50_000]);
    assert_eq!(
        recorder.skipped(),
        [(2, SkipReason::Missed { caught_up: false })]
    );
}

#[tokio::test(start_paused = true)]
async fn run_now_runs_out_of_schedule_under_the_overlap_policy() {
    let harness = start(Schedule::every(ms(100)), cancellable_run(ms(30)));
    tokio::time::sleep(ms(40)).await;
    harness.run_now.notify_one();
    tokio::time::sleep(ms(10)).await;
    // Asked again while that run is going: skipped (Overlap::Skip).
    harness.run_now.notify_one();
    tokio::time::sleep(ms(60)).await;
    let (recorder, _) = harness.stop().await;
    // Run now at 40 (to 70); the schedule stays as it was: 100.
    assert_eq!(recorder.started_at(), [40, 100]);
    let started = recorder.started.lock().unwrap().clone();
    assert_eq!(started[0].trigger, Trigger::RunNow);
    assert_eq!(started[0].scheduled, "2026-01-01T00:00:00.040Z");
    assert_eq!(started[1].trigger, Trigger::Schedule);
    assert_eq!(recorder.skipped(), [(1, SkipReason::Overlap)]);
}

#[tokio::test(start_paused = true)]
async fn asks_to_run_now_before_the_loop_sees_them_make_one_run() {
    let harness = start(Schedule::every(Duration::from_secs(60)), instant_run());
    harness.run_now.notify_one();
    harness.run_now.notify_one();
    tokio::time::sleep(ms(10)).await;
    let (recorder, _) = harness.stop().await;
    assert_eq!(recorder.started_at(), [0]);
}

#[tokio::test(start_paused = true)]
async fn a_reloaded_timetable_takes_effect_at_the_next_tick() {
    let harness = start(Schedule::every(ms(10)), instant_run());
    tokio::time::sleep(ms(25)).await;
    harness
        .reload
        .send(timetable(Schedule::every(ms(100))))
        .unwrap();
    tokio::time::sleep(ms(200)).await;
    let (recorder, _) = harness.stop().await;
    // Ticks at 10 and 20; then 100 ms from the latest tick: 120, 220.
    assert_eq!(recorder.started_at(), [10, 20, 120, 220]);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_reload_sender_leaves_the_schedule_running() {
    let harness = start(Schedule::every(ms(10)), instant_run());
    let Harness { reload, .. } = &harness;
    drop(reload.clone());
    tokio::time::sleep(ms(5)).await;
    let Harness {
        recorder,
        stopping,
        run_now,
        reload,
        clock,
        task,
    } = harness;
    drop(reload);
    tokio::time::sleep(ms(30)).await;
    let harness = Harness {
        recorder,
        stopping,
        run_now,
        reload: watch::channel(timetable(Schedule::every(ms(10)))).0,
        clock,
        task,
    };
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    assert_eq!(recorder.started_at(), [10, 20, 30]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_run_ends_the_loop_with_its_error() {
    let body: Body = Arc::new(|run: RunInfo| {
        async move {
            if run.number == 2 {
                anyhow::bail!("disk full");
            }
            Ok(())
        }
        .boxed()
    });
    let harness = start(Schedule::every(ms(10)), body);
    let error = harness.task.await.unwrap().unwrap_err();
    assert_eq!(format!("{error:#}"), "scheduled run 2 failed: disk full");
    assert_eq!(harness.recorder.started_at(), [10, 20]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_run_ends_the_loop_with_an_error() {
    let body: Body = Arc::new(|_| async { panic!("index out of bounds") }.boxed());
    let harness = start(Schedule::every(ms(10)), body);
    let error = harness.task.await.unwrap().unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        "scheduled run 1 panicked: index out of bounds"
    );
}

#[tokio::test(start_paused = true)]
async fn stopping_awaits_the_run_in_progress() {
    let cancelled = Arc::new(Mutex::new(Vec::new()));
    let harness = start(
        Schedule::every(ms(10)),
        stubborn_run(ms(1000), cancelled.clone()),
    );
    tokio::time::sleep(ms(15)).await;
    harness.stopping.cancel();
    tokio::time::sleep(ms(500)).await;
    // Still waiting for the run, which ignores its (cancelled) token.
    assert!(!harness.task.is_finished());
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    assert_eq!(recorder.ms(), 1010);
    assert_eq!(*cancelled.lock().unwrap(), [1]);
    assert_eq!(recorder.started_at(), [10]);
}

#[tokio::test(start_paused = true)]
async fn stopping_drops_a_queued_run_and_returns_at_once_when_idle() {
    let schedule = Schedule::every(ms(10)).overlap(Overlap::BufferOne);
    let harness = start(schedule, cancellable_run(ms(25)));
    // Run 1 from 10; 20 queued.
    tokio::time::sleep(ms(22)).await;
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    assert_eq!(recorder.started_at(), [10]);
    assert_eq!(recorder.ms(), 22);

    let harness = start(Schedule::every(ms(10)), instant_run());
    tokio::time::sleep(ms(5)).await;
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    assert!(recorder.started_at().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_run_that_fails_while_stopping_returns_its_error() {
    let body: Body = Arc::new(|run: RunInfo| {
        async move {
            run.token.cancelled().await;
            anyhow::bail!("interrupted")
        }
        .boxed()
    });
    let harness = start(Schedule::every(ms(10)), body);
    tokio::time::sleep(ms(15)).await;
    let (_, ended) = harness.stop().await;
    assert_eq!(
        format!("{:#}", ended.unwrap_err()),
        "scheduled run 1 failed: interrupted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cron_schedule_runs_at_its_wall_times() {
    let harness = start_at(
        Schedule::cron("*/15 * * * * *"),
        "2026-01-01T00:00:05Z",
        instant_run(),
    );
    tokio::time::sleep(Duration::from_secs(50)).await;
    let (recorder, _) = harness.stop().await;
    assert_eq!(recorder.started_at(), [10_000, 25_000, 40_000]);
    assert_eq!(
        recorder.scheduled(),
        [
            "2026-01-01T00:00:15.000Z",
            "2026-01-01T00:00:30.000Z",
            "2026-01-01T00:00:45.000Z"
        ]
    );
    assert_eq!(recorder.lateness_ms(), [0, 0, 0]);
    assert_eq!(
        recorder.next(),
        [
            Some("2026-01-01T00:00:15Z".to_owned()),
            Some("2026-01-01T00:00:30Z".to_owned()),
            Some("2026-01-01T00:00:45Z".to_owned()),
            Some("2026-01-01T00:01:00Z".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_suspended_machine_catches_a_frequent_cron_schedule_up_once() {
    let harness = start_at(
        Schedule::cron("*/15 * * * * *"),
        "2026-01-01T00:00:05Z",
        instant_run(),
    );
    tokio::time::sleep(Duration::from_secs(12)).await;
    // Suspended for an hour: the wall clock jumps, the monotonic one does not.
    harness.clock.step(3600);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (recorder, _) = harness.stop().await;
    // Run 1 at 00:00:15 (10 s). Then the loop sleeps to 00:00:30 on the
    // monotonic clock (25 s), which is 01:00:30 on the wall: 240 ticks due,
    // the latest on time; one run for them.
    assert_eq!(recorder.started_at(), [10_000, 25_000]);
    assert_eq!(
        recorder.scheduled(),
        ["2026-01-01T00:00:15.000Z", "2026-01-01T01:00:30.000Z"]
    );
    assert_eq!(
        recorder.skipped(),
        [(240, SkipReason::Missed { caught_up: true })]
    );
}

#[tokio::test(start_paused = true)]
async fn a_daily_cron_time_missed_by_hours_is_skipped_within_a_minute() {
    let harness = start_at(
        Schedule::cron("0 0 3 * * *"),
        "2026-01-01T02:59:00Z",
        instant_run(),
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    // Suspended for two hours at 02:59:30.
    harness.clock.step(7200);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (recorder, _) = harness.stop().await;
    assert!(recorder.started_at().is_empty());
    assert_eq!(
        recorder.skipped(),
        [(1, SkipReason::Missed { caught_up: false })]
    );
    assert_eq!(
        recorder.next(),
        [
            Some("2026-01-01T03:00:00Z".to_owned()),
            Some("2026-01-02T03:00:00Z".to_owned())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_wall_clock_set_back_does_not_run_a_cron_time_twice() {
    let harness = start_at(
        Schedule::cron("*/10 * * * * *"),
        "2026-01-01T00:00:05Z",
        instant_run(),
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    // At 00:00:11 the clock is set back 30 s, to 23:59:41.
    harness.clock.step(-30);
    tokio::time::sleep(Duration::from_secs(45)).await;
    let (recorder, _) = harness.stop().await;
    // 00:00:10 ran at 5 s; 00:00:20 comes 39 s of wall time after the
    // step: at 45 s. 00:00:00 and 00:00:10 did not run again.
    assert_eq!(recorder.started_at(), [5_000, 45_000]);
    assert_eq!(
        recorder.scheduled(),
        ["2026-01-01T00:00:10.000Z", "2026-01-01T00:00:20.000Z"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_berlin_cron_time_in_the_spring_gap_runs_once() {
    let harness = start_at(
        Schedule::cron("30 2 * * *").time_zone("Europe/Berlin"),
        "2026-03-29T00:59:00Z",
        instant_run(),
    );
    tokio::time::sleep(Duration::from_secs(180)).await;
    let (recorder, _) = harness.stop().await;
    // 03:00 CEST, the first instant after the gap, once.
    assert_eq!(recorder.scheduled(), ["2026-03-29T01:00:00.000Z"]);
    assert_eq!(recorder.started_at(), [60_000]);
    assert_eq!(
        recorder.next().last().cloned().flatten().as_deref(),
        Some("2026-03-30T00:30:00Z")
    );
}

#[tokio::test(start_paused = true)]
async fn a_cron_schedule_with_no_more_times_waits_for_the_stop() {
    let harness = start_at(
        Schedule::cron("0 0 12 1 1 * 2026"),
        "2026-01-01T11:59:50Z",
        instant_run(),
    );
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(!harness.task.is_finished());
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    assert_eq!(recorder.started_at(), [10_000]);
    assert_eq!(
        recorder.next(),
        [Some("2026-01-01T12:00:00Z".to_owned()), None]
    );
}

#[tokio::test(start_paused = true)]
async fn an_already_stopped_loop_returns_at_once() {
    let harness = start(Schedule::every(ms(10)).starting_now(), instant_run());
    harness.stopping.cancel();
    let (recorder, ended) = harness.stop().await;
    ended.unwrap();
    assert!(recorder.started_at().is_empty());
}

/// Log lines written while the guard lives, on this thread (every task of a
/// paused-time test runs on it).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl tracing_subscriber::fmt::MakeWriter<'_> for Logs {
    type Writer = Self;

    fn make_writer(&self) -> Self {
        self.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn skipped_ticks_are_logged_with_the_service_the_count_and_why() {
    let (logs, _guard) = Logs::capture();
    let schedule = Schedule::every(ms(10)).catch_up(Duration::from_secs(1));
    let harness = start(schedule, cancellable_run(ms(15)));
    tokio::time::sleep(ms(22)).await;
    tokio::time::advance(ms(1000)).await;
    tokio::time::sleep(ms(1)).await;
    harness.stop().await.1.unwrap();
    let text = logs.text();
    // The overlap at 20 ms, while run 1 (10–25) is going.
    assert!(
        text.contains(
            "WARN host_core::scheduling::runner: the tick of 2026-01-01T00:00:00.020Z skipped: \
             run 1 is still going (overlap: skip) service=\"app::Cleanup\" skipped=1"
        ),
        "{text}"
    );
    // Woken at 1022 ms for the tick of 30: 30 to 1020 are due, the latest 2 ms late.
    assert!(
        text.contains(
            "WARN host_core::scheduling::runner: 100 ticks missed: the schedule woke 992ms \
             after the first; one run is made for them (catch-up window 1s) \
             service=\"app::Cleanup\" skipped=99"
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn skipped_missed_ticks_are_logged_as_skipped() {
    let (logs, _guard) = Logs::capture();
    let schedule = Schedule::every(Duration::from_secs(10)).catch_up(Duration::from_secs(2));
    let harness = start(schedule, instant_run());
    tokio::time::sleep(Duration::from_secs(12)).await;
    tokio::time::advance(Duration::from_secs(25)).await;
    tokio::time::sleep(ms(1)).await;
    harness.stop().await.1.unwrap();
    let text = logs.text();
    assert!(
        text.contains(
            "WARN host_core::scheduling::runner: 2 ticks missed: the schedule woke 17s after \
             the first, and the latest is more than the catch-up window of 2s ago; skipped \
             service=\"app::Cleanup\" skipped=2"
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_suspend_is_noticed_within_a_minute_of_the_wall_clocks_jump() {
    let harness = start_at(Schedule::cron("0 0 3 * * *"), START, instant_run());
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Suspended from 00:00:10 until 02:59:40, the monotonic clock standing still.
    harness.clock.step(3 * 3600 - 30);
    tokio::time::sleep(Duration::from_secs(120)).await;
    let (recorder, _) = harness.stop().await;
    // The sleep toward 03:00 (three hours on the monotonic clock) ends
    // after a minute at most, at 03:00:30 on the wall: 03:00 is 30 s late,
    // within the window, and runs.
    assert_eq!(recorder.started_at(), [60_000]);
    assert_eq!(recorder.scheduled(), ["2026-01-01T03:00:00.000Z"]);
    assert_eq!(recorder.lateness_ms(), [30_000]);
}

#[tokio::test(start_paused = true)]
async fn a_loop_dropped_unfinished_aborts_its_run() {
    let finished = Arc::new(AtomicBool::new(false));
    let body: Body = {
        let finished = finished.clone();
        Arc::new(move |_| {
            let finished = finished.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                finished.store(true, Ordering::SeqCst);
                Ok(())
            }
            .boxed()
        })
    };
    let harness = start(Schedule::every(ms(10)), body);
    tokio::time::sleep(ms(15)).await;
    // As the host does with a service still running after its shutdown timeout.
    harness.task.abort();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(harness.recorder.started_at(), [10]);
    assert!(
        !finished.load(Ordering::SeqCst),
        "the run outlived its loop"
    );
}
