//! `ServiceProvider`: resolution from the frozen registrations.

use std::any::{TypeId, type_name};
use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};

use crate::creation::{CreationLock, Held};
use crate::error::Repr;
use crate::names::{Link, Shape};
use crate::resolution;
use crate::root::{AnySlot, Entry, Registration, Root, Slot, Stored};
use crate::scope::{Scope, ScopeState, ScopedCell};
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
///
/// # Strong and weak handles
///
/// The provider from `build()`, a [`Scope`]'s provider, and their clones
/// are strong: they keep the container (and the scope) alive. The provider
/// a constructor or factory is given is lent: a clone of it (which is what
/// an injected `ServiceProvider` field gets) is a weak handle, so a service
/// that keeps its provider does not keep its own container or scope alive,
/// and a singleton holding the provider is freed with the container. A weak
/// handle resolves while its container (and scope) lives, and fails with
/// [`DiErrorKind::Disposed`](crate::DiErrorKind::Disposed) once it is gone;
/// a scope created from it holds the container while the scope lives.
pub struct ServiceProvider {
    handle: Handle,
    /// A strong root handle's lent twin (see [`Live::lender`]); empty in
    /// any other handle.
    twin: Twin,
}

enum Handle {
    /// A user's handle: holds the container (and scope).
    Strong(Live),
    /// The provider given to a constructor: resolves as a strong one, but
    /// its clones are weak, so that what the constructor keeps does not
    /// hold the container (or scope) that holds it.
    Lent(Live),
    /// A clone of a lent provider: resolves while the container lives.
    Weak {
        root: Weak<Root>,
        scope: Option<Weak<ScopeState>>,
    },
}

/// A strong root handle's lent twin, made on its first transient resolve
/// and kept, so that each later one lends it instead of building a lent
/// handle (a reference count taken and dropped on the shared container).
type Twin = OnceLock<Box<ServiceProvider>>;

/// A provider whose container (and scope) is held: what resolves.
#[derive(Clone)]
struct Live {
    root: Arc<Root>,
    scope: Option<Arc<ScopeState>>,
}

impl ServiceProvider {
    pub(crate) fn build(services: ServiceCollection) -> Result<Self, DiError> {
        Ok(Self {
            handle: Handle::Strong(Live {
                root: Arc::new(Root::build(services)?),
                scope: None,
            }),
            twin: Twin::new(),
        })
    }

    pub(crate) fn in_scope(root: Arc<Root>, scope: Arc<ScopeState>) -> Self {
        Self {
            handle: Handle::Strong(Live {
                root,
                scope: Some(scope),
            }),
            twin: Twin::new(),
        }
    }

    pub(crate) fn weak(root: Weak<Root>, scope: Option<Weak<ScopeState>>) -> Self {
        Self {
            handle: Handle::Weak { root, scope },
            twin: Twin::new(),
        }
    }

    /// Runs `resolve` with the live container; a weak handle whose
    /// container (or scope) is gone fails with `Disposed`, naming `S`.
    #[inline]
    fn with<S: ?Sized + 'static, R>(
        &self,
        key: Option<&str>,
        resolve: impl FnOnce(&Live) -> Result<R, DiError>,
    ) -> Result<R, DiError> {
        match &self.handle {
            Handle::Strong(live) | Handle::Lent(live) => resolve(live),
            Handle::Weak { root, scope } => resolve(&upgrade::<S>(root, scope.as_ref(), key)?),
        }
    }

    /// The last registration of `S`.
    ///
    /// # Errors
    ///
    /// `S` is not registered, is scoped and this is the root provider, or
    /// its construction failed (a missing dependency, a cycle through
    /// factories, a factory's own error); the provider was disposed.
    #[inline]
    pub fn get<S: ?Sized + Send + Sync + 'static>(&self) -> Result<Arc<S>, DiError> {
        self.with::<S, _>(None, |live| live.get::<S>(self))
    }

    /// The last registration of `S`, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), except for `S` not being registered.
    pub fn get_optional<S: ?Sized + Send + Sync + 'static>(
        &self,
    ) -> Result<Option<Arc<S>>, DiError> {
        self.with::<S, _>(None, |live| {
            match live.root.index.unkeyed(TypeId::of::<S>()) {
                Some(entry) => live
                    .resolve::<S>(self, &entry.last, Shape::Option)
                    .map(Some),
                None => Ok(None),
            }
        })
    }

    /// Every registration of `S`, in registration order; empty if none.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), for any of them.
    pub fn get_all<S: ?Sized + Send + Sync + 'static>(&self) -> Result<Vec<Arc<S>>, DiError> {
        self.with::<S, _>(None, |live| {
            live.resolve_all::<S>(self, live.root.index.unkeyed(TypeId::of::<S>()))
        })
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
        self.with::<S, _>(Some(key), |live| {
            match live.root.index.keyed(TypeId::of::<S>(), key) {
                Some(entry) => live.resolve::<S>(self, &entry.last, Shape::Arc),
                None => Err(live.not_registered::<S>(Some(key), Shape::Arc)),
            }
        })
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
        self.with::<S, _>(Some(key), |live| {
            match live.root.index.keyed(TypeId::of::<S>(), key) {
                Some(entry) => live
                    .resolve::<S>(self, &entry.last, Shape::Option)
                    .map(Some),
                None => Ok(None),
            }
        })
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
        self.with::<S, _>(Some(key), |live| {
            live.resolve_all::<S>(self, live.root.index.keyed(TypeId::of::<S>(), key))
        })
    }

    /// Whether `S` has an unkeyed registration (`false` once a weak
    /// handle's container is gone).
    pub fn contains<S: ?Sized + 'static>(&self) -> bool {
        self.with::<S, _>(None, |live| {
            Ok(live.root.index.unkeyed(TypeId::of::<S>()).is_some())
        })
        .unwrap_or(false)
    }

    /// A new scope: scoped services are created once in it and disposed
    /// when it closes. Cheap: storage for scoped services is allocated on
    /// the first scoped resolve. A scope made from a scope is a new,
    /// independent scope. The scope holds the container while it lives;
    /// made from a weak handle whose container is gone, every resolve from
    /// it fails with [`DiErrorKind::Disposed`](crate::DiErrorKind::Disposed).
    pub fn create_scope(&self) -> Scope {
        match &self.handle {
            Handle::Strong(live) | Handle::Lent(live) => Scope::new(Arc::clone(&live.root)),
            Handle::Weak { root, .. } => match root.upgrade() {
                Some(root) => Scope::new(root),
                None => Scope::of_disposed(Weak::clone(root)),
            },
        }
    }

    /// Whether this is a scope's provider rather than the root one.
    pub fn is_scope(&self) -> bool {
        match &self.handle {
            Handle::Strong(live) | Handle::Lent(live) => live.scope.is_some(),
            Handle::Weak { scope, .. } => scope.is_some(),
        }
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
        let Some(live) = self.live() else {
            return DisposeReport::default();
        };
        match &live.scope {
            Some(scope) => scope.close(deadline).await,
            None => {
                live.root.disposed.store(true, Ordering::Release);
                live.root
                    .disposers
                    .dispose_all("a service provider", deadline)
                    .await
            }
        }
    }
}

impl ServiceProvider {
    /// Disposes what this provider owns without awaiting, as dropping its
    /// last handle would, but now: the sync disposals run, newest first (a
    /// panic is caught and logged with the service's name), and each async
    /// one is skipped and named in a warning. Idempotent; resolving
    /// afterwards fails with [`DiErrorKind::Disposed`](crate::DiErrorKind::Disposed).
    ///
    /// For a drop path that cannot await (a host dropped without being
    /// stopped, as .NET's `IHost.Dispose`); prefer
    /// [`dispose`](Self::dispose) wherever you can await.
    pub fn dispose_now(&self) {
        let Some(live) = self.live() else {
            return;
        };
        match &live.scope {
            Some(scope) => scope.close_now(),
            None => {
                live.root.disposed.store(true, Ordering::Release);
                live.root.disposers.dispose_sync("a service provider");
            }
        }
    }

    /// The state of the scope this strong (or lent) handle belongs to.
    pub(crate) fn scope_state(&self) -> Option<&Arc<ScopeState>> {
        match &self.handle {
            Handle::Strong(live) | Handle::Lent(live) => live.scope.as_ref(),
            Handle::Weak { .. } => None,
        }
    }

    /// The container this handle reaches, unless it is gone (disposed when
    /// its last strong handle was dropped).
    fn live(&self) -> Option<Live> {
        match &self.handle {
            Handle::Strong(live) | Handle::Lent(live) => Some(live.clone()),
            Handle::Weak { root, scope } => upgrade::<()>(root, scope.as_ref(), None).ok(),
        }
    }
}

/// The live container of a weak handle.
#[cold]
#[inline(never)]
fn upgrade<S: ?Sized + 'static>(
    root: &Weak<Root>,
    scope: Option<&Weak<ScopeState>>,
    key: Option<&str>,
) -> Result<Live, DiError> {
    let gone = |scope| {
        DiError::new(Repr::Disposed {
            service: Link::new(type_name::<S>(), key.map(Arc::from), Shape::Arc),
            scope,
        })
    };
    let root = root.upgrade().ok_or_else(|| gone(false))?;
    let scope = match scope {
        None => None,
        Some(scope) => Some(scope.upgrade().ok_or_else(|| gone(true))?),
    };
    Ok(Live { root, scope })
}

impl Clone for ServiceProvider {
    /// A strong handle's clone is strong; the clone of the provider given
    /// to a constructor, or of a weak handle, is weak.
    fn clone(&self) -> Self {
        match &self.handle {
            // The twin is not shared: each handle makes its own if it needs one.
            Handle::Strong(live) => Self {
                handle: Handle::Strong(live.clone()),
                twin: Twin::new(),
            },
            Handle::Lent(live) => Self::weak(
                Arc::downgrade(&live.root),
                live.scope.as_ref().map(Arc::downgrade),
            ),
            Handle::Weak { root, scope } => Self::weak(Weak::clone(root), scope.clone()),
        }
    }
}

impl Live {
    /// This provider, lent to a constructor; without its scope for a
    /// singleton, which is built from the root and cannot capture a scope.
    fn lend(&self, with_scope: bool) -> ServiceProvider {
        ServiceProvider {
            handle: Handle::Lent(Self {
                root: Arc::clone(&self.root),
                scope: if with_scope { self.scope.clone() } else { None },
            }),
            twin: Twin::new(),
        }
    }

    /// The provider lent to the constructor of a transient resolved through
    /// `caller`, whose container (and scope) this is: a lent handle lends
    /// itself, a strong root handle its twin, made once; a scope's handle,
    /// which usually lives for one request, and a weak one lend a new one.
    #[inline]
    fn lender<'a>(
        &self,
        caller: &'a ServiceProvider,
        owned: &'a mut Option<ServiceProvider>,
    ) -> &'a ServiceProvider {
        match &caller.handle {
            Handle::Lent(_) => caller,
            Handle::Strong(live) if live.scope.is_none() => {
                caller.twin.get_or_init(|| Box::new(self.lend(false)))
            }
            _ => owned.insert(self.lend(true)),
        }
    }

    #[inline]
    fn get<S: ?Sized + Send + Sync + 'static>(
        &self,
        caller: &ServiceProvider,
    ) -> Result<Arc<S>, DiError> {
        match self.root.index.unkeyed(TypeId::of::<S>()) {
            Some(entry) => self.resolve::<S>(caller, &entry.last, Shape::Arc),
            None => Err(self.not_registered::<S>(None, Shape::Arc)),
        }
    }

    fn resolve_all<S: ?Sized + Send + Sync + 'static>(
        &self,
        caller: &ServiceProvider,
        entry: Option<&Entry>,
    ) -> Result<Vec<Arc<S>>, DiError> {
        let Some(entry) = entry else {
            return Ok(Vec::new());
        };
        entry
            .all
            .iter()
            .map(|&index| match self.root.registrations.get(index as usize) {
                Some(registration) => self.resolve::<S>(caller, &registration.slot, Shape::Vec),
                None => Err(self.internal::<S>()),
            })
            .collect()
    }

    #[inline]
    fn resolve<S: ?Sized + Send + Sync + 'static>(
        &self,
        caller: &ServiceProvider,
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
            Lifetime::Transient => self.transient::<S>(caller, slot, via),
        }
    }

    #[cold]
    #[inline(never)]
    fn create_singleton<S: ?Sized + Send + Sync + 'static>(
        &self,
        slot: &Slot<S>,
        via: Shape,
    ) -> Result<Arc<S>, DiError> {
        // The chain before the lock: a cycle on this thread is an error
        // rather than a wait for a lock this thread holds.
        let _frame = self.enter(slot.index, via)?;
        let _creating = self.lock(&slot.creating, slot.index, via)?;
        if let Some(instance) = slot.singleton.get() {
            return Ok(Arc::clone(instance));
        }
        let mut disposer = None;
        let instance = self.construct::<S>(&self.lend(false), slot, via, &mut disposer)?;
        if let Some(disposer) = disposer {
            self.root.disposers.push(disposer);
        }
        let _ = slot.singleton.set(Arc::clone(&instance));
        Ok(instance)
    }

    #[inline]
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
                .map(|_| Default::default())
                .collect()
        });
        let Some(cell) = cells.get(slot.scoped_slot) else {
            return Err(self.internal::<S>());
        };
        match cell.value.get() {
            Some(stored) => downcast::<S>(stored).ok_or_else(|| self.internal::<S>()),
            None => self.create_scoped::<S>(scope, cell, slot, via),
        }
    }

    #[cold]
    #[inline(never)]
    fn create_scoped<S: ?Sized + Send + Sync + 'static>(
        &self,
        scope: &ScopeState,
        cell: &ScopedCell,
        slot: &Slot<S>,
        via: Shape,
    ) -> Result<Arc<S>, DiError> {
        let _frame = self.enter(slot.index, via)?;
        let _creating = self.lock(&cell.creating, slot.index, via)?;
        if let Some(stored) = cell.value.get() {
            return downcast::<S>(stored).ok_or_else(|| self.internal::<S>());
        }
        let mut disposer = None;
        let instance = self.construct::<S>(&self.lend(true), slot, via, &mut disposer)?;
        if let Some(disposer) = disposer {
            scope.disposers.push(disposer);
        }
        let _ = cell.value.set(Box::new(Arc::clone(&instance)));
        Ok(instance)
    }

    #[inline]
    fn transient<S: ?Sized + Send + Sync + 'static>(
        &self,
        caller: &ServiceProvider,
        slot: &Slot<S>,
        via: Shape,
    ) -> Result<Arc<S>, DiError> {
        if let Some(scope) = &self.scope
            && scope.is_closed()
        {
            return Err(self.disposed(slot.index, true));
        }
        let _frame = self.enter(slot.index, via)?;
        let mut disposer = None;
        let mut owned = None;
        let lent = self.lender(caller, &mut owned);
        let instance = self.construct::<S>(lent, slot, via, &mut disposer)?;
        if let Some(disposer) = disposer {
            match &self.scope {
                Some(scope) => scope.disposers.push(disposer),
                None => self.root.disposers.push(disposer),
            }
        }
        Ok(instance)
    }

    /// Enters the construction of registration `index` in this thread's
    /// chain: refused if it is already under construction here (a cycle).
    #[inline]
    fn enter(&self, index: u32, via: Shape) -> Result<resolution::Guard, DiError> {
        resolution::enter(self.root.id(), index, via)
            .map_err(|refused| self.refused(refused, index, via))
    }

    /// Takes the creation lock of registration `index`, unless waiting for
    /// it would close a circle of threads waiting on each other.
    #[inline]
    fn lock<'a>(
        &self,
        lock: &'a CreationLock,
        index: u32,
        via: Shape,
    ) -> Result<Held<'a>, DiError> {
        lock.acquire((self.root.id(), index))
            .map_err(|circle| self.circle(circle.held, index, via))
    }

    /// Runs the registration's factory with `provider`.
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
                // A forwarding registration's service type is one the user
                // never wrote; the registration it forwards to follows.
                (!registration.meta.forwards).then(|| link_of(registration, via))
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

    /// A cycle across threads: this thread creates `held` and, through its
    /// chain, needs registration `index`, which another thread is creating
    /// and which, through threads waiting on each other, needs `held`.
    #[cold]
    #[inline(never)]
    fn circle(&self, held: (usize, u32), index: u32, via: Shape) -> DiError {
        let ours = held.0 == self.root.id();
        let frames = resolution::current(self.root.id());
        // This thread's part, from its construction of `held` to `index`
        // (entered before the lock, so the chain ends with it).
        let start = frames
            .iter()
            .position(|&(frame, _)| ours && frame == held.1)
            .unwrap_or(0);
        let mut cycle: Vec<Link> = frames[start..]
            .iter()
            .map(|&(index, via)| self.link(index, via))
            .collect();
        if frames.last().map(|&(last, _)| last) != Some(index) {
            cycle.push(self.link(index, via));
        }
        // The other threads' part is not known here: `index` leads back to
        // `held` through them.
        if ours {
            cycle.push(self.link(held.1, Shape::Arc));
        }
        DiError::new(Repr::Cycle { cycle })
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
        let (live, handle) = match &self.handle {
            Handle::Strong(live) => (Some(live), "strong"),
            Handle::Lent(live) => (Some(live), "lent"),
            Handle::Weak { .. } => (None, "weak"),
        };
        f.debug_struct("ServiceProvider")
            .field(
                "registrations",
                &live.map(|live| live.root.registrations.len()),
            )
            .field("scope", &self.is_scope())
            .field("handle", &handle)
            .finish()
    }
}
