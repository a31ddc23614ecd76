//! What the container created is freed with its scope or container, also
//! when the services hold the `ServiceProvider` they were built with: no
//! reference cycle through the container's own types.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use host_di::{Dependency, DiError, DiErrorKind, Injectable, ServiceCollection, ServiceProvider};

/// Counts the drops of the instances that report to it.
#[derive(Default)]
struct Drops(AtomicUsize);

impl Drops {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A scoped service that keeps its scope's provider, as the derive fills
/// a `ServiceProvider` field.
#[derive(Injectable)]
struct UnitOfWork {
    provider: ServiceProvider,
    drops: Arc<Drops>,
}

impl Drop for UnitOfWork {
    fn drop(&mut self) {
        self.drops.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn scoped_services_holding_their_provider_are_freed_with_their_scope() {
    let drops = Arc::new(Drops::default());
    let mut services = ServiceCollection::new();
    services.add_instance(Arc::clone(&drops));
    services.add_scoped_self::<UnitOfWork>();
    let provider = services.build().unwrap();

    for i in 0..1_000 {
        let scope = provider.create_scope();
        let unit = scope.get::<UnitOfWork>().unwrap();
        // The provider it keeps is its scope's, and resolves while the
        // scope lives.
        assert!(unit.provider.is_scope());
        assert!(Arc::ptr_eq(
            &unit.provider.get::<UnitOfWork>().unwrap(),
            &unit
        ));
        drop(unit);
        if i % 2 == 0 {
            scope.close().await;
        } else {
            drop(scope);
        }
    }
    assert_eq!(drops.count(), 1_000);

    // Kept past its scope, the instance's provider no longer resolves.
    let scope = provider.create_scope();
    let kept = scope.get::<UnitOfWork>().unwrap();
    scope.close().await;
    let err = kept.provider.get::<Drops>().err().unwrap();
    assert_eq!(err.kind(), DiErrorKind::Disposed);
    assert_eq!(
        err.to_string(),
        "cannot resolve `release::Drops`: the scope has been disposed"
    );
    drop(kept);
    assert_eq!(drops.count(), 1_001);
}

/// A singleton that keeps the root provider, as the web server does: a
/// hand-written `create` that clones the provider it is given.
struct Server {
    provider: ServiceProvider,
    drops: Arc<Drops>,
}

impl Injectable for Server {
    fn dependencies() -> Vec<Dependency> {
        vec![Dependency::required::<Drops>()]
    }

    fn create(provider: &ServiceProvider) -> Result<Self, DiError> {
        Ok(Self {
            provider: provider.clone(),
            drops: provider.get::<Drops>()?,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.drops.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn server_container() -> (ServiceProvider, Arc<Drops>) {
    let drops = Arc::new(Drops::default());
    let mut services = ServiceCollection::new();
    services.add_instance(Arc::clone(&drops));
    services.add_singleton_self::<Server>();
    (services.build().unwrap(), drops)
}

#[tokio::test]
async fn a_singleton_holding_the_root_provider_is_freed_after_dispose_and_the_last_handle() {
    let (provider, drops) = server_container();
    let server: Weak<Server> = Arc::downgrade(&provider.get::<Server>().unwrap());
    // Its provider works while the container lives: it creates scopes and
    // resolves.
    let held = server.upgrade().unwrap();
    assert!(!held.provider.is_scope());
    held.provider.create_scope().get::<Drops>().unwrap();
    drop(held);

    // A user's clone of the root provider is strong: the container lives
    // on without the original.
    let services = provider.clone();
    drop(provider);
    assert!(server.upgrade().is_some());
    services.get::<Server>().unwrap();

    assert!(services.dispose().await.is_clean());
    assert!(server.upgrade().is_some(), "held until the last handle");
    drop(services);
    assert!(server.upgrade().is_none());
    assert_eq!(drops.count(), 1);
}

#[test]
fn a_container_dropped_without_dispose_is_freed_too() {
    let (provider, drops) = server_container();
    let server = provider.get::<Server>().unwrap();
    let weak_server = Arc::downgrade(&server);
    drop(provider);
    // Kept past its container, the singleton's provider no longer resolves.
    let err = server.provider.get::<Drops>().err().unwrap();
    assert_eq!(err.kind(), DiErrorKind::Disposed);
    assert_eq!(
        err.to_string(),
        "cannot resolve `release::Drops`: the service provider has been disposed"
    );
    // A scope from it is a disposed one, not a panic.
    let scope = server.provider.create_scope();
    assert_eq!(
        scope.get::<Drops>().err().unwrap().kind(),
        DiErrorKind::Disposed
    );
    drop(scope);
    drop(server);
    assert!(weak_server.upgrade().is_none());
    assert_eq!(drops.count(), 1);
}

/// A transient that keeps the provider it was built with.
#[derive(Injectable)]
struct Job {
    provider: ServiceProvider,
}

#[test]
fn transients_from_the_root_keep_weak_providers_however_many_are_resolved() {
    let drops = Arc::new(Drops::default());
    let mut services = ServiceCollection::new();
    services.add_instance(Arc::clone(&drops));
    services.add_singleton_self::<Server>();
    services.add_transient_self::<Job>();
    let provider = services.build().unwrap();
    let server = Arc::downgrade(&provider.get::<Server>().unwrap());

    // The root lends the same handle to every transient's constructor:
    // each job's provider is weak, resolves while the container lives,
    // and makes more jobs, from the root as well.
    let jobs: Vec<Arc<Job>> = (0..3).map(|_| provider.get::<Job>().unwrap()).collect();
    for job in &jobs {
        assert!(!job.provider.is_scope());
        let nested = job.provider.get::<Job>().unwrap();
        nested.provider.get::<Drops>().unwrap();
    }
    // A clone of the root handle resolves jobs as well.
    let clone = provider.clone();
    let from_clone = clone.get::<Job>().unwrap();
    drop(clone);

    drop(provider);
    // Nothing the jobs keep holds the container: it is freed with its
    // last user handle, and their providers report it.
    assert!(server.upgrade().is_none());
    assert_eq!(drops.count(), 1);
    for job in jobs.iter().chain([&from_clone]) {
        assert_eq!(
            job.provider.get::<Drops>().err().unwrap().kind(),
            DiErrorKind::Disposed
        );
    }
}
