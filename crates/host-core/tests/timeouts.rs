//! Shutdown and startup timeouts, on paused time.

mod common;

use std::time::Duration;

use common::{Behaviour, Journal, Recorder, test_builder};
use host_core::{
    BackgroundService, Phase, ServiceContext, ServiceError, ServiceState, async_trait,
};
use tokio::time::Instant;

struct IgnoresToken;

#[async_trait]
impl BackgroundService for IgnoresToken {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_timeout_names_and_aborts_what_is_still_running() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .configure_host_options(|options| options.shutdown_timeout = Duration::from_secs(5))
        .add_hosted_service_instance(Recorder::new("first", &journal))
        .add_hosted_service_instance(IgnoresToken)
        .add_hosted_service_instance(Recorder::new("last", &journal));
    let mut host = builder.build().unwrap();
    let states = host.service_states();
    host.start().await.unwrap();

    let began = Instant::now();
    let error = host.stop().await.unwrap_err();
    let took = began.elapsed();

    assert_eq!(
        error.to_string(),
        "shutdown timed out after 5s; still running: timeouts::IgnoresToken (aborted)"
    );
    assert_eq!(error.exit_code(), 3);
    assert!(error.is_shutdown_timeout());
    // The whole stop is bounded by the timeout (plus the short wait for the
    // aborted task, which ends at once here).
    assert!(
        took >= Duration::from_secs(5) && took <= Duration::from_secs(6),
        "{took:?}"
    );
    // Services on either side were stopped all the same.
    assert_eq!(journal.of("stop"), ["last:stop", "first:stop"]);
    assert_eq!(journal.of("stopped"), ["last:stopped", "first:stopped"]);
    assert!(matches!(
        states.get("timeouts::IgnoresToken"),
        Some(ServiceState::Stopped)
    ));
}

#[tokio::test(start_paused = true)]
async fn after_the_timeout_each_remaining_call_gets_one_poll_with_its_token_fired() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .configure_host_options(|options| options.shutdown_timeout = Duration::from_secs(2))
        .add_hosted_service_instance(
            Recorder::new("honours", &journal).on(Phase::Stop, Behaviour::HonourToken),
        )
        .add_hosted_service_instance(
            Recorder::new("hangs", &journal).on(Phase::Stop, Behaviour::Hang),
        );
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    let began = Instant::now();
    let error = host.stop().await.unwrap_err();
    assert!(began.elapsed() < Duration::from_secs(3));
    assert_eq!(
        error.to_string(),
        "shutdown timed out after 2s; still running: hangs (aborted)"
    );
    // `honours` was stopped after the deadline, and returned on its one poll.
    assert!(
        journal
            .entries()
            .contains(&"honours:stop-cancelled".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn the_startup_timeout_fails_the_start_and_rolls_back() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .configure_host_options(|options| options.startup_timeout = Some(Duration::from_secs(10)))
        .add_hosted_service_instance(Recorder::new("quick", &journal))
        .add_hosted_service_instance(
            Recorder::new("slow", &journal).on(Phase::Start, Behaviour::Hang),
        )
        .add_hosted_service_instance(Recorder::new("never", &journal));
    let mut host = builder.build().unwrap();
    let began = Instant::now();
    let error = host.start().await.unwrap_err();
    assert_eq!(began.elapsed(), Duration::from_secs(10));
    assert_eq!(
        error.to_string(),
        "host failed to start: startup timed out after 10s; still starting: slow\n  \
         rolled back: quick (stopped)"
    );
    assert!(error.is_startup_timeout());
    assert_eq!(error.exit_code(), 1);
    assert_eq!(journal.of("start"), ["quick:start", "slow:start"]);
    assert_eq!(journal.of("stop"), ["quick:stop"]);
}

#[tokio::test(start_paused = true)]
async fn a_start_that_honours_its_token_fails_cleanly_at_the_startup_timeout() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .configure_host_options(|options| options.startup_timeout = Some(Duration::from_secs(1)))
        .add_hosted_service_instance(
            Recorder::new("waits", &journal).on(Phase::Start, Behaviour::HonourToken),
        );
    let mut host = builder.build().unwrap();
    // The start returns on its one poll after the deadline, so it completed
    // and is stopped again; the start still failed: the deadline passed.
    let error = host.start().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "host failed to start: startup timed out after 1s\n  rolled back: waits (stopped)"
    );
    assert!(
        journal
            .entries()
            .contains(&"waits:start-cancelled".to_owned())
    );
    assert_eq!(journal.of("stop"), ["waits:stop"]);
}

#[tokio::test(start_paused = true)]
async fn concurrent_stop_is_bounded_by_the_same_timeout() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .configure_host_options(|options| {
            options.shutdown_timeout = Duration::from_secs(3);
            options.services_stop_concurrently = true;
        })
        .add_hosted_service_instance(Recorder::new("a", &journal).on(Phase::Stop, Behaviour::Hang))
        .add_hosted_service_instance(Recorder::new("b", &journal).on(Phase::Stop, Behaviour::Hang))
        .add_hosted_service_instance(Recorder::new("c", &journal));
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    let began = Instant::now();
    let error = host.stop().await.unwrap_err();
    assert!(began.elapsed() < Duration::from_secs(4));
    assert_eq!(
        error.to_string(),
        "shutdown timed out after 3s; still running: b, a (aborted)"
    );
    assert_eq!(journal.of("stopped").len(), 3);
}
