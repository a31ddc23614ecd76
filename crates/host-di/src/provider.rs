//! `ServiceProvider`: resolution from the frozen registrations.

use std::any::{TypeId, type_name};
use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use crate::error::Repr;
use crate::names::{Link, Shape};
use crate::resolution;
use crate::root::{AnySlot, Entry, Registration, Root, Slot, Stored};
use crate::scope::{Scope, ScopeState};
use crate::{DiError, DisposeReport, Disposer, Lifetime, ServiceCollection};

/// Resolves services: the root provider from
/// [`ServiceCollection::build`], or a scope's (see [`Scope`]).
///
/// Cheap to clone (two `Arc`s). Resolving a created singleton is a hash
/// lookup, a read of an initialised cell and an `Arc` clone: no lock, no
/// allocation.
///
/// # Examples
///
/// ```
/// use host_di::{Injectable, ServiceCollection};
///
/// trait Sink: Send + Sync {
///     fn name(&self) -> &'static str;
/// }
///
/// #[derive(Injectable)]
/// #[injectable(as = dyn Sink)]
/// struct Console;
/// impl Sink for Console {
///     fn name(&self) -> &'static str { "console" }
/// }
///
/// #[derive(Injectable)]
/// #[injectable(as = dyn Sink)]
/// struct File;
/// impl Sink for File {
///     fn name(&self) -> &'static str { "file" }
/// }
///
/// let mut services = ServiceCollection::new();
/// services.add_singleton::<dyn Sink, Console>();
/// services.add_singleton::<dyn Sink, File>();
/// let provider = services.build()?;
///
/// assert_eq!(provider.get::<dyn Sink>()?.name(), "file"); // the last one
/// let all: Vec<_> = provider.get_all::<dyn Sink>()?.iter().map(|s| s.name()).collect();
/// assert_eq!(all, ["console", "file"]); // in registration order
/// assert!(provider.get_optional::<String>()?.is_none());
/// # Ok::<(), host_di::DiError>(())
/// ```
#[derive(Clone)]
pub struct ServiceProvider {
    root: Arc<Root>,
    scope: Option<Arc<ScopeState>>,
}

impl ServiceProvider {
    pub(crate) fn build(services: ServiceCollection) -> Result<Self, DiError> {
        Ok(Self {
            root: Arc::new(Root::build(services)?),
            scope: None,
        })
    }

    pub(crate) fn in_scope(&self, scope: Arc<ScopeState>) -> Self {
        Self {
            root: Arc::clone(&self.root),
            scope: Some(scope),
        }
    }

    /// The last registration of `S`.
    ///
    /// # Errors
    ///
    /// `S` is not registered, is scoped and this is the root provider, or
    /// its construction failed (a missing dependency, a cycle through
    /// factories, a factory's own error).
    #[inline]
    pub fn get<S: ?Sized + Send + Sync + 'static>(&self) -> Result<Arc<S>, DiError> {
        match self.root.index.unkeyed(TypeId::of::<S>()) {
            Some(entry) => self.resolve::<S>(&entry.last, Shape::Arc),
            None => Err(self.not_registered::<S>(None, Shape::Arc)),
        }
    }

    /// The last registration of `S`, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), except for `S` not being registered.
    pub fn get_optional<S: ?Sized + Send + Sync + 'static>(
        &self,
    ) -> Result<Option<Arc<S>>, DiError> {
        match self.root.index.unkeyed(TypeId::of::<S>()) {
            Some(entry) => self.resolve::<S>(&entry.last, Shape::Option).map(Some),
            None => Ok(None),
        }
    }

    /// Every registration of `S`, in registration order; empty if none.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), for any of them.
    pub fn get_all<S: ?Sized + Send + Sync + 'static>(&self) -> Result<Vec<Arc<S>>, DiError> {
        self.resolve_all::<S>(self.root.index.unkeyed(TypeId::of::<S>()))
    }

    /// The last registration of `S` under `key`.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn get_keyed<S: ?Sized + Send + Sync + 'static>(
        &self,
        key: &str,
    ) -> Result<Arc<S>, DiError> {
        match self.root.index.keyed(TypeId::of::<S>(), key) {
            Some(entry) => self.resolve::<S>(&entry.last, Shape::Arc),
            None => Err(self.not_registered::<S>(Some(key), Shape::Arc)),
        }
    }

    /// The last registration of `S` under `key`, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// As [`get_optional`](Self::get_optional).
    pub fn get_keyed_optional<S: ?Sized + Send + Sync + 'static>(
        &self,
        key: &str,
    ) -> Result<Option<Arc<S>>, DiError> {
        match self.root.index.keyed(TypeId::of::<S>(), key) {
            Some(entry) => self.resolve::<S>(&entry.last, Shape::Option).map(Some),
            None => Ok(None),
        }
    }

    /// Every registration of `S` under `key`, in registration order.
    ///
    /// # Errors
    ///
    /// As [`get_all`](Self::get_all).
    pub fn get_all_keyed<S: ?Sized + Send + Sync + 'static>(
        &self,
        key: &str,
    ) -> Result<Vec<Arc<S>>, DiError> {
        self.resolve_all::<S>(self.root.index.keyed(TypeId::of::<S>(), key))
    }

    /// Whether `S` has an unkeyed registration.
    pub fn contains<S: ?Sized + 'static>(&self) -> bool {
        self.root.index.unkeyed(TypeId::of::<S>()).is_some()
    }

    /// A new scope: scoped services are created once in it and disposed
    /// when it closes. Cheap: storage for scoped services is allocated on
    /// the first scoped resolve. A scope made from a scope is a new,
    /// independent scope.
    pub fn create_scope(&self) -> Scope {
        Scope::new(self)
    }

    /// Whether this is a scope's provider rather than the root one.
    pub fn is_scope(&self) -> bool {
        self.scope.is_some()
    }

    /// Disposes what this provider owns, newest first, awaiting async
    /// disposals: on the root, the singletons the container created (and
    /// the instances registered as disposable) plus transients resolved
    /// from the root; on a scope's provider, the scope (as
    /// [`Scope::close`]). Idempotent: a second call reports nothing.
    /// Resolving afterwards fails with
    /// [`DiErrorKind::Disposed`](crate::DiErrorKind::Disposed).
    ///
    /// A panicking disposer is caught, logged at error with the service's
    /// name, and listed in the returned report; the next one still runs.
    ///
    /// # Cancellation
    ///
    /// Not cancellation-safe, but cancelling (a `timeout` around it, say)
    /// loses no sync disposal: the drop of the future runs the remaining
    /// sync disposals and logs (`tracing::warn!`), by name, each async one
    /// it skips. To bound the wait and get the skipped names in the report
    /// instead, use [`dispose_within`](Self::dispose_within).
    pub async fn dispose(&self) -> DisposeReport {
        self.dispose_within(std::future::pending()).await
    }

    /// As [`dispose`](Self::dispose), racing each async disposal against
    /// `deadline` (any future, so any runtime's timer: with tokio,
    /// `tokio::time::sleep_until(deadline)`). Once `deadline` completes,
    /// the async disposal being awaited is dropped, the remaining sync
    /// disposals still run, the remaining async ones are not started, and
    /// [`DisposeReport::skipped`] names each async one not awaited to the
    /// end. Nothing is logged for them: the report is the caller's to log.
    ///
    /// # Cancellation
    ///
    /// As [`dispose`](Self::dispose): dropped midway, it runs the remaining
    /// sync disposals and logs the async ones it skips.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_trait::async_trait;
    /// use host_di::{AsyncDispose, ServiceCollection};
    ///
    /// struct Stuck;
    /// #[async_trait]
    /// impl AsyncDispose for Stuck {
    ///     async fn dispose(&self) {
    ///         std::future::pending::<()>().await
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_di::DiError> {
    /// let mut services = ServiceCollection::new();
    /// services.add_singleton_factory::<Stuck, _>(|_| Ok(std::sync::Arc::new(Stuck))).async_disposable();
    /// let provider = services.build()?;
    /// provider.get::<Stuck>()?;
    /// let report = provider.dispose_within(tokio::time::sleep(Duration::from_millis(10))).await;
    /// assert!(report.skipped()[0].ends_with("Stuck"));
    /// # Ok(()) }
    /// ```
    pub async fn dispose_within(&self, deadline: impl Future<Output = ()>) -> DisposeReport {
        match &self.scope {
            Some(scope) => scope.close(deadline).await,
            None => {
                self.root.disposed.store(true, Ordering::Release);
                self.root
                    .disposers
                    .dispose_all("a service provider", deadline)
                    .await
            }
        }
    }

    fn resolve_all<S: ?Sized + Send + Sync + 'static>(
        &self,
        entry: Option<&Entry>,
    ) -> Result<Vec<Arc<S>>, DiError> {
        let Some(entry) = entry else {
            return Ok(Vec::new());
        };
        entry
            .all
            .iter()
            .map(|&index| match self.root.registrations.get(index as usize) {
                Some(registration) => self.resolve::<S>(&registration.slot, Shape::Vec),
                None => Err(self.internal::<S>()),
            })
            .collect()
    }

    #[inline]
    fn resolve<S: ?Sized + Send + Sync + 'static>(
        &self,
        slot: &AnySlot,
        via: Shape,
    ) -> Result<Arc<S>, DiError> {
        let Some(slot) = slot.downcast_ref::<Slot<S>>() else {
            return Err(self.internal::<S>());
        };
        if self.root.disposed.load(Ordering::Relaxed) {
            return Err(self.disposed(slot.index, false));
        }
        match slot.lifetime {
            Lifetime::Singleton => match slot.singleton.get() {
                Some(instance) => Ok(Arc::clone(instance)),
                None => self.create_singleton::<S>(slot, via),
            },
            Lifetime::Scoped => self.scoped::<S>(slot, via),
            Lifetime::Transient => self.transient::<S>(slot, via),
        }
    }

    #[cold]
    #[inline(never)]
    fn create_singleton<S: ?Sized + Send + Sync + 'static>(
        &self,
        slot: &Slot<S>,
        via: Shape,
    ) -> Result<Arc<S>, DiError> {
        let _creating = self.root.creating.lock();
        if let Some(instance) = slot.singleton.get() {
            return Ok(Arc::clone(instance));
        }
        // A singleton is built from the root: it cannot capture a scope.
        let root_provider;
        let provider = match self.scope {
            None => self,
            Some(_) => {
                root_provider = Self {
                    root: Arc::clone(&self.root),
                    scope: None,
                };
                &root_provider
            }
        };
        let mut disposer = None;
        let instance = self.construct::<S>(provider, slot, via, &mut disposer)?;
        if let Some(disposer) = disposer {
            self.root.disposers.push(disposer);
        }
        let _ = slot.singleton.set(Arc::clone(&instance));
        Ok(instance)
    }

    fn scoped<S: ?Sized + Send + Sync + 'static>(
        &self,
        slot: &Slot<S>,
        via: Shape,
    ) -> Result<Arc<S>, DiError> {
        let Some(scope) = &self.scope else {
            let mut chain = self.chain();
            let service = self.link(slot.index, via);
            if !chain.is_empty() {
                chain.push(service.clone());
            }
            return Err(DiError::new(Repr::ScopedFromRoot { service, chain }));
        };
        if scope.is_closed() {
            return Err(self.disposed(slot.index, true));
        }
        let cells = scope.cells.get_or_init(|| {
            (0..self.root.scoped_count)
                .map(|_| OnceLock::new())
                .collect()
        });
        let Some(cell) = cells.get(slot.scoped_slot) else {
            return Err(self.internal::<S>());
        };
        if let Some(stored) = cell.get() {
            return downcast::<S>(stored).ok_or_else(|| self.internal::<S>());
        }
        let _creating = scope.creating.lock();
        if let Some(stored) = cell.get() {
            return downcast::<S>(stored).ok_or_else(|| self.internal::<S>());
        }
        let mut disposer = None;
        let instance = self.construct::<S>(self, slot, via, &mut disposer)?;
        if let Some(disposer) = disposer {
            scope.disposers.push(disposer);
        }
        let _ = cell.set(Box::new(Arc::clone(&instance)));
        Ok(instance)
    }

    #[inline]
    fn transient<S: ?Sized + Send + Sync + 'static>(
        &self,
        slot: &Slot<S>,
        via: Shape,
    ) -> Result<Arc<S>, DiError> {
        if let Some(scope) = &self.scope
            && scope.is_closed()
        {
            return Err(self.disposed(slot.index, true));
        }
        let mut disposer = None;
        let instance = self.construct::<S>(self, slot, via, &mut disposer)?;
        if let Some(disposer) = disposer {
            match &self.scope {
                Some(scope) => scope.disposers.push(disposer),
                None => self.root.disposers.push(disposer),
            }
        }
        Ok(instance)
    }

    /// Runs the registration's factory with `provider`, tracking the chain.
    #[inline]
    fn construct<S: ?Sized + Send + Sync + 'static>(
        &self,
        provider: &ServiceProvider,
        slot: &Slot<S>,
        via: Shape,
        disposer: &mut Option<Disposer>,
    ) -> Result<Arc<S>, DiError> {
        let Some(factory) = &slot.factory else {
            return Err(self.internal::<S>());
        };
        let _frame = match resolution::enter(self.root.id(), slot.index, via) {
            Ok(frame) => frame,
            Err(refused) => return Err(self.refused(refused, slot.index, via)),
        };
        factory(provider, disposer)
            .map_err(|error| error.in_factory_of(|| (self.link(slot.index, via), self.chain())))
    }

    fn link(&self, index: u32, via: Shape) -> Link {
        match self.root.registrations.get(index as usize) {
            Some(registration) => link_of(registration, via),
            None => Link::new("?", None, via),
        }
    }

    /// The chain of registrations under construction on this thread.
    fn chain(&self) -> Vec<Link> {
        resolution::current(self.root.id())
            .into_iter()
            .filter_map(|(index, via)| {
                let registration = self.root.registrations.get(index as usize)?;
                Some(link_of(registration, via))
            })
            .collect()
    }

    #[cold]
    #[inline(never)]
    fn refused(&self, refused: resolution::Refused, index: u32, via: Shape) -> DiError {
        match refused {
            resolution::Refused::Cycle(cycle) => DiError::new(Repr::Cycle {
                cycle: cycle
                    .into_iter()
                    .map(|(index, via)| self.link(index, via))
                    .collect(),
            }),
            resolution::Refused::TooDeep => DiError::new(Repr::TooDeep {
                service: self.link(index, via),
            }),
        }
    }

    #[cold]
    #[inline(never)]
    fn not_registered<S: ?Sized + 'static>(&self, key: Option<&str>, via: Shape) -> DiError {
        let missing = Link::new(type_name::<S>(), key.map(Arc::from), via);
        let frames = resolution::current(self.root.id());
        let dependent = frames
            .last()
            .and_then(|&(index, _)| self.root.registrations.get(index as usize))
            .map(|registration| registration.meta.dependent_name());
        let mut chain = Vec::new();
        if dependent.is_some() {
            chain = self.chain();
            chain.push(missing.clone());
        }
        DiError::new(Repr::NotRegistered {
            dependent,
            missing,
            chain,
        })
    }

    #[cold]
    #[inline(never)]
    fn disposed(&self, index: u32, scope: bool) -> DiError {
        DiError::new(Repr::Disposed {
            service: self.link(index, Shape::Arc),
            scope,
        })
    }

    #[cold]
    #[inline(never)]
    fn internal<S: ?Sized + 'static>(&self) -> DiError {
        DiError::new(Repr::Internal {
            service: Link::new(type_name::<S>(), None, Shape::Arc),
        })
    }
}

fn link_of(registration: &Registration, via: Shape) -> Link {
    Link::new(
        registration.meta.service_name,
        registration.meta.key.clone(),
        via,
    )
}

#[inline]
fn downcast<S: ?Sized + 'static>(stored: &Stored) -> Option<Arc<S>> {
    stored.downcast_ref::<Arc<S>>().cloned()
}

impl fmt::Debug for ServiceProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceProvider")
            .field("registrations", &self.root.registrations.len())
            .field("scope", &self.scope.is_some())
            .finish()
    }
}
