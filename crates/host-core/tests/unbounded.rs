//! `Duration::MAX` as a timeout means no timeout: nothing overflows when a
//! deadline is computed from it.

mod common;

use std::time::Duration;

use common::{Cooperative, Journal, Recorder, test_builder};
use host_core::{HostedService, LifecycleContext, ServiceError, async_trait};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn duration_max_timeouts_start_and_stop_a_host() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .configure_host_options(|options| {
            options.startup_timeout = Some(Duration::MAX);
            options.shutdown_timeout = Duration::MAX;
        })
        .add_hosted_service_instance(Recorder::new("recorder", &journal))
        .add_hosted_service_instance(Cooperative);
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    host.lifetime().stop_application();
    host.wait_for_shutdown().await;
    host.stop().await.unwrap();
    assert_eq!(journal.of("start"), ["recorder:start"]);
    assert_eq!(journal.of("stop"), ["recorder:stop"]);
}

/// Its start and stop each take a year (longer than any default timeout).
struct Slow;

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

#[async_trait]
impl HostedService for Slow {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(YEAR).await;
        Ok(())
    }

    async fn stop(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(YEAR).await;
        anyhow::ensure!(!ctx.is_cancelled(), "the stop's token fired");
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn duration_max_timeouts_never_expire() {
    let mut builder = test_builder();
    builder
        .configure_host_options(|options| {
            options.startup_timeout = Some(Duration::MAX);
            options.shutdown_timeout = Duration::MAX;
        })
        .add_hosted_service_instance(Slow);
    let mut host = builder.build().unwrap();
    let began = Instant::now();
    host.start().await.unwrap();
    assert_eq!(began.elapsed(), YEAR);
    host.stop().await.unwrap();
    assert_eq!(began.elapsed(), YEAR * 2);
}

/// The run-to-exit path arms its watchdog with the shutdown timeout: a
/// panic there would kill the watchdog's thread (silently, but for the
/// panic hook) the moment the stop is requested.
#[tokio::test]
async fn duration_max_on_the_run_to_exit_path_panics_nowhere() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let panicked = Arc::new(AtomicBool::new(false));
    let seen = panicked.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.store(true, Ordering::SeqCst);
        previous(info);
    }));
    let mut builder = test_builder();
    builder
        .configure_host_options(|options| options.shutdown_timeout = Duration::MAX)
        .add_hosted_service_instance(Cooperative);
    let host = builder.build().unwrap();
    let lifetime = host.lifetime().clone();
    let run = tokio::spawn(host.run_until_exit());
    lifetime.started().await;
    lifetime.stop_application();
    let code = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the host stops")
        .unwrap();
    assert_eq!(
        format!("{code:?}"),
        format!("{:?}", std::process::ExitCode::SUCCESS)
    );
    // The watchdog's thread computes its limit as soon as the stop is requested.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = std::panic::take_hook();
    assert!(!panicked.load(Ordering::SeqCst), "a thread panicked");
}
