//! `ServiceCollection`: the registrations, consumed by `build()`.

use std::any::TypeId;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::descriptor::Erased;
use crate::hasher::BuildTypeIdHasher;
use crate::{
    DiError, Injectable, IntoService, Options, Registration, ServiceDescriptor, ServiceProvider,
};

/// The registrations of a container, as .NET's `IServiceCollection`;
/// [`build`](ServiceCollection::build) validates them and freezes them into
/// a [`ServiceProvider`].
///
/// A service type `S` is any `'static + Send + Sync` type, sized or not:
/// `dyn Clock` (with `trait Clock: Send + Sync`) as well as `Database`.
/// Registering `S` again adds a registration: [`get`](ServiceProvider::get)
/// returns the last, [`get_all`](ServiceProvider::get_all) all of them.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use host_di::{Injectable, ServiceCollection};
///
/// trait Clock: Send + Sync {
///     fn now(&self) -> u64;
/// }
///
/// #[derive(Injectable)]
/// #[injectable(as = dyn Clock)]
/// struct SystemClock;
///
/// impl Clock for SystemClock {
///     fn now(&self) -> u64 {
///         7
///     }
/// }
///
/// #[derive(Injectable)]
/// struct Worker {
///     clock: Arc<dyn Clock>,
/// }
///
/// let mut services = ServiceCollection::new();
/// services.add_singleton::<dyn Clock, SystemClock>();
/// services.add_transient_self::<Worker>();
/// let provider = services.build()?;
/// assert_eq!(provider.get::<Worker>()?.clock.now(), 7);
/// # Ok::<(), host_di::DiError>(())
/// ```
#[derive(Default)]
pub struct ServiceCollection {
    pub(crate) registrations: Vec<Erased>,
    /// The services with an unkeyed registration: `contains` and `try_add`
    /// (`add_hosted_service` asks once per service) look here before they
    /// scan, which made registering N distinct services quadratic.
    unkeyed: HashSet<TypeId, BuildTypeIdHasher>,
}

impl ServiceCollection {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a registration.
    pub fn add<S: ?Sized + Send + Sync + 'static>(
        &mut self,
        descriptor: ServiceDescriptor<S>,
    ) -> &mut Self {
        if descriptor.key().is_none() {
            self.unkeyed.insert(TypeId::of::<S>());
        }
        self.registrations.push(Erased::new(descriptor));
        self
    }

    /// Adds a registration only if `S` (with the descriptor's key) has none
    /// yet, as .NET's `TryAdd`; returns whether it was added.
    pub fn try_add<S: ?Sized + Send + Sync + 'static>(
        &mut self,
        descriptor: ServiceDescriptor<S>,
    ) -> bool {
        if self.position(TypeId::of::<S>(), descriptor.key()).is_some() {
            return false;
        }
        self.add(descriptor);
        true
    }

    /// Removes every registration of `S` (with the descriptor's key) and
    /// adds this one, as .NET's `Replace`, where the first one is replaced.
    pub fn replace<S: ?Sized + Send + Sync + 'static>(
        &mut self,
        descriptor: ServiceDescriptor<S>,
    ) -> &mut Self {
        let service = TypeId::of::<S>();
        let key = descriptor.meta.key.clone();
        match self.position(service, key.as_deref()) {
            Some(first) => {
                self.registrations[first] = Erased::new(descriptor);
                let mut index = 0;
                self.registrations.retain(|registration| {
                    let keep = index <= first
                        || !(registration.meta.service == service
                            && registration.meta.key.as_deref() == key.as_deref());
                    index += 1;
                    keep
                });
                if key.is_none() {
                    self.unkeyed.insert(service);
                }
                self
            }
            None => self.add(descriptor),
        }
    }

    /// Removes every unkeyed registration of `S`.
    pub fn remove_all<S: ?Sized + 'static>(&mut self) -> &mut Self {
        let service = TypeId::of::<S>();
        self.registrations
            .retain(|r| !(r.meta.service == service && r.meta.key.is_none()));
        self.unkeyed.remove(&service);
        self
    }

    /// Whether `S` has an unkeyed registration.
    pub fn contains<S: ?Sized + 'static>(&self) -> bool {
        self.position(TypeId::of::<S>(), None).is_some()
    }

    /// Whether `S` has a registration under `key`.
    pub fn contains_keyed<S: ?Sized + 'static>(&self, key: &str) -> bool {
        self.position(TypeId::of::<S>(), Some(key)).is_some()
    }

    /// The number of registrations.
    pub fn len(&self) -> usize {
        self.registrations.len()
    }

    /// Whether there is no registration.
    pub fn is_empty(&self) -> bool {
        self.registrations.is_empty()
    }

    fn position(&self, service: TypeId, key: Option<&str>) -> Option<usize> {
        if key.is_none() && !self.unkeyed.contains(&service) {
            return None;
        }
        self.registrations
            .iter()
            .position(|r| r.meta.service == service && r.meta.key.as_deref() == key)
    }

    /// Registers `S` as a singleton implemented by `I`, which the container
    /// constructs: `services.add_singleton::<dyn Clock, SystemClock>()`.
    ///
    /// For a trait object, `I` needs `#[injectable(as = dyn Clock)]` (or
    /// [`impl_into_service!`](crate::impl_into_service)).
    pub fn add_singleton<S, I>(&mut self) -> &mut Self
    where
        S: ?Sized + Send + Sync + 'static,
        I: Injectable + IntoService<S>,
    {
        self.add(ServiceDescriptor::<S>::singleton::<I>())
    }

    /// Registers `S` as a scoped service implemented by `I`.
    pub fn add_scoped<S, I>(&mut self) -> &mut Self
    where
        S: ?Sized + Send + Sync + 'static,
        I: Injectable + IntoService<S>,
    {
        self.add(ServiceDescriptor::<S>::scoped::<I>())
    }

    /// Registers `S` as a transient service implemented by `I`.
    pub fn add_transient<S, I>(&mut self) -> &mut Self
    where
        S: ?Sized + Send + Sync + 'static,
        I: Injectable + IntoService<S>,
    {
        self.add(ServiceDescriptor::<S>::transient::<I>())
    }

    /// Registers `T` as a singleton of its own type (.NET's
    /// `AddSingleton<T>()`).
    pub fn add_singleton_self<T: Injectable>(&mut self) -> &mut Self {
        self.add_singleton::<T, T>()
    }

    /// Registers `T` as a scoped service of its own type.
    pub fn add_scoped_self<T: Injectable>(&mut self) -> &mut Self {
        self.add_scoped::<T, T>()
    }

    /// Registers `T` as a transient service of its own type.
    pub fn add_transient_self<T: Injectable>(&mut self) -> &mut Self {
        self.add_transient::<T, T>()
    }

    /// Registers `S` under `key` as a singleton implemented by `I`.
    pub fn add_keyed_singleton<S, I>(&mut self, key: impl Into<Arc<str>>) -> &mut Self
    where
        S: ?Sized + Send + Sync + 'static,
        I: Injectable + IntoService<S>,
    {
        self.add(ServiceDescriptor::<S>::singleton::<I>().with_key(key))
    }

    /// Registers `S` under `key` as a scoped service implemented by `I`.
    pub fn add_keyed_scoped<S, I>(&mut self, key: impl Into<Arc<str>>) -> &mut Self
    where
        S: ?Sized + Send + Sync + 'static,
        I: Injectable + IntoService<S>,
    {
        self.add(ServiceDescriptor::<S>::scoped::<I>().with_key(key))
    }

    /// Registers `S` under `key` as a transient service implemented by `I`.
    pub fn add_keyed_transient<S, I>(&mut self, key: impl Into<Arc<str>>) -> &mut Self
    where
        S: ?Sized + Send + Sync + 'static,
        I: Injectable + IntoService<S>,
    {
        self.add(ServiceDescriptor::<S>::transient::<I>().with_key(key))
    }

    /// Registers `S` as a singleton made by `factory`. The returned
    /// [`Registration`] declares what the factory resolves
    /// ([`depends_on`](Registration::depends_on)), a key, or disposal.
    pub fn add_singleton_factory<S, F>(&mut self, factory: F) -> Registration<'_, S>
    where
        S: ?Sized + Send + Sync + 'static,
        F: Fn(&ServiceProvider) -> Result<Arc<S>, DiError> + Send + Sync + 'static,
    {
        Registration::new(self, ServiceDescriptor::singleton_factory(factory))
    }

    /// Registers `S` as a scoped service made by `factory`.
    pub fn add_scoped_factory<S, F>(&mut self, factory: F) -> Registration<'_, S>
    where
        S: ?Sized + Send + Sync + 'static,
        F: Fn(&ServiceProvider) -> Result<Arc<S>, DiError> + Send + Sync + 'static,
    {
        Registration::new(self, ServiceDescriptor::scoped_factory(factory))
    }

    /// Registers `S` as a transient service made by `factory`.
    pub fn add_transient_factory<S, F>(&mut self, factory: F) -> Registration<'_, S>
    where
        S: ?Sized + Send + Sync + 'static,
        F: Fn(&ServiceProvider) -> Result<Arc<S>, DiError> + Send + Sync + 'static,
    {
        Registration::new(self, ServiceDescriptor::transient_factory(factory))
    }

    /// Registers an instance you built as a singleton of `S`; for a trait
    /// object, coerce first: `add_instance::<dyn Clock>(Arc::new(clock))`.
    /// Not disposed by the container unless the [`Registration`] says
    /// [`disposable`](Registration::disposable).
    pub fn add_instance<S: ?Sized + Send + Sync + 'static>(
        &mut self,
        instance: Arc<S>,
    ) -> Registration<'_, S> {
        Registration::new(self, ServiceDescriptor::instance(instance))
    }

    /// Registers a settings value, injected as [`Options<T>`].
    pub fn add_options<T: Send + Sync + 'static>(&mut self, value: T) -> &mut Self {
        self.add(ServiceDescriptor::instance(Arc::new(Options::new(value))))
    }

    /// Validates the registrations and freezes them into the root
    /// [`ServiceProvider`].
    ///
    /// Validation is always on: every declared dependency is registered,
    /// there is no cycle, and no singleton needs a scoped service, directly
    /// or through transient services. If `build` succeeds, every service
    /// whose dependencies are declared resolves (unless its own code fails).
    ///
    /// # Errors
    ///
    /// The first problem found, naming the services and the chain of
    /// dependencies; see [`DiErrorKind`](crate::DiErrorKind).
    pub fn build(self) -> Result<ServiceProvider, DiError> {
        ServiceProvider::build(self)
    }
}

impl fmt::Debug for ServiceCollection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for registration in &self.registrations {
            let meta = &registration.meta;
            list.entry(&format_args!(
                "{} {}{}{}",
                meta.lifetime,
                meta.service_name,
                meta.key
                    .as_deref()
                    .map(|key| format!(" (key {key:?})"))
                    .unwrap_or_default(),
                meta.implementation
                    .map(|implementation| format!(" <- {implementation}"))
                    .unwrap_or_default(),
            ));
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    struct A;
    struct B;

    /// What `contains` answered before the index: a scan of every registration.
    fn scanned<S: ?Sized + 'static>(services: &ServiceCollection, key: Option<&str>) -> bool {
        services
            .registrations
            .iter()
            .any(|r| r.meta.service == TypeId::of::<S>() && r.meta.key.as_deref() == key)
    }

    fn agree(services: &ServiceCollection) {
        assert_eq!(services.contains::<A>(), scanned::<A>(services, None));
        assert_eq!(services.contains::<B>(), scanned::<B>(services, None));
        assert_eq!(
            services.contains_keyed::<A>("k"),
            scanned::<A>(services, Some("k"))
        );
    }

    #[test]
    fn the_index_agrees_with_the_registrations_through_every_change() {
        let mut services = ServiceCollection::new();
        agree(&services);
        services.add(ServiceDescriptor::instance(Arc::new(A)).with_key("k"));
        agree(&services);
        assert!(
            !services.contains::<A>(),
            "a keyed registration is not an unkeyed one"
        );
        assert!(services.try_add(ServiceDescriptor::instance(Arc::new(A))));
        assert!(!services.try_add(ServiceDescriptor::instance(Arc::new(A))));
        agree(&services);
        services.add_instance(Arc::new(A));
        services.replace(ServiceDescriptor::instance(Arc::new(A)));
        agree(&services);
        assert_eq!(services.len(), 2, "one keyed A and one unkeyed A");
        services.remove_all::<A>();
        agree(&services);
        assert!(!services.contains::<A>());
        assert!(
            services.contains_keyed::<A>("k"),
            "remove_all leaves keyed ones"
        );
        services.replace(ServiceDescriptor::instance(Arc::new(B)));
        agree(&services);
        assert!(services.contains::<B>());
    }
}
