//! Dependencies between hosted services: the start and stop order,
//! concurrent start and stop, readiness, the build errors, and restarts
//! that cascade to dependents.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::until;
use host_core::{
    BackgroundService, HostedService, LifecycleContext, Restart, ServiceContext, ServiceError,
    ServiceState, async_trait, bail,
};
use host_testing::TestHost;
use tokio::time::Instant;

/// What happened, in order: `start A`, `stop A`, with the time.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<(String, Instant)>>>);

impl Journal {
    fn note(&self, what: String) {
        self.0.lock().unwrap().push((what, Instant::now()));
    }

    fn entries(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(what, _)| what.clone())
            .collect()
    }

    fn at(&self, what: &str) -> Instant {
        let found = self
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|(entry, _)| entry == what)
            .map(|(_, at)| *at);
        found.unwrap_or_else(|| panic!("no {what:?} in {:?}", self.entries()))
    }

    /// Waits (on the paused clock) until `what` has been noted.
    async fn noted(&self, what: &str) -> Instant {
        for _ in 0..10_000 {
            if self.entries().iter().any(|entry| entry == what) {
                return self.at(what);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("no {what:?} in {:?}", self.entries())
    }
}

/// A plain hosted service whose start takes `start_takes`.
struct Step {
    name: &'static str,
    journal: Journal,
    start_takes: Duration,
}

fn step(name: &'static str, journal: &Journal) -> Step {
    Step {
        name,
        journal: journal.clone(),
        start_takes: Duration::ZERO,
    }
}

#[async_trait]
impl HostedService for Step {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        self.name.into()
    }

    async fn start(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        self.journal.note(format!("start {}", self.name));
        tokio::time::sleep(self.start_takes).await;
        self.journal.note(format!("started {}", self.name));
        Ok(())
    }

    async fn stop(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        self.journal.note(format!("stop {}", self.name));
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.journal.note(format!("stopped {}", self.name));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn services_start_in_dependency_order_ties_by_registration_and_stop_in_reverse() {
    let journal = Journal::default();
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance_with(step("app::Api", &journal), |s| s.after_named("Cache"))
        .add_hosted_service_instance(step("app::Metrics", &journal))
        .add_hosted_service_instance_with(step("app::Cache", &journal), |s| {
            s.after_named("app::Db")
        })
        .add_hosted_service_instance(step("app::Db", &journal));
    let host = builder.start().await.unwrap();
    host.stop().await.unwrap();
    let order: Vec<String> = journal
        .entries()
        .into_iter()
        .filter(|entry| entry.starts_with("start ") || entry.starts_with("stop "))
        .collect();
    assert_eq!(
        order,
        [
            "start app::Metrics",
            "start app::Db",
            "start app::Cache",
            "start app::Api",
            "stop app::Api",
            "stop app::Cache",
            "stop app::Db",
            "stop app::Metrics",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_concurrent_start_waits_for_what_a_service_depends_on_and_its_stop_for_its_dependents() {
    let journal = Journal::default();
    let mut builder = TestHost::builder();
    builder
        .configure_host_options(|o| {
            o.services_start_concurrently = true;
            o.services_stop_concurrently = true;
        })
        .add_hosted_service_instance_with(step("app::Api", &journal), |s| s.after_named("Db"))
        .add_hosted_service_instance(Step {
            start_takes: Duration::from_secs(2),
            ..step("app::Db", &journal)
        })
        .add_hosted_service_instance(Step {
            start_takes: Duration::from_secs(1),
            ..step("app::Other", &journal)
        });
    let host = builder.start().await.unwrap();
    let began = journal.at("start app::Db");
    // Db and Other start at once; Api once Db has started.
    assert_eq!(journal.at("start app::Other"), began);
    assert_eq!(journal.at("start app::Api") - began, Duration::from_secs(2));
    host.stop().await.unwrap();
    // Db's stop waits for Api's; Other's does not.
    assert_eq!(journal.at("stop app::Db"), journal.at("stopped app::Api"));
    assert_eq!(journal.at("stop app::Other"), journal.at("stop app::Api"));
}

/// Reports ready after `after`, then runs until stopped; fails its first
/// run after being ready when `fail_once` is set.
struct Database {
    journal: Journal,
    after: Duration,
    fail_once: bool,
    runs: AtomicU32,
}

#[async_trait]
impl BackgroundService for Database {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst);
        if !ctx.delay(self.after).await {
            return Ok(());
        }
        self.journal.note(format!("db ready {run}"));
        ctx.ready();
        if self.fail_once && run == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            bail!("the database connection dropped");
        }
        ctx.stopping().await;
        Ok(())
    }
}

fn database(journal: &Journal, after: Duration) -> Database {
    Database {
        journal: journal.clone(),
        after,
        fail_once: false,
        runs: AtomicU32::new(0),
    }
}

/// Notes each run; runs until stopped.
struct Api(Journal, AtomicU32);

#[async_trait]
impl BackgroundService for Api {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let run = self.1.fetch_add(1, Ordering::SeqCst);
        self.0.note(format!("api run {run}"));
        ctx.stopping().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn after_ready_starts_once_the_other_reports_ready() {
    let journal = Journal::default();
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(database(&journal, Duration::from_secs(3)))
        .add_hosted_service_instance_with(Api(journal.clone(), AtomicU32::new(0)), |s| {
            s.after_ready::<Database>()
        });
    let started = Instant::now();
    let host = builder.start().await.unwrap();
    assert_eq!(
        journal.noted("api run 0").await - started,
        Duration::from_secs(3)
    );
    assert_eq!(journal.entries(), ["db ready 0", "api run 0"]);
    assert!(matches!(
        host.states().get("dependencies::Database"),
        Some(ServiceState::Ready)
    ));
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_service_that_never_reports_ready_within_its_start_timeout_fails_the_start() {
    let journal = Journal::default();
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance_with(database(&journal, Duration::from_secs(3600)), |s| {
            s.start_timeout(Duration::from_secs(5))
        })
        .add_hosted_service_instance_with(Api(journal.clone(), AtomicU32::new(0)), |s| {
            s.after_ready::<Database>()
        });
    let mut host = builder.build().unwrap();
    let error = host.start().await.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    let message = error.to_string();
    assert!(
        message.contains("`dependencies::Database` failed in start: it did not start within its start timeout (5s)"),
        "{message}"
    );
    assert!(journal.entries().is_empty(), "{:?}", journal.entries());
    // Its `execute` was ended with the failed start.
    assert!(matches!(
        host.states().get("dependencies::Database"),
        Some(ServiceState::Failed(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_restart_restarts_the_services_that_depend_on_it_once_it_is_ready_again() {
    let journal = Journal::default();
    let api = Arc::new(Api(journal.clone(), AtomicU32::new(0)));
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance_with(
            Database {
                fail_once: true,
                ..database(&journal, Duration::from_secs(1))
            },
            |s| {
                s.restart(
                    Restart::on_failure()
                        .backoff(Duration::from_secs(2), Duration::from_secs(2))
                        .jitter(0.0),
                )
            },
        )
        .add_hosted_service_instance_with(Relay(api.clone()), |s| s.after_ready::<Database>());
    let host = builder.start().await.unwrap();
    until("a second run of the api", || {
        api.1.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert_eq!(
        journal.entries(),
        ["db ready 0", "api run 0", "db ready 1", "api run 1"]
    );
    // The database failed at 2 s, restarted at 4 s, was ready at 5 s.
    assert_eq!(journal.at("api run 1"), journal.at("db ready 1"));
    host.assert_logged(
        "restarting `dependencies::Api` after `dependencies::Database`, which it depends on",
    );
    assert_eq!(host.states().snapshot()[1].restarts, 1);
    host.stop().await.unwrap();
}

/// Registers a shared `Api` under its own name.
struct Relay(Arc<Api>);

#[async_trait]
impl BackgroundService for Relay {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "dependencies::Api".into()
    }

    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        self.0.execute(ctx).await
    }
}

mod build_errors {
    use host_testing::TestHost;

    use super::{Journal, step};

    #[test]
    fn a_cycle_is_named() {
        let journal = Journal::default();
        let mut builder = TestHost::builder();
        builder
            .add_hosted_service_instance_with(step("app::A", &journal), |s| s.after_named("B"))
            .add_hosted_service_instance_with(step("app::B", &journal), |s| s.after_named("C"))
            .add_hosted_service_instance_with(step("app::C", &journal), |s| s.after_named("A"));
        let error = builder.build_error();
        assert_eq!(error.exit_code(), 2);
        assert_eq!(
            error.to_string(),
            "cannot build the host: the hosted services' dependencies form a cycle: \
             app::A -> app::B -> app::C -> app::A"
        );
    }

    #[test]
    fn an_unknown_an_ambiguous_and_a_self_dependency_are_named_together() {
        let journal = Journal::default();
        let mut builder = TestHost::builder();
        builder
            .add_hosted_service_instance_with(step("a::Worker", &journal), |s| {
                s.after_named("Nowhere")
            })
            .add_hosted_service_instance(step("b::Worker", &journal))
            .add_hosted_service_instance_with(step("app::Api", &journal), |s| {
                s.after_named("Worker").after_named("app::Api")
            });
        let message = builder.build_error().to_string();
        assert!(
            message.contains(
                "`a::Worker` starts after `Nowhere`, which is not a registered hosted service"
            ),
            "{message}"
        );
        assert!(
            message.contains(
                "`app::Api` starts after `Worker`, which names several services: `a::Worker`, \
                 `b::Worker`; use the full name"
            ),
            "{message}"
        );
        assert!(
            message.contains("`app::Api` starts after itself"),
            "{message}"
        );
    }

    #[test]
    fn waiting_for_a_plain_hosted_service_to_be_ready_is_refused() {
        let journal = Journal::default();
        let mut builder = TestHost::builder();
        builder
            .add_hosted_service_instance(step("app::Cache", &journal))
            .add_hosted_service_instance_with(step("app::Api", &journal), |s| {
                s.after_ready_named("Cache")
            });
        let message = builder.build_error().to_string();
        assert!(
            message.contains("`app::Api` waits for `app::Cache` to report ready, which only a background service does"),
            "{message}"
        );
    }

    #[test]
    fn depending_on_a_service_that_starts_last_is_refused() {
        let journal = Journal::default();
        let mut builder = TestHost::builder();
        builder
            .add_hosted_service_instance_with(step("app::Server", &journal), |s| s.last())
            .add_hosted_service_instance_with(step("app::Api", &journal), |s| {
                s.after_named("Server")
            });
        let message = builder.build_error().to_string();
        assert!(
            message.contains("`app::Api` cannot start after `app::Server`: that service starts after every other one"),
            "{message}"
        );
    }
}
