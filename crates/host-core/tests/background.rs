//! Background services: spawned, never polled by `start`; failures and their
//! behaviours; states.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::test_builder;
use host_core::{
    BackgroundService, BackgroundServiceFailure, HostedService, LifecycleContext, Phase,
    ServiceContext, ServiceError, ServiceState, async_trait,
};

const NO_HANG: Duration = Duration::from_secs(30);

/// `execute` blocks its thread until a later service's `start` releases it:
/// if `start` polled `execute`, the host would never reach that later start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_never_polls_execute_even_a_synchronous_prefix() {
    struct BlockingPrefix(std::sync::Mutex<std::sync::mpsc::Receiver<()>>);

    #[async_trait]
    impl BackgroundService for BlockingPrefix {
        async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
            // Synchronous, before any .await: blocks this worker thread.
            self.0.lock().unwrap().recv().unwrap();
            Ok(())
        }
    }

    struct Releaser(std::sync::mpsc::Sender<()>);

    #[async_trait]
    impl HostedService for Releaser {
        async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            self.0.send(()).unwrap();
            Ok(())
        }
        async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            Ok(())
        }
    }

    let (release, wait) = std::sync::mpsc::channel();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(BlockingPrefix(std::sync::Mutex::new(wait)))
        .add_hosted_service_instance(Releaser(release));
    let mut host = builder.build().unwrap();
    tokio::time::timeout(NO_HANG, host.start())
        .await
        .expect("the second service started while the first one's execute blocked")
        .unwrap();
    tokio::time::timeout(NO_HANG, host.stop())
        .await
        .unwrap()
        .unwrap();
}

struct Ticker {
    polled: Arc<AtomicUsize>,
    ended: Arc<AtomicUsize>,
}

#[async_trait]
impl BackgroundService for Ticker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        self.polled.fetch_add(1, Ordering::SeqCst);
        ctx.stopping().await;
        self.ended.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn stop_cancels_the_token_and_waits_for_execute() {
    let polled = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let mut builder = test_builder();
    builder.add_hosted_service_instance(Ticker {
        polled: polled.clone(),
        ended: ended.clone(),
    });
    let mut host = builder.build().unwrap();
    let states = host.service_states();
    host.start().await.unwrap();
    assert!(matches!(
        states.get("background::Ticker"),
        Some(ServiceState::Running)
    ));
    while polled.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    host.stop().await.unwrap();
    assert_eq!(
        ended.load(Ordering::SeqCst),
        1,
        "stop returned only after execute did"
    );
    assert!(matches!(
        states.get("background::Ticker"),
        Some(ServiceState::Stopped)
    ));
}

struct Finite;

#[async_trait]
impl BackgroundService for Finite {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

#[tokio::test]
async fn execute_returning_ok_early_completes_and_the_host_keeps_running() {
    let mut builder = test_builder();
    builder.add_hosted_service_instance(Finite);
    let mut host = builder.build().unwrap();
    let states = host.service_states();
    let mut changes = states.subscribe();
    host.start().await.unwrap();
    tokio::time::timeout(
        NO_HANG,
        changes.wait_for(|_| {
            matches!(
                states.get("background::Finite"),
                Some(ServiceState::Completed)
            )
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!host.lifetime().is_stop_requested());
    assert!(states.all_healthy());
    host.stop().await.unwrap();
}

enum Failure {
    Error,
    Panic,
}

struct Failing(Failure);

#[async_trait]
impl BackgroundService for Failing {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        tokio::task::yield_now().await;
        match self.0 {
            Failure::Error => Err(anyhow::anyhow!("the queue went away")),
            Failure::Panic => panic!("unexpected message"),
        }
    }
}

#[tokio::test]
async fn a_failing_execute_stops_the_host_with_exit_code_one() {
    for (failure, message) in [
        (
            Failure::Error,
            "`background::Failing` failed in execute: the queue went away",
        ),
        (
            Failure::Panic,
            "`background::Failing` panicked in execute: unexpected message",
        ),
    ] {
        let mut builder = test_builder();
        builder
            .add_hosted_service_instance(Ticker {
                polled: Arc::default(),
                ended: Arc::default(),
            })
            .add_hosted_service_instance(Failing(failure));
        let host = builder.build().unwrap();
        let states = host.service_states();
        let error = tokio::time::timeout(NO_HANG, host.run())
            .await
            .expect("the failure stops the host")
            .unwrap_err();
        assert_eq!(error.to_string(), message);
        assert_eq!(error.exit_code(), 1);
        assert_eq!(error.failures()[0].phase(), Phase::Execute);
        // The other service was stopped gracefully.
        assert!(matches!(
            states.get("background::Ticker"),
            Some(ServiceState::Stopped)
        ));
    }
}

#[tokio::test]
async fn under_ignore_a_failure_is_logged_and_the_host_keeps_running() {
    let mut builder = test_builder();
    builder
        .configure_host_options(|options| {
            options.background_service_failure = BackgroundServiceFailure::Ignore;
        })
        .add_hosted_service_instance(Failing(Failure::Panic));
    let mut host = builder.build().unwrap();
    let states = host.service_states();
    let mut changes = states.subscribe();
    host.start().await.unwrap();
    tokio::time::timeout(
        NO_HANG,
        changes.wait_for(|_| {
            matches!(
                states.get("background::Failing"),
                Some(ServiceState::Failed(_))
            )
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!host.lifetime().is_stop_requested());
    assert!(!states.all_healthy());
    host.stop().await.unwrap();
    let status = &states.snapshot()[0];
    assert_eq!(
        status.last_failure.as_ref().unwrap().to_string(),
        "`background::Failing` panicked in execute: unexpected message"
    );
}

#[tokio::test]
async fn hooks_run_around_start_and_stop() {
    struct Hooked(Arc<std::sync::Mutex<Vec<&'static str>>>);

    #[async_trait]
    impl BackgroundService for Hooked {
        async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
            self.0.lock().unwrap().push("execute");
            ctx.stopping().await;
            self.0.lock().unwrap().push("execute-returns");
            Ok(())
        }
        async fn before_start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            self.0.lock().unwrap().push("before_start");
            Ok(())
        }
        async fn after_stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            self.0.lock().unwrap().push("after_stop");
            Ok(())
        }
        async fn starting(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            self.0.lock().unwrap().push("starting");
            Ok(())
        }
        async fn stopped(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            self.0.lock().unwrap().push("stopped");
            Ok(())
        }
    }

    let journal = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut builder = test_builder();
    builder.add_hosted_service_instance(Hooked(journal.clone()));
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    while !journal.lock().unwrap().contains(&"execute") {
        tokio::task::yield_now().await;
    }
    host.stop().await.unwrap();
    assert_eq!(
        *journal.lock().unwrap(),
        [
            "starting",
            "before_start",
            "execute",
            "execute-returns",
            "after_stop",
            "stopped"
        ]
    );
}

struct Refuses(Arc<AtomicUsize>);

#[async_trait]
impl BackgroundService for Refuses {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn before_start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        anyhow::bail!("no database")
    }
}

#[tokio::test]
async fn a_failing_before_start_fails_the_start_and_execute_never_runs() {
    let executed = Arc::new(AtomicUsize::new(0));
    let mut builder = test_builder();
    builder.add_hosted_service_instance(Refuses(executed.clone()));
    let mut host = builder.build().unwrap();
    let error = host.start().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "host failed to start: `background::Refuses` failed in start: no database"
    );
    tokio::task::yield_now().await;
    assert_eq!(executed.load(Ordering::SeqCst), 0);
}

struct Inner;

#[async_trait]
impl BackgroundService for Inner {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

struct Outer(Inner);

#[async_trait]
impl HostedService for Outer {
    async fn start(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        HostedService::start(&self.0, ctx).await
    }
    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_background_service_started_by_another_service_is_refused_clearly() {
    let mut builder = test_builder();
    builder.add_hosted_service_instance(Outer(Inner));
    let mut host = builder.build().unwrap();
    let error = host.start().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "host failed to start: `background::Outer` failed in start: the background service \
         `background::Inner` was started on behalf of `background::Outer`; register it with \
         the host itself (`add_hosted_service`) instead of starting it from another service"
    );
}
