//! Restart policies: backoff, the limit, the stable period, `Unrecoverable`,
//! the kept or fresh instance, and no restart once the stop has begun.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_core::{
    BackgroundService, BackgroundServiceFailure, Restart, ServiceContext, ServiceError,
    ServiceState, Unrecoverable, anyhow, async_trait, bail,
};
use host_testing::TestHost;
use tokio::time::Instant;

const NAME: &str = "restart::Flaky";

/// Waits on the paused clock until `done`, failing the test after an hour
/// of it (a hang fails rather than waits forever).
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..36_000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

/// Fails its first `failures` runs, then runs until stopped; notes when
/// each run began, on the instance itself (which survives restarts).
struct Flaky {
    failures: u32,
    runs: AtomicU32,
    began: Mutex<Vec<Instant>>,
}

impl Flaky {
    fn failing(failures: u32) -> Self {
        Self {
            failures,
            runs: AtomicU32::new(0),
            began: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl BackgroundService for Flaky {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        self.began.lock().unwrap().push(Instant::now());
        let run = self.runs.fetch_add(1, Ordering::SeqCst);
        assert_eq!(ctx.restarts(), run, "the context counts the restarts");
        if run < self.failures {
            bail!("boom {run}");
        }
        ctx.stopping().await;
        Ok(())
    }
}

fn exact(initial: u64, max: u64) -> Restart {
    Restart::on_failure()
        .backoff(Duration::from_millis(initial), Duration::from_millis(max))
        .jitter(0.0)
}

#[tokio::test(start_paused = true)]
async fn a_failure_restarts_after_a_doubling_backoff_on_the_same_instance() {
    let flaky = Arc::new(Flaky::failing(3));
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(Shared(flaky.clone()), |s| s.restart(exact(100, 250)));
    let host = builder.start().await.unwrap();
    host.wait_for(NAME, |state| matches!(state, ServiceState::Running))
        .await;
    until("four runs", || flaky.runs.load(Ordering::SeqCst) >= 4).await;
    let began = flaky.began.lock().unwrap().clone();
    let gaps: Vec<u128> = began
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    // 100, 200, then capped at 250.
    assert_eq!(gaps, [100, 200, 250]);
    let status = &host.states().snapshot()[0];
    assert_eq!(status.restarts, 3);
    assert!(
        status
            .last_failure
            .as_ref()
            .unwrap()
            .cause()
            .contains("boom 2")
    );
    host.assert_events(&[
        (NAME, "running"),
        (NAME, "restarting"),
        (NAME, "running"),
        (NAME, "restarting"),
        (NAME, "running"),
        (NAME, "restarting"),
        (NAME, "running"),
    ]);
    host.assert_logged(
        "`restart::Flaky` failed in execute: boom 0; restarting in 100ms (attempt 1)",
    );
    host.assert_logged("boom 2; restarting in 250ms (attempt 3)");
    host.stop().await.unwrap();
}

/// Registers a shared `Flaky` so the test can look at it.
struct Shared(Arc<Flaky>);

#[async_trait]
impl BackgroundService for Shared {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        NAME.into()
    }

    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        self.0.execute(ctx).await
    }
}

#[tokio::test(start_paused = true)]
async fn past_the_limit_the_supervisor_gives_up_and_the_failure_stops_the_host() {
    let flaky = Arc::new(Flaky::failing(u32::MAX));
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(Shared(flaky.clone()), |s| {
        s.restart(exact(10, 10).limit(2, Duration::from_secs(60)))
    });
    let host = builder.start().await.unwrap();
    host.host().lifetime().stop_requested().await;
    assert_eq!(
        flaky.runs.load(Ordering::SeqCst),
        3,
        "two restarts, then no more"
    );
    host.assert_logged("giving up after 2 restarts within 60s");
    let states = host.states();
    let error = host.stop().await.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(error.to_string().contains("boom 2"), "{error}");
    assert_eq!(states.snapshot()[0].restarts, 2);
}

#[tokio::test(start_paused = true)]
async fn under_ignore_a_service_given_up_on_is_failed_and_the_host_runs_on() {
    let flaky = Arc::new(Flaky::failing(u32::MAX));
    let mut builder = TestHost::builder();
    builder
        .configure_host_options(|o| o.background_service_failure = BackgroundServiceFailure::Ignore)
        .add_hosted_service_instance_with(Shared(flaky.clone()), |s| {
            s.restart(exact(10, 10).limit(1, Duration::from_secs(60)))
        });
    let host = builder.start().await.unwrap();
    host.wait_for(NAME, |state| matches!(state, ServiceState::Failed(_)))
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 2);
    assert!(!host.host().lifetime().is_stop_requested());
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stable_run_starts_the_backoff_again_from_the_initial_delay() {
    /// Fails after 1 s twice, then after 40 s (stable), then runs.
    struct Settles(Mutex<Vec<Instant>>);

    #[async_trait]
    impl BackgroundService for Settles {
        async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
            let run = {
                let mut began = self.0.lock().unwrap();
                began.push(Instant::now());
                began.len()
            };
            let lasts = match run {
                1 | 2 => Duration::from_secs(1),
                3 => Duration::from_secs(40),
                _ => {
                    ctx.stopping().await;
                    return Ok(());
                }
            };
            tokio::time::sleep(lasts).await;
            bail!("run {run} failed")
        }
    }

    let settles = Arc::new(Settles(Mutex::new(Vec::new())));
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(ArcService(settles.clone()), |s| {
        s.restart(exact(100, 10_000).reset_after(Duration::from_secs(30)))
    });
    let host = builder.start().await.unwrap();
    until("four runs", || settles.0.lock().unwrap().len() >= 4).await;
    let began = settles.0.lock().unwrap().clone();
    let waits: Vec<u128> = [(0, 1, 1), (1, 2, 1), (2, 3, 40)]
        .iter()
        .map(|&(a, b, ran)| (began[b] - began[a] - Duration::from_secs(ran)).as_millis())
        .collect();
    assert_eq!(waits, [100, 200, 100]);
    host.stop().await.unwrap();
}

/// A service behind an `Arc`, under its own name.
struct ArcService<T>(Arc<T>);

#[async_trait]
impl<T: BackgroundService> BackgroundService for ArcService<T> {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        self.0.name()
    }

    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        self.0.execute(ctx).await
    }
}

/// Returns `Ok` at once, `runs` times, then waits for the stop.
struct Quick(AtomicU32, u32);

#[async_trait]
impl BackgroundService for Quick {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        if self.0.fetch_add(1, Ordering::SeqCst) + 1 < self.1 {
            return Ok(());
        }
        ctx.stopping().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn always_restarts_after_ok_and_on_failure_does_not() {
    let always = Arc::new(Quick(AtomicU32::new(0), 3));
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(ArcService(always.clone()), |s| {
        s.restart(Restart::always().backoff(Duration::from_millis(5), Duration::from_millis(5)))
    });
    let host = builder.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(always.0.load(Ordering::SeqCst), 3);
    host.stop().await.unwrap();

    let once = Arc::new(Quick(AtomicU32::new(0), 3));
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(ArcService(once.clone()), |s| {
        s.restart(Restart::on_failure())
    });
    let host = builder.start().await.unwrap();
    host.wait_for("restart::Quick", |state| {
        matches!(state, ServiceState::Completed)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(once.0.load(Ordering::SeqCst), 1);
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_unrecoverable_error_is_never_restarted() {
    struct WrongPassword(AtomicU32);

    #[async_trait]
    impl BackgroundService for WrongPassword {
        async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(
                ServiceError::from(Unrecoverable::new(anyhow!("the password is wrong")))
                    .context("connecting"),
            )
        }
    }

    let service = Arc::new(WrongPassword(AtomicU32::new(0)));
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(ArcService(service.clone()), |s| {
        s.restart(Restart::always())
    });
    let host = builder.start().await.unwrap();
    host.host().lifetime().stop_requested().await;
    assert_eq!(service.0.load(Ordering::SeqCst), 1);
    let error = host.stop().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("connecting: the password is wrong"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_restart_begins_once_the_stop_has_begun() {
    /// Fails when asked to stop, and once at once (then waits out a
    /// backoff of an hour).
    struct FailsOnStop(AtomicU32);

    #[async_trait]
    impl BackgroundService for FailsOnStop {
        async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            ctx.stopping().await;
            bail!("failed while stopping")
        }
    }

    let service = Arc::new(FailsOnStop(AtomicU32::new(0)));
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(ArcService(service.clone()), |s| {
        s.restart(exact(0, 0).limit(u32::MAX, Duration::from_secs(1)))
    });
    let host = builder.start().await.unwrap();
    let error = host.stop().await.unwrap_err();
    assert_eq!(
        service.0.load(Ordering::SeqCst),
        1,
        "no restart during the stop"
    );
    assert!(
        error.to_string().contains("failed while stopping"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_a_backoff_ends_it_at_once() {
    let flaky = Arc::new(Flaky::failing(u32::MAX));
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(Shared(flaky.clone()), |s| {
        s.restart(exact(3_600_000, 3_600_000))
    });
    let host = builder.start().await.unwrap();
    host.wait_for(NAME, |state| {
        matches!(state, ServiceState::Restarting { .. })
    })
    .await;
    let began = Instant::now();
    host.stop().await.unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 1);
}

mod fresh {
    use std::sync::atomic::{AtomicU32, Ordering};

    use host_core::{BackgroundService, Restart, ServiceContext, ServiceError, async_trait, bail};
    use host_di::{Dispose, Injectable};
    use host_testing::TestHost;

    static CREATED: AtomicU32 = AtomicU32::new(0);
    static DISPOSED: AtomicU32 = AtomicU32::new(0);

    /// Each instance fails its first run; counts instances and disposals.
    #[derive(Injectable)]
    #[injectable(dispose)]
    struct Fresh {
        #[inject(default)]
        runs: AtomicU32,
    }

    impl Dispose for Fresh {
        fn dispose(&self) {
            DISPOSED.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[async_trait]
    impl BackgroundService for Fresh {
        async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
            if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
                CREATED.fetch_add(1, Ordering::SeqCst);
                if ctx.restarts() < 2 {
                    bail!("a fresh instance fails its first run");
                }
            }
            ctx.stopping().await;
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_restart_runs_on_a_fresh_instance_and_the_last_is_disposed() {
        let mut builder = TestHost::builder();
        builder.add_hosted_service_with::<Fresh, _>(|s| {
            s.restart(Restart::on_failure().jitter(0.0))
                .fresh_instance_on_restart()
        });
        let host = builder.start().await.unwrap();
        super::until("three instances", || CREATED.load(Ordering::SeqCst) >= 3).await;
        // The registered instance, then two fresh ones; the first fresh one
        // was disposed when the second replaced it.
        assert_eq!(DISPOSED.load(Ordering::SeqCst), 1);
        host.stop().await.unwrap();
        // The last fresh one, and the registered one by the container.
        assert_eq!(DISPOSED.load(Ordering::SeqCst), 3);
    }

}
