//! Disposal: the container calls `dispose` on the instances it created, in
//! reverse creation order, when their scope (or the root provider) ends.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

/// Synchronous disposal, called once by the container when the instance's
/// scope (or, for a singleton, the root provider) is disposed.
///
/// Opt in with `#[injectable(dispose)]` on a derived type, by returning a
/// [`Disposer`] from [`Injectable::disposer`](crate::Injectable::disposer),
/// or with [`Registration::disposable`](crate::Registration::disposable).
///
/// # Examples
///
/// ```
/// use host_di::{Dispose, Injectable, ServiceCollection};
///
/// #[derive(Injectable)]
/// #[injectable(dispose)]
/// struct Connection;
///
/// impl Dispose for Connection {
///     fn dispose(&self) {
///         println!("connection closed");
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_di::DiError> {
/// let mut services = ServiceCollection::new();
/// services.add_scoped_self::<Connection>();
/// let provider = services.build()?;
/// let scope = provider.create_scope();
/// scope.get::<Connection>()?;
/// scope.close().await; // prints "connection closed"
/// # Ok(()) }
/// ```
pub trait Dispose: Send + Sync {
    /// Releases what the instance holds.
    fn dispose(&self);
}

/// Asynchronous disposal, awaited by the container when the instance's scope
/// is closed (or the root provider disposed).
///
/// A [`Scope`](crate::Scope) dropped without [`close`](crate::Scope::close)
/// cannot await it: it logs a warning naming the service instead.
#[async_trait]
pub trait AsyncDispose: Send + Sync {
    /// Releases what the instance holds.
    async fn dispose(&self);
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

enum Action {
    Sync(Box<dyn FnOnce() + Send + Sync>),
    Async(Box<dyn FnOnce() -> BoxFuture + Send + Sync>),
}

/// A pending disposal of one instance: what the container keeps, per
/// created instance that opted in, until its scope ends.
pub struct Disposer {
    name: &'static str,
    action: Action,
}

impl Disposer {
    /// Will call [`Dispose::dispose`] on `instance`.
    pub fn sync<T: ?Sized + Dispose + 'static>(instance: Arc<T>) -> Self {
        Self {
            name: std::any::type_name::<T>(),
            action: Action::Sync(Box::new(move || instance.dispose())),
        }
    }

    /// Will await [`AsyncDispose::dispose`] on `instance`.
    pub fn asynchronous<T: ?Sized + AsyncDispose + 'static>(instance: Arc<T>) -> Self {
        Self {
            name: std::any::type_name::<T>(),
            action: Action::Async(Box::new(move || {
                Box::pin(async move { AsyncDispose::dispose(&*instance).await })
            })),
        }
    }

    /// The type name of the instance it disposes.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether disposal must be awaited.
    pub fn is_async(&self) -> bool {
        matches!(self.action, Action::Async(_))
    }
}

impl fmt::Debug for Disposer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disposer")
            .field("name", &self.name)
            .field("async", &self.is_async())
            .finish()
    }
}

/// The disposers of one scope (or of the root), in creation order.
#[derive(Debug, Default)]
pub(crate) struct DisposeList {
    disposers: Mutex<Vec<Disposer>>,
}

impl DisposeList {
    pub(crate) fn push(&self, disposer: Disposer) {
        self.disposers.lock().push(disposer);
    }

    fn take(&self) -> Vec<Disposer> {
        std::mem::take(&mut *self.disposers.lock())
    }

    /// Disposes everything, newest first, awaiting async disposals.
    /// Disposers added meanwhile (by a disposal that resolves) are run too.
    pub(crate) async fn dispose_all(&self) {
        loop {
            let disposers = self.take();
            if disposers.is_empty() {
                return;
            }
            for disposer in disposers.into_iter().rev() {
                tracing::trace!(service = disposer.name, "disposing");
                match disposer.action {
                    Action::Sync(dispose) => dispose(),
                    Action::Async(dispose) => dispose().await,
                }
            }
        }
    }

    /// Disposes what can be without awaiting, newest first; warns, by name,
    /// about each async disposal it has to skip.
    pub(crate) fn dispose_sync(&self, owner: &str) {
        for disposer in self.take().into_iter().rev() {
            match disposer.action {
                Action::Sync(dispose) => dispose(),
                Action::Async(_) => tracing::warn!(
                    service = disposer.name,
                    "{owner} dropped without being disposed: `{}` needs async disposal, which was skipped; \
                     call `close().await` (or `dispose().await`) before dropping it",
                    disposer.name
                ),
            }
        }
    }
}
