//! The host and its container: hosted services built by the container,
//! singletons disposed after the host has stopped.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::test_builder;
use host_core::{
    ApplicationLifetime, BackgroundService, HostedServiceCollectionExt, ServiceContext,
    ServiceError, async_trait,
};
use host_di::{AsyncDispose, Dependency, DiError, Dispose, Injectable, ServiceProvider};

/// Records, at its disposal, whether the host had stopped by then.
struct Pool {
    lifetime: Arc<ApplicationLifetime>,
    journal: Arc<Mutex<Vec<String>>>,
}

impl Dispose for Pool {
    fn dispose(&self) {
        self.journal.lock().unwrap().push(format!(
            "pool disposed, host stopped: {}",
            self.lifetime.is_stopped()
        ));
    }
}

struct Exporter {
    journal: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl AsyncDispose for Exporter {
    async fn dispose(&self) {
        tokio::task::yield_now().await;
        self.journal
            .lock()
            .unwrap()
            .push("exporter disposed".into());
    }
}

/// A hosted service built by the container: it needs the pool.
struct Worker {
    pool: Arc<Pool>,
}

impl Injectable for Worker {
    fn dependencies() -> Vec<Dependency> {
        vec![Dependency::required::<Pool>()]
    }

    fn create(provider: &ServiceProvider) -> Result<Self, DiError> {
        Ok(Self {
            pool: provider.get::<Pool>()?,
        })
    }
}

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        self.pool.journal.lock().unwrap().push("worker ran".into());
        ctx.lifetime().stop_application();
        ctx.stopping().await;
        Ok(())
    }
}

#[tokio::test]
async fn singletons_are_disposed_in_reverse_creation_order_after_the_host_stopped() {
    let journal = Arc::new(Mutex::new(Vec::new()));
    let mut builder = test_builder();
    let pool_journal = journal.clone();
    builder
        .services()
        .add_singleton_factory::<Pool, _>(move |provider| {
            Ok(Arc::new(Pool {
                lifetime: provider.get::<ApplicationLifetime>()?,
                journal: pool_journal.clone(),
            }))
        })
        .depends_on::<ApplicationLifetime>()
        .disposable();
    let exporter_journal = journal.clone();
    builder
        .services()
        .add_singleton_factory::<Exporter, _>(move |_| {
            Ok(Arc::new(Exporter {
                journal: exporter_journal.clone(),
            }))
        })
        .async_disposable();
    builder.add_hosted_service::<Worker>();
    let host = builder.build().unwrap();
    // Created after the pool (which the worker needed at build), so disposed before it.
    host.services().get::<Exporter>().unwrap();
    tokio::time::timeout(Duration::from_secs(30), host.run())
        .await
        .expect("the worker stops the host")
        .unwrap();
    assert_eq!(
        *journal.lock().unwrap(),
        [
            "worker ran",
            "exporter disposed",
            "pool disposed, host stopped: true"
        ]
    );
}

#[test]
fn registering_the_same_hosted_service_twice_hosts_it_once() {
    let mut builder = test_builder();
    builder
        .services()
        .add_singleton_factory::<Pool, _>(|provider| {
            Ok(Arc::new(Pool {
                lifetime: provider.get::<ApplicationLifetime>()?,
                journal: Arc::default(),
            }))
        })
        .depends_on::<ApplicationLifetime>();
    builder.add_hosted_service::<Worker>();
    builder.services().add_hosted_service::<Worker>();
    let host = builder.build().unwrap();
    let names: Vec<String> = host
        .service_states()
        .snapshot()
        .into_iter()
        .map(|status| status.name.to_string())
        .collect();
    assert_eq!(names, ["container::Worker"]);
    // And the instance is the container's singleton.
    let worker = host.services().get::<Worker>().unwrap();
    assert!(Arc::ptr_eq(
        &worker.pool,
        &host.services().get::<Pool>().unwrap()
    ));
}

/// Panics when disposed.
struct Crashes;

impl Dispose for Crashes {
    fn dispose(&self) {
        panic!("the crashing disposer panicked on purpose");
    }
}

/// Never finishes its async disposal.
struct NeverDone;

#[async_trait]
impl AsyncDispose for NeverDone {
    async fn dispose(&self) {
        std::future::pending::<()>().await;
    }
}

/// Records its disposal in the journal.
struct Notes(Arc<Mutex<Vec<String>>>, &'static str);

impl Dispose for Notes {
    fn dispose(&self) {
        self.0.lock().unwrap().push(format!("{} disposed", self.1));
    }
}

#[tokio::test]
async fn a_panicking_disposer_fails_the_stop_and_the_others_still_run() {
    let journal = Arc::new(Mutex::new(Vec::new()));
    let mut builder = test_builder();
    // Registered (and so created) first: disposed last.
    builder
        .services()
        .add_instance(Arc::new(Notes(journal.clone(), "older")))
        .disposable();
    builder
        .services()
        .add_instance(Arc::new(Crashes))
        .disposable();
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    let error = host.stop().await.expect_err("a disposer panicked");
    assert_eq!(error.exit_code(), host_core::exit_code::SERVICE_FAILED);
    let failure = &error.failures()[0];
    assert_eq!(failure.phase(), host_core::Phase::Dispose);
    assert!(failure.is_panic());
    assert!(failure.service().ends_with("Crashes"), "{failure}");
    assert!(error.to_string().contains("panicked on purpose"), "{error}");
    assert_eq!(*journal.lock().unwrap(), ["older disposed"]);
}

#[tokio::test(start_paused = true)]
async fn past_the_deadline_sync_disposals_still_run_and_async_ones_are_named() {
    let journal = Arc::new(Mutex::new(Vec::new()));
    let mut builder = test_builder();
    builder.configure_host_options(|options| options.shutdown_timeout = Duration::from_secs(1));
    builder
        .services()
        .add_instance(Arc::new(Notes(journal.clone(), "older")))
        .disposable();
    builder
        .services()
        .add_instance(Arc::new(NeverDone))
        .async_disposable();
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    let error = tokio::time::timeout(Duration::from_secs(30), host.stop())
        .await
        .expect("the disposal is bounded")
        .expect_err("an async disposal was skipped");
    assert!(error.is_shutdown_timeout(), "{error}");
    let skipped: Vec<&str> = error.timed_out().collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].contains("NeverDone"), "{skipped:?}");
    assert_eq!(*journal.lock().unwrap(), ["older disposed"]);
}

/// Registered by nobody.
struct Clock;

/// A hosted service that needs the clock, declared (checked by `build()`).
struct NeedsClock;

impl Injectable for NeedsClock {
    fn dependencies() -> Vec<Dependency> {
        vec![Dependency::required::<Clock>()]
    }

    fn create(provider: &ServiceProvider) -> Result<Self, DiError> {
        provider.get::<Clock>()?;
        Ok(Self)
    }
}

#[async_trait]
impl BackgroundService for NeedsClock {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// The same, but the dependency is not declared: found when it is created.
struct NeedsClockUndeclared;

impl Injectable for NeedsClockUndeclared {
    fn dependencies() -> Vec<Dependency> {
        Vec::new()
    }

    fn create(provider: &ServiceProvider) -> Result<Self, DiError> {
        provider.get::<Clock>()?;
        Ok(Self)
    }
}

#[async_trait]
impl BackgroundService for NeedsClockUndeclared {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

#[test]
fn a_missing_dependency_of_a_hosted_service_names_the_service_not_the_trait() {
    let mut builder = test_builder();
    builder.add_hosted_service::<NeedsClock>();
    let error = builder.build().expect_err("the clock is missing");
    assert_eq!(
        error.to_string(),
        "cannot build the host: `container::NeedsClock` needs `Arc<container::Clock>`, \
         which is not registered\n  \
         needed by: container::NeedsClock -> Arc<container::Clock>\n  \
         help: register it, e.g. `services.add_singleton_self::<Clock>()`"
    );
    assert_eq!(error.exit_code(), 2);
}

#[test]
fn a_dependency_missing_at_creation_names_the_service_not_the_trait() {
    let mut builder = test_builder();
    builder.add_hosted_service::<NeedsClockUndeclared>();
    let error = builder.build().expect_err("the clock is missing");
    let message = error.to_string();
    assert!(!message.contains("HostedService"), "{message}");
    assert!(
        message.contains("needed by: container::NeedsClockUndeclared -> Arc<container::Clock>"),
        "{message}"
    );
}
