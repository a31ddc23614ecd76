//! One registration before `build()`: a service type, a lifetime, a key, a
//! way to make the instance, and the dependencies declared for validation.

use std::any::{Any, TypeId, type_name};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use crate::creation::CreationLock;
use crate::root::{AnySlot, Slot};
use crate::{
    AsyncDispose, Dependency, DiError, Dispose, Disposer, Injectable, IntoService, Lifetime,
    ServiceCollection, ServiceProvider,
};

/// How the container makes an instance of `S`; the factory sets the
/// disposer, if any, in the `Option` it is given (kept out of the return
/// value, which stays two registers wide on the hot path).
pub(crate) type FactoryFn<S> =
    Box<dyn Fn(&ServiceProvider, &mut Option<Disposer>) -> Result<Arc<S>, DiError> + Send + Sync>;

pub(crate) enum Source<S: ?Sized> {
    Factory(FactoryFn<S>),
    Instance(Arc<S>, Option<Disposer>),
}

/// What every registration has, whatever its service type.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub(crate) service: TypeId,
    pub(crate) service_name: &'static str,
    pub(crate) key: Option<Arc<str>>,
    pub(crate) lifetime: Lifetime,
    /// The constructed type, when the container constructs it.
    pub(crate) implementation: Option<&'static str>,
    /// `None` for a factory that declared nothing: the validator cannot see
    /// into it, and the resolver guards it.
    pub(crate) dependencies: Option<Vec<Dependency>>,
    /// The registration hands out another registration's instance (see
    /// [`ServiceDescriptor::forwards_to`]): chains in errors leave it out.
    pub(crate) forwards: bool,
}

impl Meta {
    /// The name of the type whose constructor needs things.
    pub(crate) fn dependent_name(&self) -> &'static str {
        self.implementation.unwrap_or(self.service_name)
    }
}

/// A registration, built before it is added to a [`ServiceCollection`]
/// with [`add`](ServiceCollection::add), [`try_add`](ServiceCollection::try_add)
/// or [`replace`](ServiceCollection::replace), as .NET's `ServiceDescriptor`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use host_di::{ServiceCollection, ServiceDescriptor};
///
/// struct Greeting(&'static str);
///
/// let mut services = ServiceCollection::new();
/// services.add(ServiceDescriptor::instance(Arc::new(Greeting("hello"))));
/// // A library's default, kept because the application registered one:
/// let added = services.try_add(ServiceDescriptor::instance(Arc::new(Greeting("hi"))));
/// assert!(!added);
/// let provider = services.build()?;
/// assert_eq!(provider.get::<Greeting>()?.0, "hello");
/// # Ok::<(), host_di::DiError>(())
/// ```
#[must_use = "a descriptor does nothing until it is added to a ServiceCollection"]
pub struct ServiceDescriptor<S: ?Sized> {
    pub(crate) meta: Meta,
    pub(crate) source: Source<S>,
}

impl<S: ?Sized + Send + Sync + 'static> ServiceDescriptor<S> {
    fn with_source(
        lifetime: Lifetime,
        implementation: Option<&'static str>,
        dependencies: Option<Vec<Dependency>>,
        source: Source<S>,
    ) -> Self {
        Self {
            meta: Meta {
                service: TypeId::of::<S>(),
                service_name: type_name::<S>(),
                key: None,
                lifetime,
                implementation,
                dependencies,
                forwards: false,
            },
            source,
        }
    }

    fn constructed<I: Injectable + IntoService<S>>(lifetime: Lifetime) -> Self {
        let factory: FactoryFn<S> = Box::new(|provider, disposer| {
            let instance = Arc::new(I::create(provider)?);
            *disposer = I::disposer(&instance);
            Ok(instance.into_service())
        });
        Self::with_source(
            lifetime,
            Some(type_name::<I>()),
            Some(I::dependencies()),
            Source::Factory(factory),
        )
    }

    fn factory<F>(lifetime: Lifetime, factory: F) -> Self
    where
        F: Fn(&ServiceProvider) -> Result<Arc<S>, DiError> + Send + Sync + 'static,
    {
        let factory: FactoryFn<S> = Box::new(move |provider, _| factory(provider));
        Self::with_source(lifetime, None, None, Source::Factory(factory))
    }

    /// `S` as a singleton, implemented by `I`, which the container constructs.
    pub fn singleton<I: Injectable + IntoService<S>>() -> Self {
        Self::constructed::<I>(Lifetime::Singleton)
    }

    /// `S` as a scoped service, implemented by `I`.
    pub fn scoped<I: Injectable + IntoService<S>>() -> Self {
        Self::constructed::<I>(Lifetime::Scoped)
    }

    /// `S` as a transient service, implemented by `I`.
    pub fn transient<I: Injectable + IntoService<S>>() -> Self {
        Self::constructed::<I>(Lifetime::Transient)
    }

    /// `S` as a singleton made by `factory`. Declare what the factory
    /// resolves with [`depends_on`](Self::depends_on) so that `build()`
    /// checks it.
    pub fn singleton_factory<F>(factory: F) -> Self
    where
        F: Fn(&ServiceProvider) -> Result<Arc<S>, DiError> + Send + Sync + 'static,
    {
        Self::factory(Lifetime::Singleton, factory)
    }

    /// `S` as a scoped service made by `factory`.
    pub fn scoped_factory<F>(factory: F) -> Self
    where
        F: Fn(&ServiceProvider) -> Result<Arc<S>, DiError> + Send + Sync + 'static,
    {
        Self::factory(Lifetime::Scoped, factory)
    }

    /// `S` as a transient service made by `factory`.
    pub fn transient_factory<F>(factory: F) -> Self
    where
        F: Fn(&ServiceProvider) -> Result<Arc<S>, DiError> + Send + Sync + 'static,
    {
        Self::factory(Lifetime::Transient, factory)
    }

    /// `S` as a singleton you built. The container does not dispose it
    /// unless you ask with [`disposable`](Self::disposable).
    pub fn instance(instance: Arc<S>) -> Self {
        Self::with_source(
            Lifetime::Singleton,
            None,
            Some(Vec::new()),
            Source::Instance(instance, None),
        )
    }

    /// Registers under `key`: resolved with
    /// [`get_keyed`](ServiceProvider::get_keyed) or `#[inject(key = "..")]`.
    pub fn with_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.meta.key = Some(key.into());
        self
    }

    /// Declares that the factory resolves `T` (as `Arc<T>`), for validation.
    pub fn depends_on<T: ?Sized + 'static>(self) -> Self {
        self.depends_on_all([Dependency::required::<T>()])
    }

    /// Declares that the factory resolves `T` registered under `key`.
    pub fn depends_on_keyed<T: ?Sized + 'static>(self, key: impl Into<Arc<str>>) -> Self {
        self.depends_on_all([Dependency::required::<T>().with_key(key)])
    }

    /// Declares that the factory hands out the instance of `T` (as `Arc<T>`,
    /// resolved from the provider) as this service: as
    /// [`depends_on`](Self::depends_on), and errors name `T` rather than
    /// this registration's service type, which the user never wrote. A
    /// missing dependency of `app::Worker` registered as `dyn Trait` this
    /// way reads `needed by: app::Worker -> Arc<app::Clock>`, not
    /// `dyn Trait -> Arc<app::Worker> -> Arc<app::Clock>`.
    pub fn forwards_to<T: ?Sized + 'static>(mut self) -> Self {
        self.meta.forwards = true;
        self.depends_on::<T>()
    }

    /// Declares all of these dependencies, e.g. another type's
    /// [`Injectable::dependencies`].
    pub fn depends_on_all(mut self, dependencies: impl IntoIterator<Item = Dependency>) -> Self {
        self.meta
            .dependencies
            .get_or_insert_with(Vec::new)
            .extend(dependencies);
        self
    }

    /// The container calls [`Dispose::dispose`] on the instances it gets
    /// from this registration, when their scope (or the root) is disposed.
    pub fn disposable(self) -> Self
    where
        S: Dispose,
    {
        self.with_disposer(|instance| Disposer::sync(instance))
    }

    /// The container awaits [`AsyncDispose::dispose`] on the instances it
    /// gets from this registration when their scope (or the root) is
    /// disposed.
    pub fn async_disposable(self) -> Self
    where
        S: AsyncDispose,
    {
        self.with_disposer(|instance| Disposer::asynchronous(instance))
    }

    fn with_disposer(mut self, disposer: fn(Arc<S>) -> Disposer) -> Self {
        self.source = match self.source {
            Source::Factory(factory) => Source::Factory(Box::new(move |provider, dispose| {
                let instance = factory(provider, dispose)?;
                *dispose = Some(disposer(Arc::clone(&instance)));
                Ok(instance)
            })),
            Source::Instance(instance, _) => {
                let dispose = disposer(Arc::clone(&instance));
                Source::Instance(instance, Some(dispose))
            }
        };
        self
    }

    /// The lifetime.
    pub fn lifetime(&self) -> Lifetime {
        self.meta.lifetime
    }

    /// The key, for a keyed registration.
    pub fn key(&self) -> Option<&str> {
        self.meta.key.as_deref()
    }

    /// The service's type name.
    pub fn service_name(&self) -> &'static str {
        self.meta.service_name
    }
}

impl<S: ?Sized> fmt::Debug for ServiceDescriptor<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceDescriptor")
            .field("service", &self.meta.service_name)
            .field("key", &self.meta.key)
            .field("lifetime", &self.meta.lifetime)
            .field("implementation", &self.meta.implementation)
            .field("dependencies", &self.meta.dependencies)
            .finish()
    }
}

/// Turns a boxed `Source<S>` into its resolution slot: `freeze::<S>`.
type FreezeFn = fn(Box<dyn Any + Send + Sync>, Lifetime, u32, usize) -> (AnySlot, Option<Disposer>);

/// A registration whose service type is erased, as the collection keeps it.
pub(crate) struct Erased {
    pub(crate) meta: Meta,
    source: Box<dyn Any + Send + Sync>,
    freeze: FreezeFn,
}

impl Erased {
    pub(crate) fn new<S: ?Sized + Send + Sync + 'static>(descriptor: ServiceDescriptor<S>) -> Self {
        Self {
            meta: descriptor.meta,
            source: Box::new(descriptor.source),
            freeze: freeze::<S>,
        }
    }

    /// The registration's resolution slot, and the disposer of an instance.
    pub(crate) fn freeze(
        self,
        index: u32,
        scoped_slot: usize,
    ) -> (Meta, AnySlot, Option<Disposer>) {
        let (slot, disposer) = (self.freeze)(self.source, self.meta.lifetime, index, scoped_slot);
        (self.meta, slot, disposer)
    }
}

fn freeze<S: ?Sized + Send + Sync + 'static>(
    source: Box<dyn Any + Send + Sync>,
    lifetime: Lifetime,
    index: u32,
    scoped_slot: usize,
) -> (AnySlot, Option<Disposer>) {
    let mut slot = Slot::<S> {
        lifetime,
        index,
        scoped_slot,
        singleton: OnceLock::new(),
        creating: CreationLock::default(),
        factory: None,
    };
    let mut disposer = None;
    // `Erased::new` stored a `Source<S>`: the downcast cannot fail.
    if let Ok(source) = source.downcast::<Source<S>>() {
        match *source {
            Source::Factory(factory) => slot.factory = Some(factory),
            Source::Instance(instance, dispose) => {
                let _ = slot.singleton.set(instance);
                disposer = dispose;
            }
        }
    }
    (Arc::new(slot), disposer)
}

/// A registration being added, returned by the `add_*_factory` and
/// [`add_instance`](ServiceCollection::add_instance) methods to declare
/// dependencies, a key, or disposal. It is added to the collection when
/// dropped, at the end of the statement.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use host_di::{Dispose, ServiceCollection};
///
/// struct Config(&'static str);
/// struct Pool(String);
///
/// impl Dispose for Pool {
///     fn dispose(&self) {}
/// }
///
/// let mut services = ServiceCollection::new();
/// services.add_instance(Arc::new(Config("postgres://db")));
/// services
///     .add_singleton_factory::<Pool, _>(|provider| {
///         Ok(Arc::new(Pool(provider.get::<Config>()?.0.to_owned())))
///     })
///     .depends_on::<Config>()
///     .disposable();
/// let provider = services.build()?;
/// assert_eq!(provider.get::<Pool>()?.0, "postgres://db");
/// # Ok::<(), host_di::DiError>(())
/// ```
pub struct Registration<'a, S: ?Sized + Send + Sync + 'static> {
    services: &'a mut ServiceCollection,
    descriptor: Option<ServiceDescriptor<S>>,
    _service: PhantomData<fn() -> Box<S>>,
}

impl<'a, S: ?Sized + Send + Sync + 'static> Registration<'a, S> {
    pub(crate) fn new(
        services: &'a mut ServiceCollection,
        descriptor: ServiceDescriptor<S>,
    ) -> Self {
        Self {
            services,
            descriptor: Some(descriptor),
            _service: PhantomData,
        }
    }

    fn map(mut self, f: impl FnOnce(ServiceDescriptor<S>) -> ServiceDescriptor<S>) -> Self {
        self.descriptor = self.descriptor.take().map(f);
        self
    }

    /// See [`ServiceDescriptor::with_key`].
    pub fn with_key(self, key: impl Into<Arc<str>>) -> Self {
        self.map(|d| d.with_key(key))
    }

    /// See [`ServiceDescriptor::depends_on`].
    pub fn depends_on<T: ?Sized + 'static>(self) -> Self {
        self.map(|d| d.depends_on::<T>())
    }

    /// See [`ServiceDescriptor::depends_on_keyed`].
    pub fn depends_on_keyed<T: ?Sized + 'static>(self, key: impl Into<Arc<str>>) -> Self {
        self.map(|d| d.depends_on_keyed::<T>(key))
    }

    /// See [`ServiceDescriptor::depends_on_all`].
    pub fn depends_on_all(self, dependencies: impl IntoIterator<Item = Dependency>) -> Self {
        self.map(|d| d.depends_on_all(dependencies))
    }

    /// See [`ServiceDescriptor::forwards_to`].
    pub fn forwards_to<T: ?Sized + 'static>(self) -> Self {
        self.map(ServiceDescriptor::forwards_to::<T>)
    }

    /// See [`ServiceDescriptor::disposable`].
    pub fn disposable(self) -> Self
    where
        S: Dispose,
    {
        self.map(ServiceDescriptor::disposable)
    }

    /// See [`ServiceDescriptor::async_disposable`].
    pub fn async_disposable(self) -> Self
    where
        S: AsyncDispose,
    {
        self.map(ServiceDescriptor::async_disposable)
    }
}

impl<S: ?Sized + Send + Sync + 'static> Drop for Registration<'_, S> {
    fn drop(&mut self) {
        if let Some(descriptor) = self.descriptor.take() {
            self.services.add(descriptor);
        }
    }
}

impl<S: ?Sized + Send + Sync + 'static> fmt::Debug for Registration<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Registration")
            .field(&self.descriptor)
            .finish()
    }
}
