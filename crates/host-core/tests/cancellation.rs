//! The host's futures on the unhappy paths: a stop whose caller gives up, a
//! host or `run()` dropped while running, a stop requested before a
//! concurrent start.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Journal, Recorder, test_builder};
use host_core::{
    BackgroundService, HostedService, LifecycleContext, ServiceContext, ServiceError, async_trait,
};
use host_di::Dispose;

/// Bounds every wait, so that a hang fails the test.
const NO_HANG: Duration = Duration::from_secs(30);

/// A service whose `stop` takes half a second and then says it finished.
struct SlowStop(Arc<AtomicBool>);

#[async_trait]
impl HostedService for SlowStop {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// A singleton that records its disposal.
struct Disposable(Arc<AtomicBool>);

impl Dispose for Disposable {
    fn dispose(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn slow_stop_host() -> (host_core::Host, Arc<AtomicBool>, Arc<AtomicBool>) {
    let stopped = Arc::new(AtomicBool::new(false));
    let disposed = Arc::new(AtomicBool::new(false));
    let mut builder = test_builder();
    builder
        .services()
        .add_instance(Arc::new(Disposable(disposed.clone())))
        .disposable();
    builder.add_hosted_service_instance(SlowStop(stopped.clone()));
    (builder.build().unwrap(), stopped, disposed)
}

#[tokio::test(start_paused = true)]
async fn a_stop_whose_caller_gives_up_still_runs_to_its_end() {
    let (mut host, stopped, disposed) = slow_stop_host();
    let lifetime = host.lifetime().clone();
    host.start().await.unwrap();

    let abandoned = tokio::time::timeout(Duration::from_millis(50), host.stop()).await;
    assert!(
        abandoned.is_err(),
        "the first stop is cut short by its caller"
    );
    assert!(!stopped.load(Ordering::SeqCst));

    // The next call awaits the same stop, to its end.
    tokio::time::timeout(NO_HANG, host.stop())
        .await
        .expect("the stop ends")
        .unwrap();
    assert!(
        stopped.load(Ordering::SeqCst),
        "the service's stop ran to its end"
    );
    assert!(lifetime.is_stopped(), "the stopped event fired");
    assert!(
        disposed.load(Ordering::SeqCst),
        "the container was disposed"
    );
    // The outcome was returned; later calls do nothing.
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stop_goes_on_when_its_caller_and_the_host_are_dropped() {
    let (mut host, stopped, disposed) = slow_stop_host();
    let lifetime = host.lifetime().clone();
    host.start().await.unwrap();
    let abandoned = tokio::time::timeout(Duration::from_millis(50), host.stop()).await;
    assert!(abandoned.is_err());
    drop(host);

    tokio::time::timeout(NO_HANG, lifetime.stopped())
        .await
        .expect("the stop ends on its own");
    assert!(stopped.load(Ordering::SeqCst));
    // Disposal follows the stopped event on the same task.
    tokio::time::timeout(NO_HANG, async {
        while !disposed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the container is disposed");
}

#[tokio::test(start_paused = true)]
async fn a_run_dropped_during_its_stop_leaves_the_stop_running() {
    let (host, stopped, _) = slow_stop_host();
    let lifetime = host.lifetime().clone();
    let run = tokio::spawn(host.run());
    tokio::time::timeout(NO_HANG, lifetime.started())
        .await
        .unwrap();
    lifetime.stop_application();
    tokio::time::timeout(NO_HANG, lifetime.stopping())
        .await
        .unwrap();
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());

    tokio::time::timeout(NO_HANG, lifetime.stopped())
        .await
        .expect("the stop ends although run() was dropped");
    assert!(stopped.load(Ordering::SeqCst));
}

/// Ticks until stopped; says when its `execute` future is gone.
struct Ticker {
    ticks: Arc<AtomicUsize>,
    ended: Arc<AtomicBool>,
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl BackgroundService for Ticker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let _ended = SetOnDrop(self.ended.clone());
        // Ignores the token on purpose: only an abort ends it.
        drop(ctx);
        loop {
            self.ticks.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Counts its disposals.
struct Counted(Arc<AtomicUsize>);

impl Dispose for Counted {
    fn dispose(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn ticker_host() -> (
    host_core::Host,
    Arc<AtomicUsize>,
    Arc<AtomicBool>,
    Arc<AtomicUsize>,
) {
    let ticks = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicBool::new(false));
    let disposals = Arc::new(AtomicUsize::new(0));
    let mut builder = test_builder();
    builder
        .services()
        .add_instance(Arc::new(Counted(disposals.clone())))
        .disposable();
    builder.add_hosted_service_instance(Ticker {
        ticks: ticks.clone(),
        ended: ended.clone(),
    });
    (builder.build().unwrap(), ticks, ended, disposals)
}

async fn wait_until(flag: &AtomicBool, what: &str) {
    tokio::time::timeout(NO_HANG, async {
        while !flag.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
}

#[tokio::test]
async fn dropping_a_started_host_aborts_its_background_services_and_disposes() {
    let (mut host, ticks, ended, disposals) = ticker_host();
    let states = host.service_states();
    host.start().await.unwrap();
    while ticks.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    drop(host);
    wait_until(&ended, "the execute task ends when the host is dropped").await;
    assert_eq!(
        disposals.load(Ordering::SeqCst),
        1,
        "sync disposals ran once"
    );
    let after = ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        ticks.load(Ordering::SeqCst),
        after,
        "no tick after the drop"
    );
    assert!(
        states
            .snapshot()
            .iter()
            .all(|status| matches!(status.state, host_core::ServiceState::Stopped)),
        "{:?}",
        states.snapshot()
    );
}

#[tokio::test]
async fn dropping_run_before_its_stop_aborts_the_host() {
    let (host, ticks, ended, disposals) = ticker_host();
    let lifetime = host.lifetime().clone();
    let run = tokio::spawn(host.run());
    tokio::time::timeout(NO_HANG, lifetime.started())
        .await
        .unwrap();
    while ticks.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    wait_until(&ended, "the execute task ends when run() is dropped").await;
    assert_eq!(disposals.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_stopped_host_disposes_nothing_twice() {
    let (mut host, _, _, disposals) = ticker_host();
    host.start().await.unwrap();
    host.lifetime().stop_application();
    // The ticker ignores its token: aborted at the timeout.
    let error = host.stop().await.unwrap_err();
    assert!(error.is_shutdown_timeout(), "{error}");
    drop(host);
    assert_eq!(disposals.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropping_a_host_never_started_runs_its_sync_disposals() {
    let (host, _, _, disposals) = ticker_host();
    drop(host);
    assert_eq!(disposals.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_stop_requested_before_a_concurrent_start_starts_nothing() {
    for concurrently in [false, true] {
        let journal = Journal::default();
        let mut builder = test_builder();
        builder.configure_host_options(|options| {
            options.services_start_concurrently = concurrently;
        });
        builder
            .add_hosted_service_instance(Recorder::new("a", &journal))
            .add_hosted_service_instance(Recorder::new("b", &journal));
        let mut host = builder.build().unwrap();
        host.lifetime().stop_application();
        host.start().await.unwrap();
        assert!(
            journal.of("start").is_empty(),
            "concurrently: {concurrently}: {:?}",
            journal.entries()
        );
        host.stop().await.unwrap();
        assert!(journal.of("stop").is_empty(), "{:?}", journal.entries());
    }
}

#[tokio::test(start_paused = true)]
async fn a_start_dropped_midway_leaves_a_later_stop_to_stop_what_had_started() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(Recorder::new("a", &journal))
        .add_hosted_service_instance(
            Recorder::new("b", &journal).on(host_core::Phase::Start, common::Behaviour::Hang),
        )
        .add_hosted_service_instance(Recorder::new("c", &journal));
    let mut host = builder.build().unwrap();
    let states = host.service_states();
    let abandoned = tokio::time::timeout(Duration::from_millis(50), host.start()).await;
    assert!(abandoned.is_err(), "b's start never returns");
    assert_eq!(journal.of("start"), ["a:start", "b:start"]);

    tokio::time::timeout(NO_HANG, host.stop())
        .await
        .expect("the stop ends")
        .unwrap();
    // Only `a` completed its start: only `a` is stopped; `c` never started.
    assert_eq!(journal.of("stop"), ["a:stop"]);
    assert!(
        states.snapshot().iter().all(|status| !matches!(
            status.state,
            host_core::ServiceState::Starting | host_core::ServiceState::Running
        )),
        "{:?}",
        states.snapshot()
    );
}

#[tokio::test(start_paused = true)]
async fn wait_for_shutdown_can_be_given_up_and_awaited_again() {
    let mut host = test_builder().build().unwrap();
    host.start().await.unwrap();
    let given_up = tokio::time::timeout(Duration::from_millis(50), host.wait_for_shutdown()).await;
    assert!(given_up.is_err());
    host.lifetime().stop_application();
    tokio::time::timeout(NO_HANG, host.wait_for_shutdown())
        .await
        .expect("the request is seen by a later wait");
    host.stop().await.unwrap();
}
