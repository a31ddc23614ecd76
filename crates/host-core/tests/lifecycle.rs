//! Phase order, rollback on a failed start, stop errors, lifetime events.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Behaviour, Journal, Recorder, test_builder};
use host_core::{HostedService, LifecycleContext, Phase, ServiceError, ServiceState, async_trait};

fn three(journal: &Journal) -> Vec<Recorder> {
    vec![
        Recorder::new("a", journal),
        Recorder::new("b", journal),
        Recorder::new("c", journal),
    ]
}

#[tokio::test]
async fn phases_run_in_the_documented_order() {
    let journal = Journal::default();
    let mut builder = test_builder();
    for recorder in three(&journal) {
        builder.add_hosted_service_instance(recorder);
    }
    let mut host = builder.build().unwrap();
    let lifetime = host.lifetime().clone();
    host.start().await.unwrap();
    assert!(lifetime.is_started());
    lifetime.stop_application();
    host.wait_for_shutdown().await;
    host.stop().await.unwrap();
    assert!(lifetime.is_stopped());

    assert_eq!(
        journal.entries(),
        [
            "a:starting",
            "b:starting",
            "c:starting",
            "a:start",
            "b:start",
            "c:start",
            "a:started",
            "b:started",
            "c:started",
            "c:stopping",
            "b:stopping",
            "a:stopping",
            "c:stop",
            "b:stop",
            "a:stop",
            "c:stopped",
            "b:stopped",
            "a:stopped",
        ]
    );
    // The started event after every started hook; stopping after every
    // stopping hook and before any stop; stopped after every stopped hook.
    for (phase, [started, stopping, stopped]) in journal.events_seen() {
        let expected = match phase {
            Phase::Starting | Phase::Start | Phase::Started => [false, false, false],
            Phase::Stopping => [true, false, false],
            Phase::Stop | Phase::Stopped => [true, true, false],
            Phase::Execute => unreachable!(),
            _ => unreachable!(),
        };
        assert_eq!([started, stopping, stopped], expected, "during {phase}");
    }
}

#[tokio::test]
async fn concurrent_mode_runs_every_phase_for_all_services() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder.configure_host_options(|options| {
        options.services_start_concurrently = true;
        options.services_stop_concurrently = true;
    });
    for recorder in three(&journal) {
        builder.add_hosted_service_instance(recorder);
    }
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    host.stop().await.unwrap();

    // Phases never interleave, whatever the order within one phase.
    let entries = journal.entries();
    let phases: Vec<&str> = entries
        .iter()
        .map(|e| e.split(':').nth(1).unwrap())
        .collect();
    let expected: Vec<&str> = [
        "starting", "start", "started", "stopping", "stop", "stopped",
    ]
    .iter()
    .flat_map(|phase| std::iter::repeat_n(*phase, 3))
    .collect();
    assert_eq!(phases, expected);
}

/// Two starts that each wait for the other: they finish only if they run at once.
#[tokio::test]
async fn concurrent_start_really_is_concurrent() {
    struct Rendezvous(Arc<tokio::sync::Barrier>);

    #[async_trait]
    impl HostedService for Rendezvous {
        async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            self.0.wait().await;
            Ok(())
        }
        async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            self.0.wait().await;
            Ok(())
        }
    }

    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut builder = test_builder();
    builder.configure_host_options(|options| {
        options.services_start_concurrently = true;
        options.services_stop_concurrently = true;
    });
    builder
        .add_hosted_service_instance(Rendezvous(barrier.clone()))
        .add_hosted_service_instance(Rendezvous(barrier));
    let mut host = builder.build().unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        host.start().await.unwrap();
        host.stop().await.unwrap();
    })
    .await
    .expect("concurrent start and stop do not wait for each other");
}

#[tokio::test]
async fn a_failed_start_stops_exactly_what_started_in_reverse() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(Recorder::new("a", &journal))
        .add_hosted_service_instance(Recorder::new("b", &journal))
        .add_hosted_service_instance(Recorder::new("c", &journal).on(Phase::Start, Behaviour::Fail))
        .add_hosted_service_instance(Recorder::new("d", &journal));
    let mut host = builder.build().unwrap();
    let states = host.service_states();
    let error = host.start().await.unwrap_err();

    assert_eq!(
        error.to_string(),
        "host failed to start: `c` failed in start: c refused to start\n  \
         rolled back: b (stopped), a (stopped)"
    );
    assert_eq!(error.exit_code(), 1);
    assert_eq!(
        journal.of("stop"),
        ["b:stop", "a:stop"],
        "only the services whose start completed are stopped, in reverse"
    );
    assert!(
        journal.of("start").iter().all(|e| e != "d:start"),
        "d never starts"
    );
    assert!(matches!(states.get("c"), Some(ServiceState::Failed(_))));
    // `d` ran its `starting` hook but never started: stopped with the host.
    assert!(matches!(states.get("d"), Some(ServiceState::Stopped)));
    assert!(host.lifetime().is_stopped());
    host.stop().await.unwrap(); // nothing more to do
    assert_eq!(journal.of("stop").len(), 2);
}

#[tokio::test]
async fn a_panic_in_start_is_caught_and_rolled_back() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(Recorder::new("a", &journal))
        .add_hosted_service_instance(
            Recorder::new("b", &journal).on(Phase::Start, Behaviour::Panic),
        );
    let mut host = builder.build().unwrap();
    let error = host.start().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "host failed to start: `b` panicked in start: b panicked on purpose in start\n  \
         rolled back: a (stopped)"
    );
    assert!(error.failures()[0].is_panic());
}

#[tokio::test]
async fn a_failing_starting_hook_starts_nothing_and_stops_nothing() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(Recorder::new("a", &journal))
        .add_hosted_service_instance(
            Recorder::new("b", &journal).on(Phase::Starting, Behaviour::Panic),
        );
    let mut host = builder.build().unwrap();
    let error = host.start().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "host failed to start: `b` panicked in starting: b panicked on purpose in starting"
    );
    assert!(journal.of("start").is_empty());
    assert!(journal.of("stop").is_empty());
}

#[tokio::test]
async fn a_failing_started_hook_rolls_back_every_service() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(
            Recorder::new("a", &journal).on(Phase::Started, Behaviour::Fail),
        )
        .add_hosted_service_instance(Recorder::new("b", &journal));
    let mut host = builder.build().unwrap();
    let error = host.start().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "host failed to start: `a` failed in started: a refused to started\n  \
         rolled back: b (stopped), a (stopped)"
    );
    assert!(!host.lifetime().is_started());
}

#[tokio::test]
async fn stop_errors_and_panics_never_keep_the_others_from_stopping() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(Recorder::new("a", &journal).on(Phase::Stop, Behaviour::Fail))
        .add_hosted_service_instance(
            Recorder::new("b", &journal).on(Phase::Stopping, Behaviour::Panic),
        )
        .add_hosted_service_instance(Recorder::new("c", &journal).on(Phase::Stop, Behaviour::Panic))
        .add_hosted_service_instance(
            Recorder::new("d", &journal).on(Phase::Stopped, Behaviour::Fail),
        );
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    let error = host.stop().await.unwrap_err();

    assert_eq!(journal.of("stop"), ["d:stop", "c:stop", "b:stop", "a:stop"]);
    assert_eq!(
        journal.of("stopped"),
        ["d:stopped", "c:stopped", "b:stopped", "a:stopped"]
    );
    assert_eq!(
        error.to_string(),
        "`b` panicked in stopping: b panicked on purpose in stopping\n  \
         also: `c` panicked in stop: c panicked on purpose in stop\n  \
         also: `a` failed in stop: a refused to stop\n  \
         also: `d` failed in stopped: d refused to stopped"
    );
    assert_eq!(error.exit_code(), 1);
    let failed: Vec<&str> = error.failures().iter().map(|f| f.service()).collect();
    assert_eq!(failed, ["b", "c", "a", "d"]);
}

#[tokio::test]
async fn stop_application_from_a_service_carries_its_exit_code() {
    struct Quitter;

    #[async_trait]
    impl HostedService for Quitter {
        async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            Ok(())
        }
        async fn started(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
            ctx.lifetime().stop_application_with_code(42);
            Ok(())
        }
        async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            Ok(())
        }
    }

    let mut builder = test_builder();
    builder.add_hosted_service_instance(Quitter);
    let host = builder.build().unwrap();
    let code = tokio::time::timeout(Duration::from_secs(30), host.run_until_exit())
        .await
        .expect("the host stops when asked");
    assert_eq!(
        format!("{code:?}"),
        format!("{:?}", std::process::ExitCode::from(42))
    );
}

#[tokio::test]
async fn start_and_stop_are_idempotent_and_stop_without_start_stops_nothing() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder.add_hosted_service_instance(Recorder::new("a", &journal));
    let mut host = builder.build().unwrap();
    host.stop().await.unwrap();
    host.start().await.unwrap();
    assert!(journal.entries().is_empty(), "a stopped host never starts");

    let journal = Journal::default();
    let mut builder = test_builder();
    builder.add_hosted_service_instance(Recorder::new("a", &journal));
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    host.start().await.unwrap();
    host.stop().await.unwrap();
    host.stop().await.unwrap();
    assert_eq!(journal.of("start"), ["a:start"]);
    assert_eq!(journal.of("stop"), ["a:stop"]);
}

#[tokio::test]
async fn a_stop_requested_during_start_skips_the_rest_and_stops_what_started() {
    let journal = Journal::default();
    struct StopsDuringStart;

    #[async_trait]
    impl HostedService for StopsDuringStart {
        async fn start(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
            ctx.lifetime().stop_application();
            // Honours its token: the host abandons the start at once.
            ctx.cancelled().await;
            Ok(())
        }
        async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
            Ok(())
        }
    }

    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(Recorder::new("a", &journal))
        .add_hosted_service_instance(StopsDuringStart)
        .add_hosted_service_instance(Recorder::new("c", &journal));
    let host = builder.build().unwrap();
    let lifetime = host.lifetime().clone();
    tokio::time::timeout(Duration::from_secs(30), host.run())
        .await
        .expect("no hang")
        .unwrap();
    assert!(!journal.of("start").contains(&"c:start".to_owned()));
    assert_eq!(journal.of("stop"), ["a:stop"]);
    assert!(lifetime.is_stopped());
    assert!(!lifetime.is_started());
}

#[tokio::test]
async fn a_stop_requested_before_start_starts_nothing() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(Recorder::new("a", &journal))
        .add_hosted_service_instance(Recorder::new("b", &journal));
    let host = builder.build().unwrap();
    host.lifetime().stop_application();
    tokio::time::timeout(Duration::from_secs(30), host.run())
        .await
        .expect("no hang")
        .unwrap();
    assert!(journal.entries().is_empty(), "{:?}", journal.entries());
}

#[tokio::test]
async fn the_hosts_own_parts_are_resolvable_services() {
    let mut builder = test_builder();
    builder
        .environment_name("Development")
        .application_name("billing");
    let host = builder.build().unwrap();
    let services = host.services();
    let environment = services.get::<host_core::HostEnvironment>().unwrap();
    assert!(environment.is_development());
    assert_eq!(environment.application_name(), "billing");
    let lifetime = services.get::<host_core::ApplicationLifetime>().unwrap();
    lifetime.stop_application();
    assert!(
        host.lifetime().is_stop_requested(),
        "the same lifetime as the host's"
    );
    assert_eq!(
        services
            .get::<host_core::HostOptions>()
            .unwrap()
            .shutdown_timeout,
        Duration::from_secs(30)
    );
    assert!(
        services
            .get::<host_core::ServiceStates>()
            .unwrap()
            .snapshot()
            .is_empty()
    );
}

/// A hook written by hand (not `async fn`) that panics before it returns
/// its future is caught like any other panic.
struct PanicsBeforeItsFuture;

#[async_trait]
impl HostedService for PanicsBeforeItsFuture {
    fn starting<'life0, 'life1, 'async_trait>(
        &'life0 self,
        _ctx: &'life1 LifecycleContext,
    ) -> host_core::LifecycleFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        panic!("no future for you")
    }

    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_hook_that_panics_before_returning_its_future_is_caught() {
    for concurrent in [false, true] {
        let mut builder = test_builder();
        builder
            .configure_host_options(|options| options.services_start_concurrently = concurrent)
            .add_hosted_service_instance(PanicsBeforeItsFuture);
        let mut host = builder.build().unwrap();
        let error = host.start().await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "host failed to start: `lifecycle::PanicsBeforeItsFuture` panicked in starting: \
             no future for you"
        );
    }
}
