//! `wait_for`: on paused time, brief states, and its failures.

mod support;

use std::time::Duration;

use host_core::{Restart, ServiceState};
use host_testing::TestHost;
use support::{Flaky, Idle, Reporting};

fn is_restarting(state: &ServiceState) -> bool {
    matches!(state, ServiceState::Restarting { .. })
}

#[tokio::test(start_paused = true)]
async fn a_long_backoff_passes_at_once_in_paused_time() {
    let backoff = Duration::from_secs(45);
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(Flaky::new("app::Flaky", 1), |flaky| {
        flaky.restart(Restart::on_failure().backoff(backoff, backoff).jitter(0.0))
    });
    let host = builder.start().await.unwrap();
    let state = host.wait_for("app::Flaky", is_restarting).await;
    let ServiceState::Restarting { attempt, .. } = state else {
        panic!("{state:?}")
    };
    assert_eq!(attempt, 1);
    let began = tokio::time::Instant::now();
    host.wait_for("app::Flaky", ServiceState::is_healthy).await;
    // The tokio clock went through the whole backoff.
    assert!(began.elapsed() >= backoff, "{:?}", began.elapsed());
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_current_state_is_returned_at_once() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Idle("app::Worker"));
    let host = builder.start().await.unwrap();
    let began = tokio::time::Instant::now();
    let state = host.wait_for("app::Worker", ServiceState::is_healthy).await;
    assert!(matches!(state, ServiceState::Running), "{state:?}");
    assert_eq!(began.elapsed(), Duration::ZERO);
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_brief_state_entered_after_the_call_is_not_missed() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Reporting("app::Worker"));
    let host = builder.start().await.unwrap();
    host.wait_for("app::Worker", |state| matches!(state, ServiceState::Ready))
        .await;
    // A restart on request passes through `restarting` and runs again at
    // once: by the time the waiting task runs, the service has moved on.
    let (state, ()) = tokio::join!(host.wait_for("app::Worker", is_restarting), async {
        host.control().restart("app::Worker").unwrap();
    });
    assert!(is_restarting(&state), "{state:?}");
    assert!(
        !is_restarting(&host.states().get("app::Worker").unwrap()),
        "the test needs the state to have moved on: {:?}",
        host.states()
    );
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_state_left_before_the_call_is_not_waited_for() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Idle("app::Worker"));
    let host = builder.start().await.unwrap();
    // `starting` is over; only a new one would do.
    let waited = tokio::time::timeout(
        Duration::from_secs(1),
        host.wait_for("app::Worker", |state| {
            matches!(state, ServiceState::Starting)
        }),
    )
    .await;
    assert!(waited.is_err(), "{waited:?}");
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
#[should_panic(
    expected = "wait_for(`app::Wroker`): no service is called `app::Wroker`; \
                           the services: `app::Worker`, `app::Other`"
)]
async fn an_unknown_name_fails_naming_the_services() {
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(Idle("app::Worker"))
        .add_hosted_service_instance(Idle("app::Other"));
    let host = builder.start().await.unwrap();
    host.wait_for("app::Wroker", ServiceState::is_healthy).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(
    expected = "wait_for(`app::Worker`): no state it accepts within 60s on the tokio \
                           clock; it is `running`\nevents seen:\n  #  service"
)]
async fn a_hang_fails_within_the_limit() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Idle("app::Worker"));
    let host = builder.start().await.unwrap();
    host.wait_for("app::Worker", |state| {
        matches!(state, ServiceState::Completed)
    })
    .await;
}

#[tokio::test(start_paused = true)]
#[should_panic(
    expected = "it is `failed` (`app::Flaky` failed in execute: run 1 failed on purpose)"
)]
async fn a_failed_service_is_named_with_its_failure() {
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(Flaky::new("app::Flaky", 1))
        .configure_host_options(|options| {
            options.background_service_failure = host_core::BackgroundServiceFailure::Ignore;
        });
    let host = builder.start().await.unwrap();
    host.wait_for("app::Flaky", |state| matches!(state, ServiceState::Stopped))
        .await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "within 5s on the tokio clock")]
async fn the_limit_can_be_changed() {
    let backoff = Duration::from_secs(30);
    let mut builder = TestHost::builder();
    builder
        .wait_limit(Duration::from_secs(5))
        .add_hosted_service_instance_with(Flaky::new("app::Flaky", 1), |flaky| {
            flaky.restart(Restart::on_failure().backoff(backoff, backoff).jitter(0.0))
        });
    let host = builder.start().await.unwrap();
    host.wait_for("app::Flaky", is_restarting).await;
    host.wait_for("app::Flaky", ServiceState::is_healthy).await;
}
