//! Scopes: scoped services live, and are disposed, with their scope.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use crate::creation::CreationLock;
use crate::dispose::DisposeList;
use crate::root::{Root, Stored};
use crate::{DisposeReport, ServiceProvider};

/// The instance of one scoped registration in one scope.
#[derive(Default)]
pub(crate) struct ScopedCell {
    pub(crate) value: OnceLock<Stored>,
    /// Held while the instance is created (per registration, as singletons).
    pub(crate) creating: CreationLock,
}

/// The shared state of one scope.
///
/// Only [`Scope`] and the providers users get from it hold it strongly;
/// the instances it creates get weak handles (see [`ServiceProvider`]), so
/// that a scoped service that keeps its provider does not keep its scope.
#[derive(Default)]
pub(crate) struct ScopeState {
    /// One cell per scoped registration, allocated on first use.
    pub(crate) cells: OnceLock<Box<[ScopedCell]>>,
    pub(crate) disposers: DisposeList,
    closed: AtomicBool,
}

impl ScopeState {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Closes the scope and awaits its disposals (see
    /// [`DisposeList::dispose_all`]), once: a second close reports nothing.
    pub(crate) async fn close(&self, deadline: impl Future<Output = ()>) -> DisposeReport {
        // As in `close_now`: with nothing to dispose, a store closes it.
        if !self.disposers.has_pushed() {
            self.closed.store(true, Ordering::Release);
            return DisposeReport::default();
        }
        if self.closed.swap(true, Ordering::AcqRel) {
            return DisposeReport::default();
        }
        self.disposers.dispose_all("a scope", deadline).await
    }

    /// Closes the scope without awaiting: its sync disposals, once.
    pub(crate) fn close_now(&self) {
        // With nothing to dispose (most scopes), a plain store marks the
        // scope closed: a racing second close has nothing to dispose either.
        if !self.disposers.has_pushed() {
            self.closed.store(true, Ordering::Release);
        } else if !self.closed.swap(true, Ordering::AcqRel) {
            self.disposers.dispose_sync("a scope");
        }
    }
}

/// A unit of work (a request, a message, a job) with its own scoped
/// services, as .NET's `IServiceScope`. Dereferences to its
/// [`ServiceProvider`].
///
/// [`close`](Scope::close) disposes the instances the scope created, newest
/// first, awaiting async disposals. Dropping a scope without closing it
/// runs the sync disposals and logs a warning (`tracing::warn!`) naming each
/// async disposal it could not await. Resolving from the scope's provider
/// after that fails with [`DiErrorKind::Disposed`](crate::DiErrorKind::Disposed).
///
/// The scope, and clones of its [`provider`](Scope::provider), keep the
/// container alive; the instances it created are freed with the last of
/// them (they hold no strong reference to their own scope).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use host_di::{Injectable, ServiceCollection};
///
/// #[derive(Injectable)]
/// struct RequestId(#[inject(default)] u64);
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_di::DiError> {
/// let mut services = ServiceCollection::new();
/// services.add_scoped_self::<RequestId>();
/// let provider = services.build()?;
///
/// let scope = provider.create_scope();
/// let a = scope.get::<RequestId>()?;
/// let b = scope.get::<RequestId>()?;
/// assert!(Arc::ptr_eq(&a, &b)); // once per scope
/// assert_eq!(a.0, 0);
/// assert!(provider.get::<RequestId>().is_err()); // not from the root
/// scope.close().await;
/// # Ok(()) }
/// ```
pub struct Scope {
    /// Holds the scope's state (see [`ServiceProvider::scope_state`]): the
    /// scope keeps no handle of its own to it, one reference count less to
    /// take and drop per scope.
    provider: ServiceProvider,
}

impl Scope {
    pub(crate) fn new(root: Arc<Root>) -> Self {
        Self {
            provider: ServiceProvider::in_scope(root, Arc::new(ScopeState::default())),
        }
    }

    /// A scope of a container that is gone: every resolve fails with
    /// [`DiErrorKind::Disposed`](crate::DiErrorKind::Disposed). It has no
    /// state: nothing is ever created in it.
    pub(crate) fn of_disposed(root: Weak<Root>) -> Self {
        Self {
            provider: ServiceProvider::weak(root, Some(Weak::new())),
        }
    }

    /// The scope's provider, to clone and pass on.
    pub fn provider(&self) -> &ServiceProvider {
        &self.provider
    }

    /// Whether the scope has created anything it must dispose. A scope that
    /// has not is closed by dropping it as well as by [`close`](Scope::close)
    /// (nothing to await), which saves a caller that closes many scopes (a
    /// server, one per request) the close's future.
    ///
    /// A service created after the answer (through a clone of the provider
    /// kept elsewhere) can make it `true` later; once the scope is closed,
    /// nothing more is created in it.
    pub fn has_disposals(&self) -> bool {
        self.provider
            .scope_state()
            .is_some_and(|state| state.disposers.has_pushed())
    }

    /// Ends the scope: disposes the instances it created, newest first,
    /// awaiting async disposals, and reports the disposers that panicked
    /// (each also logged at error; the next disposer still runs).
    ///
    /// # Cancellation
    ///
    /// Not cancellation-safe, but cancelling loses no sync disposal: if the
    /// future is dropped before it completes, the drop runs the remaining
    /// sync disposals and logs (`tracing::warn!`), by name, the async
    /// disposal it was awaiting and each one it skips. A future dropped
    /// before its first poll disposes as a dropped scope. To bound the
    /// wait and learn what was skipped, use
    /// [`ServiceProvider::dispose_within`] on the scope's provider.
    pub async fn close(self) -> DisposeReport {
        match self.provider.scope_state() {
            Some(state) => state.close(std::future::pending()).await,
            None => DisposeReport::default(),
        }
    }
}

impl Deref for Scope {
    type Target = ServiceProvider;

    fn deref(&self) -> &ServiceProvider {
        &self.provider
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(state) = self.provider.scope_state() {
            state.close_now();
        }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field(
                "closed",
                &self
                    .provider
                    .scope_state()
                    .is_some_and(|state| state.is_closed()),
            )
            .finish_non_exhaustive()
    }
}
