//! Constructor injection: how a type is built from the provider
//! ([`Injectable`]), how it becomes a trait object ([`IntoService`]), and
//! which field types the container can fill ([`Resolvable`]).

use std::sync::Arc;

use crate::{Dependency, DiError, Disposer, ServiceProvider};

/// A type the container can construct: it declares what it needs (checked
/// at [`build`](crate::ServiceCollection::build)) and builds itself from a
/// [`ServiceProvider`].
///
/// Usually derived: `#[derive(Injectable)]` fills each field with
/// [`Resolvable::resolve`] (see the crate docs for the attributes).
///
/// # Examples
///
/// By hand, which is what the derive writes:
///
/// ```
/// use std::sync::Arc;
/// use host_di::{Dependency, DiError, Injectable, ServiceCollection, ServiceProvider};
///
/// struct Greeting(String);
///
/// struct Greeter {
///     greeting: Arc<Greeting>,
/// }
///
/// impl Injectable for Greeter {
///     fn dependencies() -> Vec<Dependency> {
///         vec![Dependency::required::<Greeting>()]
///     }
///
///     fn create(provider: &ServiceProvider) -> Result<Self, DiError> {
///         Ok(Self { greeting: provider.get::<Greeting>()? })
///     }
/// }
///
/// let mut services = ServiceCollection::new();
/// services.add_instance(Arc::new(Greeting("hello".into())));
/// services.add_transient_self::<Greeter>();
/// let provider = services.build()?;
/// assert_eq!(provider.get::<Greeter>()?.greeting.0, "hello");
/// # Ok::<(), DiError>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be constructed by the container: it does not implement `Injectable`",
    label = "not `Injectable`",
    note = "add `#[derive(Injectable)]` to `{Self}` (each field is injected by its type), \
            or implement `Injectable` by hand",
    note = "to register a value you have built, use `add_instance(Arc::new(value))`, \
            or `add_hosted_service_instance(value)` for a hosted service"
)]
pub trait Injectable: Sized + Send + Sync + 'static {
    /// Every service [`create`](Injectable::create) resolves, for the
    /// validation at [`build`](crate::ServiceCollection::build).
    fn dependencies() -> Vec<Dependency>;

    /// Builds the instance, resolving its dependencies from `provider`.
    fn create(provider: &ServiceProvider) -> Result<Self, DiError>;

    /// How the container disposes an instance it created: `None` (the
    /// default) for nothing; `#[injectable(dispose)]` and
    /// `#[injectable(async_dispose)]` return a [`Disposer`].
    fn disposer(this: &Arc<Self>) -> Option<Disposer> {
        let _ = this;
        None
    }
}

/// Turns an `Arc` of an implementation into an `Arc` of the service it is
/// registered as: `Arc<SystemClock>` into `Arc<dyn Clock>`.
///
/// Every type is its own service. Stable Rust cannot coerce to a trait
/// object generically, so each `(implementation, trait object)` pair needs
/// an impl: write `#[injectable(as = dyn Clock)]` on a derived type, or
/// [`impl_into_service!`](crate::impl_into_service) for any other.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be registered as `{S}`",
    label = "not registrable as `{S}`",
    note = "add `#[injectable(as = {S})]` beside `#[derive(Injectable)]` on `{Self}` \
            (and implement the trait), or write `host_di::impl_into_service!({Self} => {S});`"
)]
pub trait IntoService<S: ?Sized> {
    /// The same instance, as the service type.
    fn into_service(self: Arc<Self>) -> Arc<S>;
}

impl<T> IntoService<T> for T {
    fn into_service(self: Arc<Self>) -> Arc<T> {
        self
    }
}

/// Implements [`IntoService`] from a type to trait objects, for types that
/// do not use `#[derive(Injectable)]`'s `#[injectable(as = ..)]`.
///
/// # Examples
///
/// ```
/// use host_di::{impl_into_service, ServiceCollection};
///
/// trait Clock: Send + Sync {
///     fn now(&self) -> u64;
/// }
///
/// struct FixedClock;
///
/// impl Clock for FixedClock {
///     fn now(&self) -> u64 {
///         42
///     }
/// }
///
/// impl_into_service!(FixedClock => dyn Clock);
///
/// let mut services = ServiceCollection::new();
/// services.add_singleton_factory::<dyn Clock, _>(|_| {
///     Ok(host_di::IntoService::<dyn Clock>::into_service(std::sync::Arc::new(FixedClock)))
/// });
/// let provider = services.build()?;
/// assert_eq!(provider.get::<dyn Clock>()?.now(), 42);
/// # Ok::<(), host_di::DiError>(())
/// ```
#[macro_export]
macro_rules! impl_into_service {
    ($ty:ty => $($service:ty),+ $(,)?) => {
        $(
            impl $crate::IntoService<$service> for $ty {
                fn into_service(self: ::std::sync::Arc<Self>) -> ::std::sync::Arc<$service> {
                    self
                }
            }
        )+
    };
}

/// A field type the container can fill: `Arc<T>`, `Option<Arc<T>>`,
/// `Vec<Arc<T>>`, [`Options<T>`](crate::Options) and [`ServiceProvider`].
///
/// The extension point for other injectable handles: implement it for your
/// own type and `#[derive(Injectable)]` fills fields of that type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected by the container",
    label = "not injectable",
    note = "inject `Arc<T>`, `Option<Arc<T>>`, `Vec<Arc<T>>`, `Options<T>` or `ServiceProvider`, \
            or mark the field `#[inject(default)]`"
)]
pub trait Resolvable: Sized {
    /// What the validator must check, if anything.
    fn dependency() -> Option<Dependency>;

    /// Resolves the value from `provider`.
    fn resolve(provider: &ServiceProvider) -> Result<Self, DiError>;
}

/// A field type the container can fill from a keyed registration
/// (`#[inject(key = "..")]`): `Arc<T>`, `Option<Arc<T>>`, `Vec<Arc<T>>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected from a keyed registration",
    note = "keyed fields are `Arc<T>`, `Option<Arc<T>>` or `Vec<Arc<T>>`"
)]
pub trait ResolvableKeyed: Sized {
    /// What the validator must check.
    fn dependency(key: &str) -> Dependency;

    /// Resolves the value registered under `key`.
    fn resolve_keyed(provider: &ServiceProvider, key: &str) -> Result<Self, DiError>;
}

impl<T: ?Sized + Send + Sync + 'static> Resolvable for Arc<T> {
    fn dependency() -> Option<Dependency> {
        Some(Dependency::required::<T>())
    }

    fn resolve(provider: &ServiceProvider) -> Result<Self, DiError> {
        provider.get::<T>()
    }
}

impl<T: ?Sized + Send + Sync + 'static> Resolvable for Option<Arc<T>> {
    fn dependency() -> Option<Dependency> {
        Some(Dependency::optional::<T>())
    }

    fn resolve(provider: &ServiceProvider) -> Result<Self, DiError> {
        provider.get_optional::<T>()
    }
}

impl<T: ?Sized + Send + Sync + 'static> Resolvable for Vec<Arc<T>> {
    fn dependency() -> Option<Dependency> {
        Some(Dependency::all::<T>())
    }

    fn resolve(provider: &ServiceProvider) -> Result<Self, DiError> {
        provider.get_all::<T>()
    }
}

impl Resolvable for ServiceProvider {
    fn dependency() -> Option<Dependency> {
        None
    }

    /// The provider building the instance: the root one for singletons, the
    /// scope's for scoped and transient services resolved in a scope. A
    /// weak handle (see [`ServiceProvider`]): the instance does not keep its
    /// container or scope alive, and resolving through it once they are
    /// gone fails with [`DiErrorKind::Disposed`](crate::DiErrorKind::Disposed).
    fn resolve(provider: &ServiceProvider) -> Result<Self, DiError> {
        Ok(provider.clone())
    }
}

impl<T: ?Sized + Send + Sync + 'static> ResolvableKeyed for Arc<T> {
    fn dependency(key: &str) -> Dependency {
        Dependency::required::<T>().with_key(key)
    }

    fn resolve_keyed(provider: &ServiceProvider, key: &str) -> Result<Self, DiError> {
        provider.get_keyed::<T>(key)
    }
}

impl<T: ?Sized + Send + Sync + 'static> ResolvableKeyed for Option<Arc<T>> {
    fn dependency(key: &str) -> Dependency {
        Dependency::optional::<T>().with_key(key)
    }

    fn resolve_keyed(provider: &ServiceProvider, key: &str) -> Result<Self, DiError> {
        provider.get_keyed_optional::<T>(key)
    }
}

impl<T: ?Sized + Send + Sync + 'static> ResolvableKeyed for Vec<Arc<T>> {
    fn dependency(key: &str) -> Dependency {
        Dependency::all::<T>().with_key(key)
    }

    fn resolve_keyed(provider: &ServiceProvider, key: &str) -> Result<Self, DiError> {
        provider.get_all_keyed::<T>(key)
    }
}
