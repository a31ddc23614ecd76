//! Per-service start and stop timeouts, inside the host's.

use std::time::Duration;

use host_core::{
    BackgroundService, HostedService, LifecycleContext, ServiceContext, ServiceError, ServiceState,
    async_trait,
};
use host_testing::TestHost;
use tokio::time::Instant;

/// A hosted service whose start and stop take as long as they are told.
struct Slow {
    name: &'static str,
    start: Duration,
    stop: Duration,
}

#[async_trait]
impl HostedService for Slow {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        self.name.into()
    }

    async fn start(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(self.start).await;
        Ok(())
    }

    async fn stop(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(self.stop).await;
        Ok(())
    }
}

fn slow(name: &'static str, start: u64, stop: u64) -> Slow {
    Slow {
        name,
        start: Duration::from_secs(start),
        stop: Duration::from_secs(stop),
    }
}

#[tokio::test(start_paused = true)]
async fn a_start_past_its_own_timeout_fails_the_start_naming_the_service() {
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(slow("app::Fast", 0, 0))
        .add_hosted_service_instance_with(slow("app::Warmup", 60, 0), |s| {
            s.start_timeout(Duration::from_secs(2))
        });
    let mut host = builder.build().unwrap();
    let began = Instant::now();
    let error = host.start().await.unwrap_err();
    assert_eq!(began.elapsed(), Duration::from_secs(2));
    assert_eq!(error.exit_code(), 1);
    let message = error.to_string();
    assert!(
        message.starts_with(
            "host failed to start: `app::Warmup` failed in start: it did not start within its \
             start timeout (2s)"
        ),
        "{message}"
    );
    assert!(
        message.contains("rolled back: app::Fast (stopped)"),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_past_its_own_timeout_is_abandoned_and_named_while_the_others_stop() {
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(slow("app::First", 0, 1))
        .add_hosted_service_instance_with(slow("app::Stuck", 0, 3600), |s| {
            s.stop_timeout(Duration::from_secs(2))
        })
        .add_hosted_service_instance(slow("app::Last", 0, 1));
    let host = builder.start().await.unwrap();
    let states = host.states();
    let began = Instant::now();
    let error = host.stop().await.unwrap_err();
    // Last (1 s), Stuck (2 s, abandoned), First (1 s): well inside the
    // host's 30 s.
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(error.exit_code(), 3);
    let message = error.to_string();
    assert_eq!(
        message,
        "shutdown timed out; still running: app::Stuck (its stop timeout, 2s) (aborted)"
    );
    assert!(!message.contains("app::First"), "{message}");
    assert!(matches!(
        states.get("app::First"),
        Some(ServiceState::Stopped)
    ));
    assert!(matches!(
        states.get("app::Last"),
        Some(ServiceState::Stopped)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_background_service_that_ignores_its_token_is_aborted_at_its_stop_timeout() {
    struct Deaf;

    #[async_trait]
    impl BackgroundService for Deaf {
        async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(Deaf, |s| s.stop_timeout(Duration::from_secs(3)));
    let host = builder.start().await.unwrap();
    let began = Instant::now();
    let error = host.stop().await.unwrap_err();
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(error.exit_code(), 3);
    assert!(
        error
            .to_string()
            .contains("::Deaf (its stop timeout, 3s) (aborted)"),
        "{error}"
    );
}
