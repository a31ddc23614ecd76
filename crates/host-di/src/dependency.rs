//! What a service needs, declared to the validator; and the three lifetimes.

use std::any::{TypeId, type_name};
use std::fmt;
use std::sync::Arc;

use crate::names::{Link, Shape};

/// How long a service instance lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifetime {
    /// One instance for the container, created on first use, disposed by
    /// [`ServiceProvider::dispose`](crate::ServiceProvider::dispose).
    Singleton,
    /// One instance per [`Scope`](crate::Scope), disposed when the scope
    /// closes. Cannot be resolved from the root provider.
    Scoped,
    /// A new instance on every resolve.
    Transient,
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lifetime::Singleton => "singleton",
            Lifetime::Scoped => "scoped",
            Lifetime::Transient => "transient",
        })
    }
}

/// How a dependency is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DependencyKind {
    /// Must be registered: `Arc<T>` (or a value such as `Options<T>`).
    Required,
    /// Used if registered: `Option<Arc<T>>`.
    Optional,
    /// Every registration, possibly none: `Vec<Arc<T>>`.
    All,
}

/// A service that another service needs, declared so that
/// [`ServiceCollection::build`](crate::ServiceCollection::build) can check it
/// is registered, not part of a cycle, and not captured by a singleton.
///
/// [`Injectable::dependencies`](crate::Injectable::dependencies) returns one
/// per field; factories declare theirs with
/// [`Registration::depends_on`](crate::Registration::depends_on).
///
/// # Examples
///
/// ```
/// use host_di::{Dependency, DependencyKind};
///
/// trait Clock: Send + Sync {}
///
/// let dep = Dependency::required::<dyn Clock>().with_key("utc");
/// assert_eq!(dep.kind(), DependencyKind::Required);
/// assert_eq!(dep.key(), Some("utc"));
/// assert!(dep.to_string().starts_with("Arc<dyn "));
/// assert!(dep.to_string().ends_with("Clock> (key \"utc\")"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Dependency {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) key: Option<Arc<str>>,
    pub(crate) kind: DependencyKind,
    pub(crate) shape: Shape,
}

impl Dependency {
    fn new<T: ?Sized + 'static>(kind: DependencyKind, shape: Shape) -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            type_name: type_name::<T>(),
            key: None,
            kind,
            shape,
        }
    }

    /// `Arc<T>`: `T` must be registered.
    pub fn required<T: ?Sized + 'static>() -> Self {
        Self::new::<T>(DependencyKind::Required, Shape::Arc)
    }

    /// `Option<Arc<T>>`: `T` is used if registered.
    pub fn optional<T: ?Sized + 'static>() -> Self {
        Self::new::<T>(DependencyKind::Optional, Shape::Option)
    }

    /// `Vec<Arc<T>>`: every registration of `T`, possibly none.
    pub fn all<T: ?Sized + 'static>() -> Self {
        Self::new::<T>(DependencyKind::All, Shape::Vec)
    }

    /// A required service that is injected as a value rather than an `Arc`,
    /// such as [`Options<T>`](crate::Options); shown as `T` in messages.
    pub fn required_value<T: ?Sized + 'static>() -> Self {
        Self::new::<T>(DependencyKind::Required, Shape::Value)
    }

    /// The same dependency, on the registration with this key.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// How the dependency is resolved.
    pub fn kind(&self) -> DependencyKind {
        self.kind
    }

    /// The type name of the service needed (`dyn app::Clock`).
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The `TypeId` of the service needed.
    pub fn type_id(&self) -> TypeId {
        self.type_id
    }

    /// The key, for a keyed service.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    pub(crate) fn link(&self) -> Link {
        Link::new(self.type_name, self.key.clone(), self.shape)
    }
}

impl fmt::Debug for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dependency")
            .field("type_name", &self.type_name)
            .field("key", &self.key)
            .field("kind", &self.kind)
            .finish()
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.link().as_field().fmt(f)
    }
}
