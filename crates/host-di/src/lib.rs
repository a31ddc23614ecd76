//! A type-map service container, as .NET's `Microsoft.Extensions.DependencyInjection`:
//! register services in a [`ServiceCollection`], [`build`](ServiceCollection::build)
//! it (which validates every registration) into a [`ServiceProvider`], and
//! resolve services as `Arc<S>`, constructed with their dependencies injected.
//!
//! ```
//! use std::sync::Arc;
//! use host_di::{Injectable, ServiceCollection};
//!
//! trait Clock: Send + Sync {
//!     fn now(&self) -> u64;
//! }
//!
//! #[derive(Injectable)]
//! #[injectable(as = dyn Clock)] // lets `SystemClock` be registered as `dyn Clock`
//! struct SystemClock;
//!
//! impl Clock for SystemClock {
//!     fn now(&self) -> u64 {
//!         1_700_000_000
//!     }
//! }
//!
//! #[derive(Injectable)]
//! struct Worker {
//!     clock: Arc<dyn Clock>, // injected
//! }
//!
//! let mut services = ServiceCollection::new();
//! services.add_singleton::<dyn Clock, SystemClock>();
//! services.add_singleton_self::<Worker>();
//! let provider = services.build()?;
//! assert_eq!(provider.get::<Worker>()?.clock.now(), 1_700_000_000);
//! # Ok::<(), host_di::DiError>(())
//! ```
//!
//! # Lifetimes
//!
//! | [`Lifetime`] | instances | disposed |
//! |---|---|---|
//! | `Singleton` | one per container, created on first resolve (exactly once, whatever the concurrency) | by [`ServiceProvider::dispose`] on the root |
//! | `Scoped` | one per [`Scope`]; an error from the root provider | when the scope is closed or dropped |
//! | `Transient` | one per resolve | with the scope that resolved it (or the root) |
//!
//! # Registering
//!
//! - Constructed by the container: [`add_singleton::<S, I>`](ServiceCollection::add_singleton),
//!   `add_scoped`, `add_transient`; `add_*_self::<T>` for `T` as itself;
//!   `add_keyed_*` under a key. `I` implements [`Injectable`], usually derived.
//! - A factory closure: [`add_singleton_factory`](ServiceCollection::add_singleton_factory)
//!   and the others return a [`Registration`] to declare the factory's
//!   dependencies (for validation), a key, or disposal.
//! - An instance: [`add_instance`](ServiceCollection::add_instance); settings: [`add_options`](ServiceCollection::add_options).
//! - [`ServiceDescriptor`] with [`add`](ServiceCollection::add),
//!   [`try_add`](ServiceCollection::try_add) (only if absent) and
//!   [`replace`](ServiceCollection::replace).
//!
//! # `#[derive(Injectable)]`
//!
//! Each field is resolved by its type ([`Resolvable`]): `Arc<T>` (required),
//! `Option<Arc<T>>` (if registered), `Vec<Arc<T>>` (every registration),
//! [`Options<T>`], [`ServiceProvider`]. Attributes:
//!
//! | attribute | on | effect |
//! |---|---|---|
//! | `#[injectable(as = dyn Trait)]` | the type | implements [`IntoService<dyn Trait>`](IntoService), so the type registers as `dyn Trait`; repeat for several traits |
//! | `#[injectable(dispose)]` | the type | the container calls [`Dispose::dispose`] |
//! | `#[injectable(async_dispose)]` | the type | the container awaits [`AsyncDispose::dispose`] |
//! | `#[injectable(crate = path)]` | the type | where host-di is, if not `::host_di` (or `::host::di`, found automatically) |
//! | `#[inject(key = "name")]` | a field | resolves the registration under that key ([`ResolvableKeyed`]) |
//! | `#[inject(default)]` | a field | `Default::default()`, not injected |
//!
//! # Validation
//!
//! [`ServiceCollection::build`] fails, naming the chain of dependencies, if
//! a declared dependency is not registered, if services form a cycle, or if
//! a singleton needs a scoped service (directly or through transients).
//! Factories that do not declare their dependencies are checked when they
//! run: a cycle through them is an error with the chain, never a deadlock or
//! a stack overflow. See `docs/dependency-injection.md` for the messages.
//!
//! # Concurrency and memory
//!
//! Creation is exclusive per registration (per singleton, and per scoped
//! registration in each scope): a slow constructor holds up only the
//! threads that want that instance, and threads waiting on each other's
//! creations get a cycle error rather than a deadlock. The provider given
//! to a constructor clones to a weak handle (see [`ServiceProvider`]), so a
//! service keeping its provider does not keep its scope or container alive.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `derive` | yes | `#[derive(Injectable)]`, from `host-di-macros` |
//!
//! # Dependencies
//!
//! | crate | why |
//! |---|---|
//! | `host-di-macros` | the derive (feature `derive`) |
//! | `async-trait` | [`AsyncDispose`] is called through a trait object |
//! | `parking_lot` | the disposal lists' mutexes; the mutex and condvar of threads waiting for another's creation |
//! | `thiserror` | [`DiError`] |
//! | `tracing` | the warning for async disposals a dropped scope skipped, the error for a panicking disposer |

#![doc(test(attr(deny(warnings))))]

// The derive names `::host_di`, which must also work inside this crate's
// own tests and doctests.
extern crate self as host_di;

mod collection;
mod creation;
mod dependency;
mod descriptor;
mod dispose;
mod error;
mod hasher;
mod injectable;
mod names;
mod options;
mod provider;
mod resolution;
mod root;
mod scope;
mod validate;

pub use collection::ServiceCollection;
pub use dependency::{Dependency, DependencyKind, Lifetime};
pub use descriptor::{Registration, ServiceDescriptor};
pub use dispose::{AsyncDispose, Dispose, DisposeReport, Disposer};
pub use error::{DiError, DiErrorKind};
pub use injectable::{Injectable, IntoService, Resolvable, ResolvableKeyed};
pub use options::Options;
pub use provider::ServiceProvider;
pub use scope::Scope;

/// `#[derive(Injectable)]`: see the crate docs for the attributes.
#[cfg(feature = "derive")]
pub use host_di_macros::Injectable;
