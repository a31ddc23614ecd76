//! `Options<T>`: a typed settings value, injected by value.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::{Dependency, DiError, Resolvable, ServiceProvider};

/// A typed settings value shared by the services that inject it, as .NET's
/// `IOptions<T>`: cheap to clone, read through `Deref`.
///
/// Register the value with
/// [`ServiceCollection::add_options`](crate::ServiceCollection::add_options)
/// (it is the service `Options<T>`); a field `options: Options<T>` of a
/// derived [`Injectable`](crate::Injectable) receives it. Loading it from
/// configuration is the configuration crate's part: it registers the same
/// `Options<T>` service.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use host_di::{Injectable, Options, ServiceCollection};
///
/// struct WorkerOptions {
///     interval: Duration,
/// }
///
/// #[derive(Injectable)]
/// struct Worker {
///     options: Options<WorkerOptions>,
/// }
///
/// let mut services = ServiceCollection::new();
/// services.add_options(WorkerOptions { interval: Duration::from_secs(5) });
/// services.add_singleton_self::<Worker>();
/// let provider = services.build()?;
/// assert_eq!(provider.get::<Worker>()?.options.interval, Duration::from_secs(5));
/// # Ok::<(), host_di::DiError>(())
/// ```
pub struct Options<T>(Arc<T>);

impl<T> Options<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(Arc::new(value))
    }

    /// The value.
    pub fn value(&self) -> &T {
        &self.0
    }
}

impl<T> From<Arc<T>> for Options<T> {
    /// Wraps a shared value (the configuration binds values as `Arc<T>`).
    fn from(value: Arc<T>) -> Self {
        Self(value)
    }
}

impl<T> Clone for Options<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Deref for Options<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for Options<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Options").field(&self.0).finish()
    }
}

impl<T: Send + Sync + 'static> Resolvable for Options<T> {
    fn dependency() -> Option<Dependency> {
        Some(Dependency::required_value::<Options<T>>())
    }

    fn resolve(provider: &ServiceProvider) -> Result<Self, DiError> {
        provider
            .get::<Options<T>>()
            .map(|options| (*options).clone())
    }
}
