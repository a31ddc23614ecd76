//! Periodic services on the test host: runs on their ticks, the next run in
//! the state, overlap, failures under a restart policy or none, a scope per
//! run, schedule build errors, cron on the wall clock, and schedules from
//! the `services` section, reloaded.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use host_core::{
    PeriodicService, Restart, RunContext, Schedule, ServiceError, ServiceState, async_trait, bail,
};
use host_testing::TestHost;
use tokio::sync::mpsc;
use tokio::time::Instant;

const CLEANUP: &str = "periodic::Cleanup";

/// What one run saw.
#[derive(Debug, Clone)]
struct Run {
    number: u64,
    scheduled: SystemTime,
    /// When it began, on tokio's clock.
    at: Instant,
    /// When it began, on the wall clock.
    wall: SystemTime,
}

/// Sends each run to the test; a run lasts `takes`, and the `fail_on`-th run
/// of the service's life (counting every schedule) fails.
struct Cleanup {
    sender: mpsc::UnboundedSender<Run>,
    takes: Duration,
    fail_on: Option<u32>,
    total: AtomicU32,
}

fn cleanup() -> (Cleanup, mpsc::UnboundedReceiver<Run>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (
        Cleanup {
            sender,
            takes: Duration::ZERO,
            fail_on: None,
            total: AtomicU32::new(0),
        },
        receiver,
    )
}

#[async_trait]
impl PeriodicService for Cleanup {
    async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
        let total = self.total.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.sender.send(Run {
            number: ctx.number(),
            scheduled: ctx.scheduled(),
            at: Instant::now(),
            wall: SystemTime::now(),
        });
        tokio::time::sleep(self.takes).await;
        if self.fail_on == Some(total) {
            bail!("run {total} failed on purpose");
        }
        Ok(())
    }
}

/// The next run; fails the test if none comes within two hours of tokio's
/// clock (at once in paused time).
async fn next(runs: &mut mpsc::UnboundedReceiver<Run>) -> Run {
    tokio::time::timeout(Duration::from_secs(7200), runs.recv())
        .await
        .expect("a run within two hours")
        .expect("the service holds its sender")
}

/// When each of `count` next runs began, in milliseconds after `start`.
async fn offsets(
    runs: &mut mpsc::UnboundedReceiver<Run>,
    start: Instant,
    count: usize,
) -> Vec<u128> {
    let mut offsets = Vec::new();
    for _ in 0..count {
        offsets.push((next(runs).await.at - start).as_millis());
    }
    offsets
}

#[tokio::test(start_paused = true)]
async fn an_interval_runs_exactly_on_its_ticks() {
    let real_start = SystemTime::now();
    let (service, mut runs) = cleanup();
    let mut builder = TestHost::builder();
    builder.add_periodic_instance(service, Schedule::every(Duration::from_millis(10)));
    let start = Instant::now();
    let host = builder.start().await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next(&mut runs).await);
    }
    let numbers: Vec<u64> = seen.iter().map(|run| run.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
    let at: Vec<u128> = seen
        .iter()
        .map(|run| (run.at - start).as_millis())
        .collect();
    assert_eq!(at, [10, 20, 30, 40, 50], "on the grid of the start");
    // A scheduled time is a wall time: the wall clock at its tick, which
    // paused time does not move (a cron schedule's are checked on the real
    // clock, below).
    for pair in seen.windows(2) {
        assert!(pair[1].scheduled >= pair[0].scheduled, "{pair:#?}");
    }
    for run in &seen {
        assert!(
            run.scheduled >= real_start && run.scheduled <= run.wall,
            "{run:?}"
        );
    }
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_next_run_in_the_state_moves_forward_with_each_tick() {
    let (service, mut runs) = cleanup();
    let mut builder = TestHost::builder();
    builder.add_periodic_instance(service, Schedule::every(Duration::from_secs(60)));
    let host = builder.start().await.unwrap();
    let states = host.states();
    let next_run = || states.snapshot()[0].next_run;
    // Once the schedule's loop has begun.
    for _ in 0..100 {
        if next_run().is_some() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let mut shown = next_run().expect("a next run once the schedule began");
    for number in 1..=3 {
        let run = next(&mut runs).await;
        assert_eq!(run.number, number);
        let now_shown = next_run().expect("a next run");
        assert_eq!(
            now_shown,
            run.scheduled + Duration::from_secs(60),
            "one period after run {number}'s time"
        );
        assert!(now_shown >= shown, "moved forward after run {number}");
        shown = now_shown;
    }
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_next_run_is_cleared_once_the_service_stops() {
    let (service, mut runs) = cleanup();
    let mut builder = TestHost::builder();
    builder.add_periodic_instance(service, Schedule::every(Duration::from_secs(60)));
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    next(&mut runs).await;
    assert!(host.states().snapshot()[0].next_run.is_some());
    host.host_mut().stop().await.unwrap();
    let status = &host.states().snapshot()[0];
    assert!(
        matches!(status.state, ServiceState::Stopped),
        "{}",
        status.state
    );
    assert_eq!(status.next_run, None, "none once stopped");
}

#[tokio::test(start_paused = true)]
async fn a_tick_during_a_run_is_skipped_and_logged() {
    let (mut service, mut runs) = cleanup();
    service.takes = Duration::from_millis(25);
    let mut builder = TestHost::builder();
    builder.add_periodic_instance(service, Schedule::every(Duration::from_millis(10)));
    let start = Instant::now();
    let host = builder.start().await.unwrap();
    // Run 1 lasts from 10 to 35 ms: the ticks of 20 and 30 ms are skipped.
    let first = next(&mut runs).await;
    let second = next(&mut runs).await;
    assert_eq!((first.number, second.number), (1, 2));
    assert_eq!(
        (first.at - start, second.at - start),
        (Duration::from_millis(10), Duration::from_millis(40))
    );
    let skipped: Vec<String> = host
        .logs()
        .into_iter()
        .filter(|line| line.contains("skipped: run 1 is still going (overlap: skip)"))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:#?}");
    assert!(skipped[0].starts_with("WARN"), "{}", skipped[0]);
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_under_a_restart_policy_starts_the_schedule_again() {
    let (mut service, mut runs) = cleanup();
    service.fail_on = Some(2);
    let mut builder = TestHost::builder();
    builder.add_periodic_instance_with(service, Schedule::every(Duration::from_millis(10)), |s| {
        s.restart(
            Restart::on_failure()
                .backoff(Duration::from_millis(100), Duration::from_millis(100))
                .jitter(0.0),
        )
    });
    let start = Instant::now();
    let host = builder.start().await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let run = next(&mut runs).await;
        seen.push((run.number, (run.at - start).as_millis()));
    }
    // Run 2 fails at 20 ms; 100 ms later the schedule starts again, and its
    // first tick is one period after that.
    assert_eq!(seen, [(1, 10), (2, 20), (1, 130), (2, 140)]);
    host.assert_logged(
        "`periodic::Cleanup` failed in execute: scheduled run 2 failed: run 2 failed on \
         purpose; restarting in 100ms (attempt 1)",
    );
    host.assert_events(&[
        (CLEANUP, "running"),
        (CLEANUP, "restarting"),
        (CLEANUP, "running"),
    ]);
    assert_eq!(host.states().snapshot()[0].restarts, 1);
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_without_a_policy_stops_the_host() {
    let (mut service, mut runs) = cleanup();
    service.fail_on = Some(3);
    let mut builder = TestHost::builder();
    builder.add_periodic_instance(service, Schedule::every(Duration::from_millis(10)));
    let host = builder.start().await.unwrap();
    host.host().lifetime().stop_requested().await;
    let mut numbers = Vec::new();
    while let Ok(run) = runs.try_recv() {
        numbers.push(run.number);
    }
    assert_eq!(numbers, [1, 2, 3], "no run after the failure");
    let failed = host.states().get(CLEANUP).unwrap();
    assert!(matches!(failed, ServiceState::Failed(_)), "{failed}");
    let error = host.stop().await.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert_eq!(
        error.to_string(),
        "`periodic::Cleanup` failed in execute: scheduled run 3 failed: run 3 failed on purpose"
    );
}

mod scopes {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use host_core::{PeriodicService, RunContext, Schedule, ServiceError, async_trait};
    use host_di::{DiErrorKind, Dispose, Injectable};
    use host_testing::TestHost;
    use tokio::sync::mpsc;

    static CREATED: AtomicU32 = AtomicU32::new(0);
    static DISPOSED: AtomicU32 = AtomicU32::new(0);

    /// Numbers each instance as it is created.
    struct Id(u32);

    impl Default for Id {
        fn default() -> Self {
            Self(CREATED.fetch_add(1, Ordering::SeqCst) + 1)
        }
    }

    /// A scoped service, as a unit of work is: counts its disposals.
    #[derive(Injectable)]
    #[injectable(dispose)]
    struct UnitOfWork {
        #[inject(default)]
        id: Id,
    }

    impl Dispose for UnitOfWork {
        fn dispose(&self) {
            DISPOSED.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A singleton, to tell the host's container.
    #[derive(Injectable)]
    struct Settings;

    /// What a run saw of its services.
    enum Seen {
        /// Its unit of work (the same one each time it asked), and how many
        /// had been disposed when it began.
        Scoped { id: u32, disposed_before: u32 },
        /// No scope: what resolving the unit of work and the singleton gave.
        Root {
            scoped: DiErrorKind,
            settings: Arc<Settings>,
        },
    }

    struct Job(mpsc::UnboundedSender<Seen>);

    /// What the next run saw; fails the test if no run reports within a
    /// minute of tokio's clock (a run that failed reports nothing).
    async fn next(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
        tokio::time::timeout(Duration::from_secs(60), seen.recv())
            .await
            .expect("a run reports within a minute")
            .expect("the service holds its sender")
    }

    #[async_trait]
    impl PeriodicService for Job {
        async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
            let services = ctx.services().expect("a host's run has services");
            let seen = match services.get::<UnitOfWork>() {
                Ok(unit) => {
                    let again = services.get::<UnitOfWork>()?;
                    assert!(Arc::ptr_eq(&unit, &again), "one per scope");
                    Seen::Scoped {
                        id: unit.id.0,
                        disposed_before: DISPOSED.load(Ordering::SeqCst),
                    }
                }
                Err(error) => Seen::Root {
                    scoped: error.kind(),
                    settings: services.get::<Settings>()?,
                },
            };
            let _ = self.0.send(seen);
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_run_gets_a_scope_of_its_own_closed_when_it_ends() {
        let (sender, mut seen) = mpsc::unbounded_channel();
        let mut builder = TestHost::builder();
        builder.services().add_scoped_self::<UnitOfWork>();
        builder.add_periodic_instance_with(
            Job(sender),
            Schedule::every(Duration::from_secs(1)),
            |s| s.scope_per_run(),
        );
        let host = builder.start().await.unwrap();
        for run in 1..=3 {
            let Seen::Scoped {
                id,
                disposed_before,
            } = next(&mut seen).await
            else {
                panic!("run {run} had no scope of its own");
            };
            assert_eq!((id, disposed_before), (run, run - 1), "run {run}");
        }
        host.stop().await.unwrap();
        assert_eq!(CREATED.load(Ordering::SeqCst), 3);
        assert_eq!(DISPOSED.load(Ordering::SeqCst), 3, "each at its run's end");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_scope_per_run_a_run_gets_the_hosts_container() {
        let (sender, mut seen) = mpsc::unbounded_channel();
        let mut builder = TestHost::builder();
        builder
            .services()
            .add_scoped_self::<UnitOfWork>()
            .add_singleton_self::<Settings>();
        builder.add_periodic_instance(Job(sender), Schedule::every(Duration::from_secs(1)));
        let host = builder.start().await.unwrap();
        let root = host.services().get::<Settings>().unwrap();
        let Seen::Root { scoped, settings } = next(&mut seen).await else {
            panic!("the run had a scope of its own");
        };
        assert_eq!(scoped, DiErrorKind::ScopedFromRoot);
        assert!(Arc::ptr_eq(&settings, &root), "the host's singleton");
        host.stop().await.unwrap();
    }
}

#[test]
fn an_invalid_cron_expression_is_a_build_error_naming_the_service() {
    let (service, _runs) = cleanup();
    let mut builder = TestHost::builder();
    builder.add_periodic_instance(service, Schedule::cron("0 */5 * *"));
    let error = builder.build_error();
    assert_eq!(error.exit_code(), 2);
    assert!(
        error.to_string().starts_with(
            "cannot build the host: `periodic::Cleanup`: invalid cron expression \"0 */5 * *\": "
        ),
        "{error}"
    );
}

#[test]
fn an_unknown_time_zone_is_a_build_error_naming_the_service() {
    let (service, _runs) = cleanup();
    let mut builder = TestHost::builder();
    builder.add_periodic_instance(
        service,
        Schedule::cron("0 0 3 * * *").time_zone("Europe/Atlantis"),
    );
    let error = builder.build_error();
    assert_eq!(error.exit_code(), 2);
    assert_eq!(
        error.to_string(),
        "cannot build the host: `periodic::Cleanup`: unknown time zone \"Europe/Atlantis\": \
         expects an IANA name such as \"Europe/Berlin\" or \"UTC\" (the case matters)"
    );
}

/// On the real clock: cron reads the wall clock, which paused time does not
/// move.
#[tokio::test]
async fn a_cron_schedule_with_seconds_runs_on_wall_clock_seconds() {
    let (service, mut runs) = cleanup();
    let mut builder = TestHost::builder();
    builder.add_periodic_instance(service, Schedule::cron("* * * * * *"));
    let began = SystemTime::now();
    let host = builder.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    host.stop().await.unwrap();
    let ended = SystemTime::now();
    let mut seen = Vec::new();
    while let Ok(run) = runs.try_recv() {
        seen.push(run);
    }
    assert!(seen.len() >= 2, "at least two runs in 2.5 s: {seen:#?}");
    let seconds = |time: SystemTime| time.duration_since(UNIX_EPOCH).unwrap();
    for (index, run) in seen.iter().enumerate() {
        assert_eq!(run.number, index as u64 + 1);
        assert_eq!(
            seconds(run.scheduled).subsec_nanos(),
            0,
            "on a whole second: {run:?}"
        );
        assert!(run.wall >= run.scheduled, "not before its time: {run:?}");
    }
    for pair in seen.windows(2) {
        assert!(
            seconds(pair[1].scheduled).as_secs() > seconds(pair[0].scheduled).as_secs(),
            "never two in the same second: {seen:#?}"
        );
    }
    let whole_seconds = seconds(ended).as_secs() - seconds(began).as_secs();
    assert!(
        seen.len() as u64 <= whole_seconds,
        "at most one run per second passed: {seen:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_schedule_from_the_services_section_overrides_the_codes() {
    let (service, mut runs) = cleanup();
    let mut builder = TestHost::builder();
    builder.args(["app", "--services.Cleanup.schedule.every=50ms"]);
    builder.add_periodic_instance(service, Schedule::every(Duration::from_secs(3600)));
    let start = Instant::now();
    let host = builder.start().await.unwrap();
    assert_eq!(offsets(&mut runs, start, 3).await, [50, 100, 150]);
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_reloaded_schedule_takes_effect_from_the_latest_tick_and_a_bad_one_is_kept_out() {
    let (service, mut runs) = cleanup();
    let mut builder = TestHost::builder();
    let settings = builder.content_dir().join("appsettings.toml");
    let write = |schedule: &str| {
        std::fs::write(
            &settings,
            format!("[services.Cleanup.schedule]\n{schedule}\n"),
        )
        .unwrap();
    };
    write("every = \"50ms\"");
    builder.configuration().appsettings(true);
    builder.add_periodic_instance(service, Schedule::every(Duration::from_secs(3600)));
    let start = Instant::now();
    let host = builder.start().await.unwrap();
    let configuration = host.services().get::<host_config::Configuration>().unwrap();
    assert_eq!(offsets(&mut runs, start, 2).await, [50, 100]);

    write("every = \"200ms\"");
    assert_eq!(configuration.reload().unwrap(), ["services"]);
    assert_eq!(offsets(&mut runs, start, 2).await, [300, 500]);
    host.assert_logged("schedule reloaded: every 200ms");

    write("cron = \"not a cron\"");
    assert_eq!(configuration.reload().unwrap(), ["services"]);
    host.assert_logged("`periodic::Cleanup`: invalid cron expression \"not a cron\": ");
    host.assert_logged("; keeping the current schedule");
    assert_eq!(
        offsets(&mut runs, start, 2).await,
        [700, 900],
        "on the old one"
    );

    // No schedule in the section: back to the code's, an hour from the
    // latest tick.
    std::fs::write(&settings, "").unwrap();
    assert_eq!(configuration.reload().unwrap(), ["services"]);
    assert_eq!(offsets(&mut runs, start, 1).await, [3_600_900]);
    host.assert_logged("schedule reloaded: every 1h");
    host.stop().await.unwrap();
}
