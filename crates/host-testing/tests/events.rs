//! The recorded lifecycle events and `assert_events`.

mod support;

use std::time::Duration;

use host_core::{Restart, ServiceState};
use host_testing::TestHost;
use support::{FailsToStart, Flaky, Idle, Reporting};

#[tokio::test(start_paused = true)]
async fn events_are_recorded_in_order_from_before_the_start() {
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(Idle("app::A"))
        .add_hosted_service_instance(Idle("app::B"));
    let mut host = builder.start().await.unwrap();
    host.wait_for("app::B", ServiceState::is_healthy).await;
    host.host_mut().stop().await.unwrap();

    let seen: Vec<(String, &str, &str)> = host
        .events()
        .iter()
        .map(|event| {
            (
                event.service.to_string(),
                event.from.as_str(),
                event.to.as_str(),
            )
        })
        .collect();
    let of = |name: &str| -> Vec<(&str, &str)> {
        seen.iter()
            .filter(|(service, ..)| service == name)
            .map(|(_, from, to)| (*from, *to))
            .collect()
    };
    // Every transition of each, the first one included.
    for name in ["app::A", "app::B"] {
        assert_eq!(
            of(name),
            [
                ("not_started", "starting"),
                ("starting", "running"),
                ("running", "stopping"),
                ("stopping", "stopped"),
            ],
            "{name}: {seen:?}"
        );
    }
    // Started in registration order, stopped in reverse.
    host.assert_events(&[
        ("app::A", "running"),
        ("app::B", "running"),
        ("app::B", "stopped"),
        ("app::A", "stopped"),
    ]);
}

#[tokio::test(start_paused = true)]
async fn a_restart_shows_in_the_events_and_the_logs() {
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
    host.assert_events(&[
        ("app::Flaky", "running"),
        ("app::Flaky", "restarting"),
        ("app::Flaky", "running"),
    ]);
    host.assert_logged("restarting in");
    host.assert_logged("run 1 failed on purpose");
    host.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_start_keeps_its_events_and_lines() {
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(Idle("app::First"))
        .add_hosted_service_instance(FailsToStart("app::Database"));
    let mut host = builder.build().unwrap();
    let error = host.start().await.unwrap_err();
    assert!(error.to_string().contains("no database"), "{error}");
    // The first service started and was rolled back.
    host.assert_events(&[
        ("app::First", "running"),
        ("app::Database", "failed"),
        ("app::First", "stopped"),
    ]);
    assert!(
        matches!(
            host.states().get("app::Database"),
            Some(ServiceState::Failed(_))
        ),
        "{:?}",
        host.states()
    );
    host.assert_logged("no database");
}

#[tokio::test(start_paused = true)]
async fn the_control_handle_pauses_and_resumes() {
    let is_ready = |state: &ServiceState| matches!(state, ServiceState::Ready);
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Reporting("app::Worker"));
    let host = builder.start().await.unwrap();
    // Ready: its run has begun (running says only that its `start` returned).
    host.wait_for("app::Worker", is_ready).await;

    host.control().pause("app::Worker").unwrap();
    host.wait_for("app::Worker", |state| matches!(state, ServiceState::Paused))
        .await;
    host.control().resume("app::Worker").unwrap();
    host.wait_for("app::Worker", is_ready).await;
    host.assert_events(&[
        ("app::Worker", "ready"),
        ("app::Worker", "paused"),
        ("app::Worker", "running"),
        ("app::Worker", "ready"),
    ]);
    host.assert_logged("`app::Worker` resumed");
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
#[should_panic(
    expected = "assert_events: `app::Worker` entering `stopped` (expected event 2 of 2) \
                           was not seen after the events matched before it"
)]
async fn a_missing_event_fails_with_the_events_seen() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Idle("app::Worker"));
    let host = builder.start().await.unwrap();
    host.wait_for("app::Worker", ServiceState::is_healthy).await;
    host.assert_events(&[("app::Worker", "running"), ("app::Worker", "stopped")]);
}

#[tokio::test(start_paused = true)]
async fn the_panic_message_lists_every_event_in_a_table() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Idle("app::Worker"));
    let host = builder.start().await.unwrap();
    host.wait_for("app::Worker", ServiceState::is_healthy).await;
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        host.assert_events(&[("app::Worker", "stopped"), ("app::Worker", "running")])
    }))
    .expect_err("the worker has not stopped");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message
            .contains("app::Worker -> stopped: NOT SEEN\n  app::Worker -> running: not looked for"),
        "{message}"
    );
    assert!(
        message.contains(
            "events seen:\n  #  service      from         to        note\n  \
             1  app::Worker  not_started  starting\n  \
             2  app::Worker  starting     running   took "
        ),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_test_that_never_reads_the_events_misses_none() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Reporting("app::Worker"));
    let host = builder.start().await.unwrap();
    // More restarts than the event stream buffers (1 024 events), waited
    // for through the states, which read no event.
    let states = host.states();
    let restarted = |count: u32| {
        let states = states.clone();
        async move {
            let mut changed = states.subscribe();
            while !states.snapshot().iter().any(|status| {
                status.restarts == count && matches!(status.state, ServiceState::Ready)
            }) {
                changed.changed().await.unwrap();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        restarted(0).await;
        for count in 1..=600 {
            host.control().restart("app::Worker").unwrap();
            restarted(count).await;
        }
    })
    .await
    .expect("the restarts within the limit");
    let restarts = host
        .events()
        .iter()
        .filter(|event| event.to.as_str() == "restarting")
        .count();
    assert_eq!(restarts, 600);
    host.stop().await.unwrap();
}
