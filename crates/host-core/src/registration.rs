//! Hosted services in the container: `add_hosted_service::<T>()` on the
//! service collection, and their resolution in registration order.

use std::collections::HashSet;
use std::sync::Arc;

use host_di::{DiError, Injectable, ServiceCollection, ServiceProvider};

use crate::HostedService;

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
}

impl HostedServiceCollectionExt for ServiceCollection {
    fn add_hosted_service<T: HostedService + Injectable>(&mut self) -> &mut Self {
        // `T` is a singleton of its own, so that the container disposes it
        // and other services can reach it; the hosted-service list refers to it.
        if !self.contains::<T>() {
            self.add_singleton_self::<T>();
        }
        self.add_singleton_factory::<dyn HostedService, _>(|provider| {
            let service: Arc<dyn HostedService> = provider.get::<T>()?;
            Ok(service)
        })
        .depends_on::<T>();
        self
    }

    fn add_hosted_service_instance<T: HostedService>(&mut self, service: T) -> &mut Self {
        let service: Arc<dyn HostedService> = Arc::new(service);
        self.add_instance(service);
        self
    }
}

/// Every registered hosted service, in registration order. Registering the
/// same type twice with `add_hosted_service` hosts it once (as .NET's
/// `TryAddEnumerable`).
pub(crate) fn resolve_hosted_services(
    provider: &ServiceProvider,
) -> Result<Vec<Arc<dyn HostedService>>, DiError> {
    let mut services = provider.get_all::<dyn HostedService>()?;
    let mut seen = HashSet::with_capacity(services.len());
    services.retain(|service| seen.insert(Arc::as_ptr(service).cast::<()>()));
    Ok(services)
}
