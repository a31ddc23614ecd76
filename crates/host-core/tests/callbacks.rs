//! Lifetime callbacks (`on_started`, `on_stopping`, `on_stopped`): run by
//! the host at their documented point, awaited, bounded, panics named.

mod common;

use std::time::Duration;

use common::{Behaviour, Journal, Recorder, test_builder};
use host_core::{ApplicationLifetime, Phase};

/// A callback that records its name and which events it saw.
async fn record(journal: Journal, lifetime: ApplicationLifetime, name: &'static str) {
    journal.push(format!(
        "{name} [started={} stopping={} stopped={}]",
        lifetime.is_started(),
        lifetime.is_stopping(),
        lifetime.is_stopped()
    ));
}

#[tokio::test]
async fn callbacks_run_at_their_point_in_registration_order() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(Recorder::new("a", &journal))
        .add_hosted_service_instance(Recorder::new("b", &journal));
    let mut host = builder.build().unwrap();
    let lifetime = host.lifetime().clone();
    for (n, name) in ["started-1", "started-2"].into_iter().enumerate() {
        let (j, l) = (journal.clone(), lifetime.clone());
        lifetime.on_started(move || async move {
            // Awaited: a callback that waits still runs before the next one.
            tokio::time::sleep(Duration::from_millis(10 * (2 - n as u64))).await;
            record(j, l, name).await;
        });
    }
    let (j, l) = (journal.clone(), lifetime.clone());
    lifetime.on_stopping(move || record(j, l, "stopping-1"));
    let (j, l) = (journal.clone(), lifetime.clone());
    lifetime.on_stopped(move || async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        record(j, l, "stopped-1").await;
    });
    let (j, l) = (journal.clone(), lifetime.clone());
    lifetime.on_stopped(move || record(j, l, "stopped-2"));

    host.start().await.unwrap();
    journal.push("start returned".into());
    host.stop().await.unwrap();
    journal.push("stop returned".into());

    assert_eq!(
        journal.entries(),
        [
            "a:starting",
            "b:starting",
            "a:start",
            "b:start",
            "a:started",
            "b:started",
            "started-1 [started=true stopping=false stopped=false]",
            "started-2 [started=true stopping=false stopped=false]",
            "start returned",
            "b:stopping",
            "a:stopping",
            "stopping-1 [started=true stopping=true stopped=false]",
            "b:stop",
            "a:stop",
            "b:stopped",
            "a:stopped",
            "stopped-1 [started=true stopping=true stopped=true]",
            "stopped-2 [started=true stopping=true stopped=true]",
            "stop returned",
        ]
    );
}

#[tokio::test]
async fn a_panicking_callback_is_named_and_the_others_still_run() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder.add_hosted_service_instance(Recorder::new("a", &journal));
    let mut host = builder.build().unwrap();
    let lifetime = host.lifetime().clone();
    let j = journal.clone();
    lifetime.on_stopped(move || async move { j.push("first".into()) });
    lifetime.on_stopped(|| async { panic!("the flush failed") });
    // A panic in the closure itself, before it returns its future.
    lifetime.on_stopped(|| -> std::future::Ready<()> { panic!("no future") });
    let j = journal.clone();
    lifetime.on_stopped(move || async move { j.push("last".into()) });
    let j = journal.clone();
    lifetime.on_stopping(move || async move { j.push("stopping".into()) });

    host.start().await.unwrap();
    let error = host.stop().await.unwrap_err();

    assert_eq!(journal.of("stop"), ["a:stop"]);
    let entries = journal.entries();
    assert!(entries.contains(&"first".to_owned()), "{entries:?}");
    assert!(entries.contains(&"last".to_owned()), "{entries:?}");
    assert!(entries.contains(&"stopping".to_owned()), "{entries:?}");
    assert_eq!(error.exit_code(), 1, "{error}");
    let failures = error.failures();
    assert_eq!(failures.len(), 2, "{error}");
    assert!(
        failures[0]
            .service()
            .starts_with("on_stopped callback #2 (crates/host-core/tests/callbacks.rs:"),
        "{error}"
    );
    assert_eq!(failures[0].phase(), Phase::Stopped);
    assert!(failures[0].is_panic());
    assert_eq!(failures[0].cause(), "panicked: the flush failed");
    assert!(
        failures[1].service().starts_with("on_stopped callback #3 "),
        "{error}"
    );
    assert_eq!(failures[1].cause(), "panicked: no future");
}

#[tokio::test]
async fn a_panicking_started_callback_fails_the_start_and_rolls_back() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder.add_hosted_service_instance(Recorder::new("a", &journal));
    let mut host = builder.build().unwrap();
    let j = journal.clone();
    host.lifetime()
        .on_started(|| async { panic!("cannot announce") });
    host.lifetime()
        .on_started(move || async move { j.push("second".into()) });

    let error = host.start().await.unwrap_err();

    assert!(error.is_start(), "{error}");
    assert_eq!(error.exit_code(), 1);
    assert!(
        error.to_string().starts_with(
            "host failed to start: `on_started callback #1 (crates/host-core/tests/callbacks.rs:"
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("panicked in started: cannot announce")
    );
    assert_eq!(error.rolled_back().collect::<Vec<_>>(), ["a"]);
    assert!(journal.entries().contains(&"second".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn a_callback_that_hangs_is_dropped_at_the_shutdown_deadline_and_named() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder.configure_host_options(|options| options.shutdown_timeout = Duration::from_secs(5));
    builder.add_hosted_service_instance(Recorder::new("a", &journal));
    let mut host = builder.build().unwrap();
    let lifetime = host.lifetime().clone();
    lifetime.on_stopped(std::future::pending::<()>);
    let j = journal.clone();
    lifetime.on_stopped(move || async move { j.push("after the hang".into()) });

    host.start().await.unwrap();
    let began = tokio::time::Instant::now();
    let error = host.stop().await.unwrap_err();

    assert!(error.is_shutdown_timeout(), "{error}");
    let timed_out: Vec<&str> = error.timed_out().collect();
    assert_eq!(timed_out.len(), 1, "{error}");
    assert!(
        timed_out[0].starts_with("on_stopped callback #1 "),
        "{error}"
    );
    // One poll past the end: a callback that needs no waiting still runs.
    assert!(journal.entries().contains(&"after the hang".to_owned()));
    // The deadline and its overtime, not more.
    assert!(
        began.elapsed() < Duration::from_secs(6),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_started_callback_is_bounded_by_the_startup_timeout() {
    let mut builder = test_builder();
    builder.configure_host_options(|options| {
        options.startup_timeout = Some(Duration::from_secs(2));
    });
    let mut host = builder.build().unwrap();
    host.lifetime().on_started(std::future::pending::<()>);
    let error = host.start().await.unwrap_err();
    assert!(error.is_startup_timeout(), "{error}");
    let pending: Vec<&str> = error.timed_out().collect();
    assert!(pending[0].starts_with("on_started callback #1 "), "{error}");
}

#[tokio::test]
async fn a_stop_request_ends_a_started_callback_that_waits() {
    let mut host = test_builder().build().unwrap();
    host.lifetime().on_started(std::future::pending::<()>);
    let lifetime = host.lifetime().clone();
    tokio::spawn(async move {
        lifetime.started().await;
        lifetime.stop_application();
    });
    tokio::time::timeout(Duration::from_secs(30), host.start())
        .await
        .expect("the stop request ends the start")
        .unwrap();
    host.stop().await.unwrap();
}

#[tokio::test]
async fn a_callback_registered_after_its_event_runs_at_once() {
    let mut host = test_builder().build().unwrap();
    host.start().await.unwrap();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    host.lifetime().on_started(move || async move {
        sender.send(()).unwrap();
    });
    tokio::time::timeout(Duration::from_secs(30), receiver)
        .await
        .expect("the late callback ran")
        .unwrap();
    host.stop().await.unwrap();
}

#[test]
fn outside_a_runtime_a_late_callback_runs_on_the_calling_thread() {
    let mut host = test_builder().build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        host.start().await.unwrap();
        host.stop().await.unwrap();
    });
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    host.lifetime().on_stopped(move || async move {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test]
async fn a_failed_start_runs_the_stop_callbacks_of_its_rollback_not_the_started_ones() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(Recorder::new("a", &journal))
        .add_hosted_service_instance(
            Recorder::new("b", &journal).on(Phase::Start, Behaviour::Fail),
        );
    let mut host = builder.build().unwrap();
    let lifetime = host.lifetime().clone();
    for (event, name) in [(0, "started"), (1, "stopping"), (2, "stopped")] {
        let j = journal.clone();
        let callback = move || async move { j.push(name.into()) };
        match event {
            0 => lifetime.on_started(callback),
            1 => lifetime.on_stopping(callback),
            _ => lifetime.on_stopped(callback),
        }
    }
    host.start().await.unwrap_err();
    let entries = journal.entries();
    assert!(!entries.contains(&"started".to_owned()), "{entries:?}");
    assert!(entries.contains(&"stopping".to_owned()), "{entries:?}");
    assert!(entries.contains(&"stopped".to_owned()), "{entries:?}");
}
