//! Hosted services in the container: `add_hosted_service::<T>()` on the
//! service collection, and their resolution in registration order.

use std::any::{Any, TypeId, type_name};
use std::collections::HashSet;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use host_di::{DiError, Injectable, ServiceCollection, ServiceProvider};

use crate::services::failure::panic_message;
use crate::supervision::options::ServiceSettings;
use crate::{HostError, HostedService, Periodic, PeriodicService, Schedule, ServiceOptions};

/// Registers hosted services in a [`ServiceCollection`], as .NET's
/// `services.AddHostedService<T>()`.
///
/// An extension trait: host-di knows nothing of hosting, and this is how a
/// crate adds registration methods to a type it does not own. The host
/// starts hosted services in registration order.
///
/// # Examples
///
/// ```
/// use async_trait::async_trait;
/// use host_core::{BackgroundService, HostedServiceCollectionExt, ServiceContext, ServiceError};
/// use host_di::ServiceCollection;
///
/// struct Worker;
///
/// #[async_trait]
/// impl BackgroundService for Worker {
///     async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
///         ctx.stopping().await;
///         Ok(())
///     }
/// }
///
/// let mut services = ServiceCollection::new();
/// services.add_hosted_service_instance(Worker);
/// ```
pub trait HostedServiceCollectionExt {
    /// Registers `T`, constructed by the container with its dependencies
    /// injected, as a hosted service.
    fn add_hosted_service<T: HostedService + Injectable>(&mut self) -> &mut Self;

    /// Registers an instance you have built as a hosted service.
    fn add_hosted_service_instance<T: HostedService>(&mut self, service: T) -> &mut Self;

    /// Registers `T` as [`add_hosted_service`](Self::add_hosted_service)
    /// does, with its [`ServiceOptions`]: restart policy, timeouts,
    /// dependencies, heartbeat. Registering `T` again replaces them.
    fn add_hosted_service_with<T, F>(&mut self, configure: F) -> &mut Self
    where
        T: HostedService + Injectable,
        F: FnOnce(&mut ServiceOptions<T>) -> &mut ServiceOptions<T>;

    /// Registers an instance as [`add_hosted_service_instance`](Self::add_hosted_service_instance)
    /// does, with its [`ServiceOptions`].
    fn add_hosted_service_instance_with<T, F>(&mut self, service: T, configure: F) -> &mut Self
    where
        T: HostedService,
        F: FnOnce(&mut ServiceOptions<T>) -> &mut ServiceOptions<T>;

    /// Registers `T`, constructed by the container, as a
    /// [`PeriodicService`] run on `schedule`. Registering `T` again
    /// replaces its schedule and options (it runs once).
    fn add_periodic<T: PeriodicService + Injectable>(&mut self, schedule: Schedule) -> &mut Self {
        self.add_periodic_with::<T, _>(schedule, |options| options)
    }

    /// [`add_periodic`](Self::add_periodic) with [`ServiceOptions`]: a
    /// restart policy for failing runs, a scope per run, timeouts.
    fn add_periodic_with<T, F>(&mut self, schedule: Schedule, configure: F) -> &mut Self
    where
        T: PeriodicService + Injectable,
        F: FnOnce(&mut ServiceOptions<Periodic<T>>) -> &mut ServiceOptions<Periodic<T>>;

    /// Registers an instance you have built as a [`PeriodicService`] run on
    /// `schedule`.
    fn add_periodic_instance<T: PeriodicService>(
        &mut self,
        service: T,
        schedule: Schedule,
    ) -> &mut Self {
        self.add_periodic_instance_with(service, schedule, |options| options)
    }

    /// [`add_periodic_instance`](Self::add_periodic_instance) with
    /// [`ServiceOptions`].
    fn add_periodic_instance_with<T, F>(
        &mut self,
        service: T,
        schedule: Schedule,
        configure: F,
    ) -> &mut Self
    where
        T: PeriodicService,
        F: FnOnce(&mut ServiceOptions<Periodic<T>>) -> &mut ServiceOptions<Periodic<T>>;
}

impl HostedServiceCollectionExt for ServiceCollection {
    fn add_hosted_service<T: HostedService + Injectable>(&mut self) -> &mut Self {
        // `T` is a singleton of its own, so that the container disposes it
        // and other services can reach it; the hosted-service list refers to it.
        if !self.contains::<T>() {
            self.add_singleton_self::<T>();
        }
        self.add_singleton_factory::<dyn HostedService, _>(|provider| {
            let service: Arc<dyn HostedService> = construct::<T>(provider)?;
            Ok(service)
        })
        // Errors name `T`, not `dyn HostedService`.
        .forwards_to::<T>();
        self
    }

    fn add_hosted_service_instance<T: HostedService>(&mut self, service: T) -> &mut Self {
        let service: Arc<dyn HostedService> = Arc::new(service);
        self.add_instance(service);
        self
    }

    fn add_hosted_service_with<T, F>(&mut self, configure: F) -> &mut Self
    where
        T: HostedService + Injectable,
        F: FnOnce(&mut ServiceOptions<T>) -> &mut ServiceOptions<T>,
    {
        let mut options = ServiceOptions::<T>::new();
        configure(&mut options);
        self.add_hosted_service::<T>();
        self.add_instance(Arc::new(Registered {
            key: Key::Type(TypeId::of::<T>()),
            settings: Arc::new(options.into_settings()),
        }));
        self
    }

    fn add_hosted_service_instance_with<T, F>(&mut self, service: T, configure: F) -> &mut Self
    where
        T: HostedService,
        F: FnOnce(&mut ServiceOptions<T>) -> &mut ServiceOptions<T>,
    {
        let mut options = ServiceOptions::<T>::new();
        configure(&mut options);
        register_instance(self, Arc::new(service), options.into_settings());
        self
    }

    fn add_periodic_with<T, F>(&mut self, schedule: Schedule, configure: F) -> &mut Self
    where
        T: PeriodicService + Injectable,
        F: FnOnce(&mut ServiceOptions<Periodic<T>>) -> &mut ServiceOptions<Periodic<T>>,
    {
        let mut options = ServiceOptions::<Periodic<T>>::new();
        options.schedule(schedule.clone());
        configure(&mut options);
        if !self.contains::<Periodic<T>>() {
            if !self.contains::<T>() {
                self.add_singleton_self::<T>();
            }
            // One `Periodic<T>`, however often `T` is registered: the
            // hosted-service list refers to it, as to `add_hosted_service`'s `T`.
            self.add_singleton_factory::<Periodic<T>, _>(move |provider| {
                Ok(Arc::new(Periodic::new(
                    construct::<T>(provider)?,
                    schedule.clone(),
                )))
            })
            .forwards_to::<T>();
            self.add_singleton_factory::<dyn HostedService, _>(|provider| {
                let service: Arc<dyn HostedService> = provider.get::<Periodic<T>>()?;
                Ok(service)
            })
            .forwards_to::<T>();
        }
        self.add_instance(Arc::new(Registered {
            key: Key::Type(TypeId::of::<Periodic<T>>()),
            settings: Arc::new(options.into_settings()),
        }));
        self
    }

    fn add_periodic_instance_with<T, F>(
        &mut self,
        service: T,
        schedule: Schedule,
        configure: F,
    ) -> &mut Self
    where
        T: PeriodicService,
        F: FnOnce(&mut ServiceOptions<Periodic<T>>) -> &mut ServiceOptions<Periodic<T>>,
    {
        let mut options = ServiceOptions::<Periodic<T>>::new();
        options.schedule(schedule.clone());
        configure(&mut options);
        let periodic = Periodic::new(Arc::new(service), schedule);
        register_instance(self, Arc::new(periodic), options.into_settings());
        self
    }
}

/// Registers `service` as a hosted service, with the options found again
/// at build by its address.
fn register_instance(
    services: &mut ServiceCollection,
    service: Arc<dyn HostedService>,
    settings: ServiceSettings,
) {
    let key = Key::Instance(Arc::as_ptr(&service).cast::<()>() as usize);
    services.add_instance(service);
    services.add_instance(Arc::new(Registered {
        key,
        settings: Arc::new(settings),
    }));
}

/// The options a registration gave its hosted service, found again at
/// build by the service's type or instance.
pub(crate) struct Registered {
    key: Key,
    settings: Arc<ServiceSettings>,
}

/// What options were registered for.
#[derive(PartialEq, Eq)]
enum Key {
    /// `add_hosted_service_with::<T>`: the type (hosted once).
    Type(TypeId),
    /// `add_hosted_service_instance_with`: that instance, by address (the
    /// container holds it for as long as the options are looked up).
    Instance(usize),
}

/// The options registered for `service`: those given with its instance,
/// else with its type, the last registration's; the defaults otherwise
/// (one value, shared).
pub(crate) fn settings_for(
    registered: &[Arc<Registered>],
    service: &Arc<dyn HostedService>,
) -> Arc<ServiceSettings> {
    static DEFAULTS: std::sync::LazyLock<Arc<ServiceSettings>> =
        std::sync::LazyLock::new(Arc::default);
    if registered.is_empty() {
        return DEFAULTS.clone();
    }
    let instance = Key::Instance(Arc::as_ptr(service).cast::<()>() as usize);
    let any: &dyn Any = &**service;
    let of_type = Key::Type(any.type_id());
    registered
        .iter()
        .rev()
        .find(|entry| entry.key == instance)
        .or_else(|| registered.iter().rev().find(|entry| entry.key == of_type))
        .map(|entry| entry.settings.clone())
        .unwrap_or_else(|| DEFAULTS.clone())
}

/// Resolves `T`, turning a panic in its constructor (or in one of its
/// dependencies') into an error that names it, so that `build()` fails with
/// exit code 2 instead of the panic taking the process down.
fn construct<T: Injectable>(provider: &ServiceProvider) -> Result<Arc<T>, DiError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| provider.get::<T>())).unwrap_or_else(|payload| {
        Err(DiError::custom(ConstructorPanicked {
            service: Some(type_name::<T>()),
            message: panic_message(payload.as_ref()),
        }))
    })
}

/// A hosted service's constructor panicked.
#[derive(Debug, Clone)]
struct ConstructorPanicked {
    /// `None` for a factory registered as `dyn HostedService` directly,
    /// whose concrete type nobody knows.
    service: Option<&'static str>,
    message: String,
}

impl fmt::Display for ConstructorPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.service {
            Some(service) => write!(
                f,
                "the hosted service `{service}` panicked while being constructed: {}",
                self.message
            ),
            None => write!(
                f,
                "a hosted service's factory (registered as `dyn HostedService`) panicked: {}",
                self.message
            ),
        }
    }
}

impl std::error::Error for ConstructorPanicked {}

/// Every registered hosted service, in registration order. Registering the
/// same type twice with `add_hosted_service` hosts it once (as .NET's
/// `TryAddEnumerable`).
///
/// A constructor that panics fails the build, naming the service (see
/// [`construct`]; a factory registered as `dyn HostedService` by hand is
/// caught here, where only its panic message is known).
pub(crate) fn resolve_hosted_services(
    provider: &ServiceProvider,
) -> Result<Vec<Arc<dyn HostedService>>, HostError> {
    let resolved =
        std::panic::catch_unwind(AssertUnwindSafe(|| provider.get_all::<dyn HostedService>()));
    let mut services = match resolved {
        Ok(Ok(services)) => services,
        Ok(Err(error)) => {
            // A panic `construct` caught reads best on its own: the
            // container's wrapping would name `dyn HostedService` only.
            return Err(match panicked(&error) {
                Some(panicked) => HostError::build(panicked.clone()),
                None => HostError::build(error),
            });
        }
        Err(payload) => {
            return Err(HostError::build(ConstructorPanicked {
                service: None,
                message: panic_message(payload.as_ref()),
            }));
        }
    };
    let mut seen = HashSet::with_capacity(services.len());
    services.retain(|service| seen.insert(Arc::as_ptr(service).cast::<()>()));
    Ok(services)
}

/// The caught panic an error comes from, if any.
fn panicked(error: &DiError) -> Option<&ConstructorPanicked> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = cause {
        if let Some(panicked) = error.downcast_ref::<ConstructorPanicked>() {
            return Some(panicked);
        }
        cause = error.source();
    }
    None
}
