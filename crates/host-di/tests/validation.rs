//! Validation at `build()` and the errors found at resolve time, each with
//! its full message.

use std::sync::Arc;

use host_di::{DiError, DiErrorKind, Injectable, ServiceCollection, ServiceProvider};

#[allow(dead_code)]
mod app {
    use std::sync::Arc;

    use host_di::Injectable;

    pub(crate) trait Clock: Send + Sync {}

    #[derive(Injectable)]
    pub(crate) struct Worker {
        pub(crate) clock: Arc<dyn Clock>,
    }

    // Three levels: Api -> Service -> Repository -> (missing) Database.
    pub(crate) struct Database;

    #[derive(Injectable)]
    pub(crate) struct Repository {
        pub(crate) db: Arc<Database>,
    }

    #[derive(Injectable)]
    pub(crate) struct Service {
        pub(crate) repository: Arc<Repository>,
    }

    #[derive(Injectable)]
    pub(crate) struct Api {
        pub(crate) service: Arc<Service>,
    }

    // A 3-cycle: A -> B -> C -> A.
    #[derive(Injectable)]
    pub(crate) struct A {
        pub(crate) b: Arc<B>,
    }

    #[derive(Injectable)]
    pub(crate) struct B {
        pub(crate) c: Arc<C>,
    }

    #[derive(Injectable)]
    pub(crate) struct C {
        pub(crate) a: Arc<A>,
    }

    // Captive: Cache (singleton) -> Formatter (transient) -> Session (scoped).
    #[derive(Injectable)]
    pub(crate) struct Session;

    #[derive(Injectable)]
    pub(crate) struct Formatter {
        pub(crate) session: Arc<Session>,
    }

    #[derive(Injectable)]
    pub(crate) struct Cache {
        pub(crate) formatter: Arc<Formatter>,
    }
}

fn build_error(services: ServiceCollection) -> DiError {
    match services.build() {
        Ok(_) => panic!("build() should have failed"),
        Err(err) => err,
    }
}

#[test]
fn missing_dependency_names_the_chain_and_what_to_do() {
    let mut services = ServiceCollection::new();
    services.add_singleton_self::<app::Worker>();
    let err = build_error(services);
    assert_eq!(err.kind(), DiErrorKind::NotRegistered);
    assert_eq!(
        err.to_string(),
        "`validation::app::Worker` needs `Arc<dyn validation::app::Clock>`, which is not registered
  needed by: validation::app::Worker -> Arc<dyn validation::app::Clock>
  help: register an implementation, e.g. `services.add_singleton::<dyn Clock, ClockImpl>()`"
    );
}

#[test]
fn missing_dependency_three_levels_deep() {
    let mut services = ServiceCollection::new();
    // Registered bottom-up: the chain still starts at the top.
    services.add_singleton_self::<app::Repository>();
    services.add_scoped_self::<app::Service>();
    services.add_transient_self::<app::Api>();
    let err = build_error(services);
    assert_eq!(
        err.to_string(),
        "`validation::app::Repository` needs `Arc<validation::app::Database>`, which is not registered
  needed by: validation::app::Api -> Arc<validation::app::Service> -> Arc<validation::app::Repository> -> Arc<validation::app::Database>
  help: register it, e.g. `services.add_singleton_self::<Database>()`"
    );
    assert_eq!(err.service(), Some("validation::app::Database"));
    assert_eq!(
        err.chain(),
        [
            "validation::app::Api",
            "Arc<validation::app::Service>",
            "Arc<validation::app::Repository>",
            "Arc<validation::app::Database>"
        ]
    );
}

#[test]
fn three_cycle_shows_the_cycle() {
    let mut services = ServiceCollection::new();
    services.add_singleton_self::<app::A>();
    services.add_transient_self::<app::B>();
    services.add_scoped_self::<app::C>();
    let err = build_error(services);
    assert_eq!(err.kind(), DiErrorKind::Cycle);
    assert_eq!(
        err.to_string(),
        "dependency cycle: `validation::app::A` needs itself
  cycle: validation::app::A -> Arc<validation::app::B> -> Arc<validation::app::C> -> Arc<validation::app::A>
  help: a service cannot need itself, directly or through others; move what they share into a new service they all depend on"
    );
}

#[test]
fn nested_captive_dependency() {
    let mut services = ServiceCollection::new();
    services.add_scoped_self::<app::Session>();
    services.add_transient_self::<app::Formatter>();
    services.add_singleton_self::<app::Cache>();
    let err = build_error(services);
    assert_eq!(err.kind(), DiErrorKind::CaptiveDependency);
    assert_eq!(
        err.to_string(),
        "`validation::app::Cache` is a singleton but needs `Arc<validation::app::Session>`, which is scoped: the singleton would keep one scope's instance forever
  needed by: validation::app::Cache -> Arc<validation::app::Formatter> -> Arc<validation::app::Session>
  help: make `Cache` scoped, make `Session` a singleton, or inject `ServiceProvider` and resolve `Session` from a scope per unit of work"
    );
}

#[test]
fn scoped_below_scoped_and_transient_is_fine() {
    let mut services = ServiceCollection::new();
    services.add_scoped_self::<app::Session>();
    services.add_transient_self::<app::Formatter>();
    services.add_scoped_self::<app::Cache>();
    let provider = services.build().unwrap();
    let scope = provider.create_scope();
    assert!(scope.get::<app::Cache>().is_ok());
}

#[test]
fn scoped_from_the_root_is_an_error_at_resolve_time() {
    let mut services = ServiceCollection::new();
    services.add_scoped_self::<app::Session>();
    services.add_transient_self::<app::Formatter>();
    let provider = services.build().unwrap();

    let err = provider.get::<app::Session>().err().unwrap();
    assert_eq!(err.kind(), DiErrorKind::ScopedFromRoot);
    assert_eq!(
        err.to_string(),
        "`validation::app::Session` is scoped and cannot be resolved from the root provider
  help: create a scope with `provider.create_scope()` and resolve it from the scope"
    );

    // Through a transient: the chain says how it was reached.
    let err = provider.get::<app::Formatter>().err().unwrap();
    assert_eq!(
        err.to_string(),
        "`validation::app::Session` is scoped and cannot be resolved from the root provider
  needed by: validation::app::Formatter -> Arc<validation::app::Session>
  help: create a scope with `provider.create_scope()` and resolve it from the scope"
    );
}

#[test]
fn a_declared_factory_is_validated() {
    trait Hosted: Send + Sync {}
    impl Hosted for app::Worker {}

    let mut services = ServiceCollection::new();
    services
        .add_singleton_factory::<dyn Hosted, _>(|provider| {
            Ok(provider.get::<app::Worker>()? as Arc<dyn Hosted>)
        })
        .depends_on::<app::Worker>();
    let err = build_error(services);
    assert_eq!(
        err.to_string(),
        "`dyn validation::a_declared_factory_is_validated::Hosted` needs `Arc<validation::app::Worker>`, which is not registered
  needed by: dyn validation::a_declared_factory_is_validated::Hosted -> Arc<validation::app::Worker>
  help: register it, e.g. `services.add_singleton_self::<Worker>()`"
    );
}

#[test]
fn a_declared_factory_capturing_a_scoped_service() {
    let mut services = ServiceCollection::new();
    services.add_scoped_self::<app::Session>();
    services
        .add_singleton_factory::<app::Formatter, _>(|provider| {
            Ok(Arc::new(app::Formatter {
                session: provider.get()?,
            }))
        })
        .depends_on_all(app::Formatter::dependencies());
    let err = build_error(services);
    assert_eq!(err.kind(), DiErrorKind::CaptiveDependency);
}

struct Ping(#[allow(dead_code)] Arc<Pong>);
struct Pong(#[allow(dead_code)] Arc<Ping>);
struct Top(#[allow(dead_code)] Arc<Ping>);

fn cyclic_factories(ping: host_di::Lifetime) -> ServiceProvider {
    use host_di::{Lifetime, ServiceDescriptor};
    let mut services = ServiceCollection::new();
    let make_ping = |provider: &ServiceProvider| Ok(Arc::new(Ping(provider.get::<Pong>()?)));
    services.add(match ping {
        Lifetime::Singleton => ServiceDescriptor::singleton_factory(make_ping),
        Lifetime::Scoped => ServiceDescriptor::scoped_factory(make_ping),
        Lifetime::Transient => ServiceDescriptor::transient_factory(make_ping),
    });
    services
        .add_transient_factory::<Pong, _>(|provider| Ok(Arc::new(Pong(provider.get::<Ping>()?))));
    services.add_transient_factory::<Top, _>(|provider| Ok(Arc::new(Top(provider.get::<Ping>()?))));
    services
        .build()
        .expect("undeclared factories cannot be validated")
}

#[test]
fn a_cycle_through_factories_is_caught_at_resolve_time() {
    for lifetime in [
        host_di::Lifetime::Singleton,
        host_di::Lifetime::Scoped,
        host_di::Lifetime::Transient,
    ] {
        let provider = cyclic_factories(lifetime);
        let scope = provider.create_scope();
        let err = scope.get::<Top>().err().unwrap();
        assert_eq!(err.kind(), DiErrorKind::Cycle, "{lifetime}");
        assert_eq!(
            err.to_string(),
            "dependency cycle: `validation::Ping` needs itself
  cycle: validation::Ping -> Arc<validation::Pong> -> Arc<validation::Ping>
  help: a service cannot need itself, directly or through others; move what they share into a new service they all depend on",
            "{lifetime}"
        );
        // Nothing is left half-built: the same error again, no deadlock.
        assert_eq!(
            scope.get::<Ping>().err().unwrap().kind(),
            DiErrorKind::Cycle
        );
    }
}

#[test]
fn a_missing_service_inside_a_factory_names_the_chain() {
    struct Mailer;
    let mut services = ServiceCollection::new();
    services.add_transient_factory::<Mailer, _>(|provider| {
        provider.get::<app::Database>()?;
        Ok(Arc::new(Mailer))
    });
    services.add_transient_self::<Signup>();
    #[derive(Injectable)]
    struct Signup {
        _mailer: Arc<Mailer>,
    }
    let provider = services.build().unwrap();
    let err = provider.get::<Signup>().err().unwrap();
    assert_eq!(
        err.to_string(),
        "`validation::a_missing_service_inside_a_factory_names_the_chain::Mailer` needs `Arc<validation::app::Database>`, which is not registered
  needed by: validation::a_missing_service_inside_a_factory_names_the_chain::Signup -> Arc<validation::a_missing_service_inside_a_factory_names_the_chain::Mailer> -> Arc<validation::app::Database>
  help: register it, e.g. `services.add_singleton_self::<Database>()`"
    );
}

#[test]
fn a_factory_error_names_the_service_and_chain() {
    struct Pool;
    #[derive(Injectable)]
    struct Repo {
        _pool: Arc<Pool>,
    }
    let mut services = ServiceCollection::new();
    services.add_singleton_factory::<Pool, _>(|_| Err(DiError::custom("connection refused")));
    services.add_transient_self::<Repo>();
    let provider = services.build().unwrap();
    let err = provider.get::<Repo>().err().unwrap();
    assert_eq!(err.kind(), DiErrorKind::Factory);
    assert_eq!(
        err.to_string(),
        "could not create `validation::a_factory_error_names_the_service_and_chain::Pool`: connection refused
  needed by: validation::a_factory_error_names_the_service_and_chain::Repo -> Arc<validation::a_factory_error_names_the_service_and_chain::Pool>"
    );
    assert_eq!(
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .as_deref(),
        Some("connection refused")
    );
}

#[test]
fn not_registered_at_the_top_and_keyed() {
    let provider = ServiceCollection::new().build().unwrap();
    let err = provider.get::<dyn app::Clock>().err().unwrap();
    assert_eq!(
        err.to_string(),
        "`dyn validation::app::Clock` is not registered
  help: register an implementation, e.g. `services.add_singleton::<dyn Clock, ClockImpl>()`"
    );
    let err = provider.get_keyed::<dyn app::Clock>("utc").err().unwrap();
    assert_eq!(err.key(), Some("utc"));
    assert_eq!(
        err.to_string(),
        "`dyn validation::app::Clock (key \"utc\")` is not registered
  help: register an implementation, e.g. `services.add_keyed_singleton::<dyn Clock, ClockImpl>(\"utc\")`"
    );
}

#[test]
fn missing_options_suggest_add_options() {
    #[allow(dead_code)]
    struct WorkerOptions {
        every: u32,
    }
    #[derive(Injectable)]
    struct Worker {
        _options: host_di::Options<WorkerOptions>,
    }
    let mut services = ServiceCollection::new();
    services.add_singleton_self::<Worker>();
    let err = build_error(services);
    assert_eq!(
        err.to_string(),
        "`validation::missing_options_suggest_add_options::Worker` needs `host_di::options::Options<validation::missing_options_suggest_add_options::WorkerOptions>`, which is not registered
  needed by: validation::missing_options_suggest_add_options::Worker -> host_di::options::Options<validation::missing_options_suggest_add_options::WorkerOptions>
  help: register its value, e.g. `services.add_options(WorkerOptions { .. })`"
    );
}

#[test]
fn optional_and_empty_lists_need_nothing() {
    #[derive(Injectable)]
    struct Relaxed {
        clock: Option<Arc<dyn app::Clock>>,
        sinks: Vec<Arc<dyn app::Clock>>,
    }
    let mut services = ServiceCollection::new();
    services.add_singleton_self::<Relaxed>();
    let provider = services.build().unwrap();
    let relaxed = provider.get::<Relaxed>().unwrap();
    assert!(relaxed.clock.is_none());
    assert!(relaxed.sinks.is_empty());
}

/// What a registration as a trait object hands out: a `Worker`.
trait Job: Send + Sync {}

impl Job for app::Worker {}

#[test]
fn a_forwarding_registration_is_left_out_of_the_chain() {
    let mut services = ServiceCollection::new();
    services.add_singleton_self::<app::Worker>();
    services
        .add_singleton_factory::<dyn Job, _>(|provider| {
            let job: Arc<dyn Job> = provider.get::<app::Worker>()?;
            Ok(job)
        })
        .forwards_to::<app::Worker>();
    let err = build_error(services);
    // The same message as for the worker alone: `dyn Job` is not named.
    assert_eq!(
        err.to_string(),
        "`validation::app::Worker` needs `Arc<dyn validation::app::Clock>`, which is not registered
  needed by: validation::app::Worker -> Arc<dyn validation::app::Clock>
  help: register an implementation, e.g. `services.add_singleton::<dyn Clock, ClockImpl>()`"
    );
    assert_eq!(
        err.chain(),
        ["validation::app::Worker", "Arc<dyn validation::app::Clock>"]
    );
}

#[test]
fn a_forwarding_registration_still_declares_its_dependency() {
    let mut services = ServiceCollection::new();
    services
        .add_singleton_factory::<dyn Job, _>(|provider| {
            let job: Arc<dyn Job> = provider.get::<app::Worker>()?;
            Ok(job)
        })
        .forwards_to::<app::Worker>();
    let err = build_error(services);
    assert_eq!(err.kind(), DiErrorKind::NotRegistered);
    assert_eq!(err.service(), Some("validation::app::Worker"));
}
