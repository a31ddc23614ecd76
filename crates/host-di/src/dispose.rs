//! Disposal: the container calls `dispose` on the instances it created, in
//! reverse creation order, when their scope (or the root provider) ends.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

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

    /// Disposes the instance now, for one its owner created outside the
    /// container's lists (a fresh instance replacing another): runs the
    /// sync disposal, or awaits the async one. A panic is caught and
    /// returned as its message, naming the type.
    ///
    /// Cancellation: dropping the future before it completes drops an
    /// async disposal midway (a sync one has run at the first poll).
    pub async fn dispose(self) -> Result<(), String> {
        let Disposer { name, action } = self;
        match action {
            Action::Sync(dispose) => run_sync(name, dispose),
            Action::Async(dispose) => {
                match await_disposal(name, dispose, pin!(std::future::pending::<()>())).await {
                    Awaited::Done | Awaited::Expired => Ok(()),
                    Awaited::Panicked(message) => Err(message),
                }
            }
        }
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

/// What a disposal did not do cleanly: the disposers that panicked and the
/// async disposals it did not await to the end.
///
/// Returned by [`ServiceProvider::dispose`](crate::ServiceProvider::dispose),
/// [`ServiceProvider::dispose_within`](crate::ServiceProvider::dispose_within)
/// and [`Scope::close`](crate::Scope::close). Each panic is also logged (at
/// error) as it is caught; skipped disposals are left to the caller to report.
///
/// # Examples
///
/// ```
/// use host_di::{Dispose, ServiceCollection};
///
/// struct Flaky;
/// impl Dispose for Flaky {
///     fn dispose(&self) {
///         panic!("socket already closed");
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_di::DiError> {
/// let mut services = ServiceCollection::new();
/// services.add_singleton_factory::<Flaky, _>(|_| Ok(std::sync::Arc::new(Flaky))).disposable();
/// let provider = services.build()?;
/// provider.get::<Flaky>()?;
/// let report = provider.dispose().await;
/// assert!(!report.is_clean());
/// assert_eq!(report.panicked()[0].1, "socket already closed");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisposeReport {
    panicked: Vec<(&'static str, String)>,
    skipped: Vec<&'static str>,
}

impl DisposeReport {
    /// The disposers that panicked: the service's type name and the panic
    /// message, in the order they ran (newest service first).
    pub fn panicked(&self) -> &[(&'static str, String)] {
        &self.panicked
    }

    /// The type names of the async disposals not awaited to the end: cut
    /// by the deadline of [`dispose_within`](crate::ServiceProvider::dispose_within),
    /// or never started because it had passed.
    pub fn skipped(&self) -> &[&'static str] {
        &self.skipped
    }

    /// Whether every disposer ran to the end without panicking.
    pub fn is_clean(&self) -> bool {
        self.panicked.is_empty() && self.skipped.is_empty()
    }
}

impl fmt::Display for DisposeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return f.write_str("every disposal completed");
        }
        let mut separator = "";
        for (service, message) in &self.panicked {
            write!(f, "{separator}disposing `{service}` panicked: {message}")?;
            separator = "; ";
        }
        for service in &self.skipped {
            write!(
                f,
                "{separator}the async disposal of `{service}` was not awaited: the deadline passed"
            )?;
            separator = "; ";
        }
        Ok(())
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}

/// Logs a disposer's panic; returns its message for the report.
fn caught(service: &'static str, payload: &(dyn Any + Send)) -> String {
    let message = panic_message(payload);
    tracing::error!(service, "disposing `{service}` panicked: {message}");
    message
}

/// Runs a sync disposer; its panic is caught, logged and returned.
fn run_sync(service: &'static str, dispose: Box<dyn FnOnce() + Send + Sync>) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(dispose)).map_err(|payload| caught(service, &*payload))
}

/// How one awaited async disposal ended.
enum Awaited {
    Done,
    Panicked(String),
    /// The deadline fired first; the disposal's future was dropped.
    Expired,
}

/// The disposers of one scope (or of the root), in creation order.
#[derive(Debug, Default)]
pub(crate) struct DisposeList {
    disposers: Mutex<Vec<Disposer>>,
    /// Whether anything was ever pushed: a list that never had a disposer
    /// (most scopes) is disposed without taking its lock.
    pushed: AtomicBool,
}

impl DisposeList {
    pub(crate) fn push(&self, disposer: Disposer) {
        self.disposers.lock().push(disposer);
        self.pushed.store(true, Ordering::Release);
    }

    /// Whether a disposer was ever pushed. A push that happens before this
    /// call is seen; one racing with it may not be, as it may also land
    /// just after a disposal that took the lock.
    pub(crate) fn has_pushed(&self) -> bool {
        self.pushed.load(Ordering::Acquire)
    }

    /// The newest disposer. Taken one at a time, so that whatever stops a
    /// disposal midway (a deadline, a dropped future, a panic) leaves the
    /// rest in the list for [`dispose_sync`](Self::dispose_sync).
    fn pop(&self) -> Option<Disposer> {
        self.disposers.lock().pop()
    }

    /// Disposes everything, newest first, awaiting async disposals until
    /// `deadline` fires; after that, sync disposals still run and async ones
    /// are skipped (and named in the report). Disposers added meanwhile (by
    /// a disposal that resolves) are run too. A panicking disposer is
    /// logged, reported, and the next one runs.
    ///
    /// Dropped midway, it runs the remaining sync disposals and logs, by
    /// name, the async disposal it was awaiting and each one it skips.
    pub(crate) async fn dispose_all(
        &self,
        owner: &'static str,
        deadline: impl Future<Output = ()>,
    ) -> DisposeReport {
        let mut deadline = pin!(deadline);
        let mut expired = false;
        let mut run = Running {
            list: self,
            owner,
            awaiting: None,
            report: DisposeReport::default(),
            finished: false,
        };
        while let Some(Disposer { name, action }) = self.pop() {
            tracing::trace!(service = name, "disposing");
            match action {
                Action::Sync(dispose) => {
                    if let Err(message) = run_sync(name, dispose) {
                        run.report.panicked.push((name, message));
                    }
                }
                Action::Async(_) if expired => run.report.skipped.push(name),
                Action::Async(dispose) => {
                    run.awaiting = Some(name);
                    match await_disposal(name, dispose, deadline.as_mut()).await {
                        Awaited::Done => {}
                        Awaited::Panicked(message) => run.report.panicked.push((name, message)),
                        Awaited::Expired => {
                            expired = true;
                            run.report.skipped.push(name);
                        }
                    }
                    run.awaiting = None;
                }
            }
        }
        run.finished = true;
        std::mem::take(&mut run.report)
    }

    /// Disposes what can be without awaiting, newest first; warns, by name,
    /// about each async disposal it has to skip. Panics are caught and
    /// logged.
    pub(crate) fn dispose_sync(&self, owner: &str) {
        self.dispose_sync_because(owner, Cut::Dropped);
    }

    fn dispose_sync_because(&self, owner: &str, cut: Cut) {
        if !self.has_pushed() {
            return;
        }
        while let Some(Disposer { name, action }) = self.pop() {
            match action {
                Action::Sync(dispose) => {
                    let _ = run_sync(name, dispose);
                }
                Action::Async(_) => match cut {
                    Cut::Dropped => tracing::warn!(
                        service = name,
                        "{owner} dropped without being disposed: `{name}` needs async disposal, \
                         which was skipped; call `close().await` (or `dispose().await`) before dropping it"
                    ),
                    Cut::Cancelled => tracing::warn!(
                        service = name,
                        "{owner}'s disposal was cancelled: `{name}` needs async disposal, \
                         which was skipped; let `close()` (or `dispose()`) finish, or bound it \
                         with `dispose_within`"
                    ),
                },
            }
        }
    }
}

/// Why async disposals are skipped.
#[derive(Clone, Copy)]
enum Cut {
    /// The scope (or root) was dropped without being disposed.
    Dropped,
    /// Its disposal future was dropped before the end.
    Cancelled,
}

/// Awaits one async disposal, its panics caught, racing `deadline`.
async fn await_disposal(
    name: &'static str,
    dispose: Box<dyn FnOnce() -> BoxFuture + Send + Sync>,
    mut deadline: Pin<&mut impl Future<Output = ()>>,
) -> Awaited {
    // Making the future runs user code too (an `async_trait` method).
    let mut disposal = match catch_unwind(AssertUnwindSafe(dispose)) {
        Ok(disposal) => disposal,
        Err(payload) => return Awaited::Panicked(caught(name, &*payload)),
    };
    std::future::poll_fn(|cx| {
        match catch_unwind(AssertUnwindSafe(|| disposal.as_mut().poll(cx))) {
            Ok(Poll::Ready(())) => return Poll::Ready(Awaited::Done),
            Ok(Poll::Pending) => {}
            Err(payload) => return Poll::Ready(Awaited::Panicked(caught(name, &*payload))),
        }
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Awaited::Expired),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// The state of a running [`DisposeList::dispose_all`]; if its future is
/// dropped before the end, the drop finishes what can be finished.
struct Running<'a> {
    list: &'a DisposeList,
    owner: &'static str,
    /// The async disposal being awaited.
    awaiting: Option<&'static str>,
    report: DisposeReport,
    finished: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(name) = self.awaiting {
            tracing::warn!(
                service = name,
                "{}'s disposal was cancelled while awaiting the async disposal of `{name}`, \
                 which did not finish",
                self.owner
            );
        }
        self.list.dispose_sync_because(self.owner, Cut::Cancelled);
    }
}
