//! Log capture: what is captured, the levels, isolation between tests, and
//! the assertions' failures.

mod support;

use std::sync::{Arc, Barrier};

use host_core::{Restart, ServiceState};
use host_testing::TestHost;
use support::{Flaky, Idle};
use tracing::Level;

#[tokio::test(start_paused = true)]
async fn a_services_lines_and_the_hosts_are_captured() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(Flaky::new("app::Flaky", 1), |flaky| {
        flaky.restart(Restart::on_failure())
    });
    let host = builder.start().await.unwrap();
    host.wait_for("app::Flaky", |state| {
        matches!(state, ServiceState::Restarting { .. })
    })
    .await;
    host.wait_for("app::Flaky", ServiceState::is_healthy).await;
    let logs = host.logs();
    // The host's status lines, its state changes (`host::services` at
    // debug), and the service's own line with its span and fields.
    assert!(
        logs.iter()
            .any(|line| line.ends_with("Application started.")),
        "{logs:#?}"
    );
    host.assert_logged("host::services: service state changed service=app::Flaky");
    host.assert_logged("app::flaky: working run=2");
    assert!(
        logs.iter()
            .all(|line| !line.contains('\n') && !line.contains('\u{1b}')),
        "one line each, without colour: {logs:#?}"
    );
    host.stop().await.unwrap();
}

#[tokio::test]
async fn other_targets_log_at_info_unless_the_test_says_otherwise() {
    let mut builder = TestHost::builder();
    builder.log_level("app::chatty", Level::TRACE);
    let host = builder.start().await.unwrap();
    tracing::debug!(target: "app::quiet", "quiet debug");
    tracing::info!(target: "app::quiet", "quiet info");
    tracing::trace!(target: "app::chatty::inner", "chatty trace");
    host.assert_not_logged("quiet debug");
    host.assert_logged("quiet info");
    host.assert_logged("chatty trace");
    host.stop().await.unwrap();
}

#[tokio::test]
async fn the_default_level_and_the_hosts_can_be_lowered() {
    let mut builder = TestHost::builder();
    builder
        .default_log_level(Level::WARN)
        .log_level("host::", Level::INFO);
    let host = builder.start().await.unwrap();
    tracing::info!(target: "app", "app info");
    tracing::warn!(target: "app", "app warning");
    host.assert_not_logged("app info");
    host.assert_logged("app warning");
    host.assert_logged("Application started.");
    host.assert_not_logged("service state changed");
    host.stop().await.unwrap();
}

/// Two tests at once, each on its own thread as `cargo test` runs them,
/// both hosts alive while both log.
#[test]
fn tests_running_at_once_capture_only_their_own_lines() {
    let barrier = Arc::new(Barrier::new(2));
    let test = |me: &'static str, other: &'static str| {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut builder = TestHost::builder();
                builder.add_hosted_service_instance(Idle(me));
                let host = builder.start().await.unwrap();
                barrier.wait();
                tracing::info!("logged by {me}");
                barrier.wait();
                host.assert_logged(&format!("logged by {me}"));
                host.assert_logged(&format!("service={me}"));
                host.assert_not_logged(other);
                host.stop().await.unwrap();
            });
        })
    };
    let first = test("app::First", "app::Second");
    let second = test("app::Second", "app::First");
    for thread in [first, second] {
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

#[tokio::test]
async fn lines_before_the_build_and_after_the_drop_are_not_captured() {
    let builder = TestHost::builder();
    tracing::info!("before the build");
    let host = builder.start().await.unwrap();
    tracing::info!("while it lives");
    host.assert_not_logged("before the build");
    host.assert_logged("while it lives");
    host.stop().await.unwrap();
    // Nothing is installed any more: a second host sees only its own.
    tracing::info!("after the drop");
    let host = TestHost::builder().start().await.unwrap();
    host.assert_not_logged("after the drop");
    host.assert_not_logged("while it lives");
}

#[tokio::test]
#[should_panic(
    expected = "assert_logged: no line contains `never logged`; the lines logged:\n  \
                           INFO host::lifetime: Hosting environment: Production"
)]
async fn a_missing_line_fails_listing_the_lines() {
    let host = TestHost::builder().start().await.unwrap();
    host.assert_logged("never logged");
}

#[tokio::test]
#[should_panic(
    expected = "assert_not_logged: 1 lines contain `Application started`:\n  \
                           INFO host::lifetime: Application started."
)]
async fn an_unwanted_line_fails_quoting_it() {
    let host = TestHost::builder().start().await.unwrap();
    host.assert_not_logged("Application started");
}
