//! The application lifetime: started, stopping and stopped events, and the
//! request to stop.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::sync::{Arc, Mutex, OnceLock};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::logging::LIFETIME_TARGET;
use crate::services::failure::panic_message;
use crate::services::record::lock;

/// The host's lifetime events, and the way to stop the application from
/// anywhere (as .NET's `IHostApplicationLifetime`).
///
/// Cheap to clone; resolvable from the container and reachable from every
/// service's context. Each event is both awaitable and available as a
/// [`CancellationToken`] that is cancelled when the event happens.
///
/// | event | happens |
/// |---|---|
/// | started | after every `start` and every `started` hook |
/// | stopping | after every `stopping` hook, before any `stop` |
/// | stopped | after every `stop` and `stopped` hook |
///
/// # Callbacks
///
/// A task that awaits [`stopped`](Self::stopped) races the end of the
/// process: once `run()` returns, `main` returns, and the task may never be
/// polled again. A callback registered with [`on_started`](Self::on_started),
/// [`on_stopping`](Self::on_stopping) or [`on_stopped`](Self::on_stopped) (as
/// .NET's `ApplicationStarted.Register`) is run *by the host*, which awaits
/// it before moving on:
///
/// | callbacks | run | bounded by |
/// |---|---|---|
/// | `on_started` | right after the started event, before `start()` returns (and before `Application started.`) | the startup timeout; a stop request |
/// | `on_stopping` | right after the stopping event, before any `stop` | the shutdown timeout |
/// | `on_stopped` | right after the stopped event, before the container's disposal and before `stop()` returns | the shutdown timeout |
///
/// Callbacks of one event run one at a time, in registration order. Each is
/// named by its event, its number and where it was registered
/// (`on_stopped callback #2 (src/main.rs:14:5)`). A callback that panics is
/// logged with that name, the others still run, and the panic fails the
/// phase: `start()` (rolled back, as for a `started` hook) or `stop()`
/// (exit code 1). A callback still running at the deadline is dropped and
/// named among what was still running (later ones each get one poll, so a
/// plain closure still runs). A callback registered once its event's
/// callbacks have been run is spawned at once on a task of its own, which
/// nothing awaits (as `CancellationToken.Register` runs it at once), or run
/// on the calling thread outside a runtime. A host dropped without being
/// stopped runs no `on_stopping` or `on_stopped` callback.
///
/// # Examples
///
/// ```
/// use host_core::ApplicationLifetime;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let lifetime = ApplicationLifetime::new();
/// let waiter = tokio::spawn(lifetime.stop_requested());
/// lifetime.stop_application_with_code(4);
/// lifetime.stop_application(); // idempotent: the first request wins
/// waiter.await.unwrap();
/// assert_eq!(lifetime.requested_exit_code(), Some(4));
/// # }
/// ```
#[derive(Clone)]
pub struct ApplicationLifetime {
    inner: Arc<Inner>,
}

struct Inner {
    started: CancellationToken,
    stopping: CancellationToken,
    stopped: CancellationToken,
    stop_requested: CancellationToken,
    exit_code: OnceLock<Option<i32>>,
    /// Indexed by [`Event`].
    callbacks: [Mutex<Callbacks>; 3],
}

/// A lifetime event that has callbacks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Event {
    Started = 0,
    Stopping = 1,
    Stopped = 2,
}

impl Event {
    fn registration(self) -> &'static str {
        match self {
            Event::Started => "on_started",
            Event::Stopping => "on_stopping",
            Event::Stopped => "on_stopped",
        }
    }
}

/// The callbacks of one event.
#[derive(Default)]
struct Callbacks {
    waiting: Vec<Callback>,
    /// Registered so far, for the numbers in their names.
    registered: usize,
    /// The host has taken the callbacks to run them: later ones run at once.
    taken: bool,
}

/// One registered callback, named for logs and errors.
pub(crate) struct Callback {
    pub(crate) name: Arc<str>,
    make: Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>,
}

impl Callback {
    /// The callback's future, with a panic (in the closure or in the future)
    /// caught and returned as its message.
    pub(crate) fn call(self) -> BoxFuture<'static, Result<(), String>> {
        match std::panic::catch_unwind(AssertUnwindSafe(self.make)) {
            Ok(future) => AssertUnwindSafe(future)
                .catch_unwind()
                .map(|outcome| outcome.map_err(|payload| panic_message(payload.as_ref())))
                .boxed(),
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                Box::pin(std::future::ready(Err(message)))
            }
        }
    }
}

impl ApplicationLifetime {
    /// A lifetime whose events have not happened yet. The host makes its own;
    /// this is for tests of code that takes a lifetime.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                started: CancellationToken::new(),
                stopping: CancellationToken::new(),
                stopped: CancellationToken::new(),
                stop_requested: CancellationToken::new(),
                exit_code: OnceLock::new(),
                callbacks: Default::default(),
            }),
        }
    }

    /// Asks the host to stop gracefully. Idempotent, callable from any
    /// service, handler or thread. The process exits 0 unless a failure
    /// happens.
    pub fn stop_application(&self) {
        self.request_stop(None);
    }

    /// Asks the host to stop gracefully, and the process to exit with `code`
    /// unless a failure happens (a failure's code wins). Only the first
    /// request counts.
    ///
    /// An exit code is a byte: a `code` outside `0..=255` is refused when
    /// the host turns it into the process's exit code
    /// ([`Host::run_until_exit`](crate::Host::run_until_exit),
    /// [`HostBuilder::run`](crate::HostBuilder::run)), which logs an error
    /// naming it and exits with 1 instead; it is never wrapped around (256
    /// would read as success). [`requested_exit_code`](Self::requested_exit_code)
    /// returns it as given.
    pub fn stop_application_with_code(&self, code: i32) {
        self.request_stop(Some(code));
    }

    fn request_stop(&self, code: Option<i32>) {
        if self.inner.exit_code.set(code).is_ok() {
            self.inner.stop_requested.cancel();
        }
    }

    /// Whether a stop has been requested (by a service, a handler or a signal).
    pub fn is_stop_requested(&self) -> bool {
        self.inner.stop_requested.is_cancelled()
    }

    /// The exit code the first stop request asked for, if any.
    pub fn requested_exit_code(&self) -> Option<i32> {
        self.inner.exit_code.get().copied().flatten()
    }

    /// Completes when a stop has been requested.
    pub fn stop_requested(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.stop_requested.clone().cancelled_owned()
    }

    /// Completes when the host has started: every `start` and `started` hook
    /// has returned.
    pub fn started(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.started.clone().cancelled_owned()
    }

    /// Completes when the host is stopping: every `stopping` hook has returned
    /// and no `stop` has been called yet.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.stopping.clone().cancelled_owned()
    }

    /// Completes when the host has stopped: every `stop` and `stopped` hook
    /// has returned or timed out.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.stopped.clone().cancelled_owned()
    }

    /// A token cancelled when the host has started. Cancelling the returned
    /// token does not affect the host.
    pub fn started_token(&self) -> CancellationToken {
        self.inner.started.child_token()
    }

    /// A token cancelled when the host is stopping. Cancelling the returned
    /// token does not affect the host.
    pub fn stopping_token(&self) -> CancellationToken {
        self.inner.stopping.child_token()
    }

    /// A token cancelled when the host has stopped. Cancelling the returned
    /// token does not affect the host.
    pub fn stopped_token(&self) -> CancellationToken {
        self.inner.stopped.child_token()
    }

    /// Whether the started event has happened.
    pub fn is_started(&self) -> bool {
        self.inner.started.is_cancelled()
    }

    /// Whether the stopping event has happened.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.is_cancelled()
    }

    /// Whether the stopped event has happened.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.is_cancelled()
    }

    /// Registers `callback` to run when the host has started: after the
    /// started event, before [`Host::start`](crate::Host::start) returns.
    /// See [Callbacks](#callbacks) for the order, the bound and panics.
    ///
    /// A plain closure is written `|| async move { ... }`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), host_core::HostError> {
    /// let mut builder = host_core::Host::builder();
    /// builder.handle_signals(false);
    /// let mut host = builder.build()?;
    /// host.lifetime().on_started(|| async { tracing::info!("ready") });
    /// host.lifetime().on_stopped(|| async { tracing::info!("goodbye") });
    /// host.start().await?; // "ready" has been logged
    /// host.stop().await?; // "goodbye" has been logged
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn on_started<F, Fut>(&self, callback: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.register(Event::Started, Location::caller(), callback);
    }

    /// Registers `callback` to run when the host is stopping: after the
    /// stopping event, before any service's `stop`. See
    /// [Callbacks](#callbacks).
    #[track_caller]
    pub fn on_stopping<F, Fut>(&self, callback: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.register(Event::Stopping, Location::caller(), callback);
    }

    /// Registers `callback` to run when the host has stopped: after the
    /// stopped event, before the container's disposal; it has run when
    /// [`Host::stop`](crate::Host::stop) (or `run`) returns, so that what it
    /// logs or flushes is never cut short by the end of the process. See
    /// [Callbacks](#callbacks).
    #[track_caller]
    pub fn on_stopped<F, Fut>(&self, callback: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.register(Event::Stopped, Location::caller(), callback);
    }

    fn register<F, Fut>(&self, event: Event, at: &Location<'_>, callback: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut callbacks = lock(&self.inner.callbacks[event as usize]);
        callbacks.registered += 1;
        let callback = Callback {
            name: format!(
                "{} callback #{} ({at})",
                event.registration(),
                callbacks.registered
            )
            .into(),
            make: Box::new(move || callback().boxed()),
        };
        if !callbacks.taken {
            callbacks.waiting.push(callback);
            return;
        }
        drop(callbacks);
        run_late(callback);
    }

    /// The callbacks of `event`, in registration order; from now on a new
    /// one runs at once.
    pub(crate) fn take_callbacks(&self, event: Event) -> Vec<Callback> {
        let mut callbacks = lock(&self.inner.callbacks[event as usize]);
        callbacks.taken = true;
        std::mem::take(&mut callbacks.waiting)
    }

    pub(crate) fn stop_requested_token(&self) -> &CancellationToken {
        &self.inner.stop_requested
    }

    pub(crate) fn notify_started(&self) {
        self.inner.started.cancel();
    }

    pub(crate) fn notify_stopping(&self) {
        self.inner.stopping.cancel();
    }

    pub(crate) fn notify_stopped(&self) {
        self.inner.stopped.cancel();
    }
}

/// Runs a callback registered after its event's callbacks have run: on a
/// task of its own, or on this thread outside a runtime.
fn run_late(callback: Callback) {
    let name = callback.name.clone();
    let call = callback.call();
    let report = async move {
        if let Err(message) = call.await {
            tracing::error!(target: LIFETIME_TARGET, "`{name}` panicked: {message}");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(report)),
        Err(_) => futures::executor::block_on(report),
    }
}

impl Default for ApplicationLifetime {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ApplicationLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplicationLifetime")
            .field("started", &self.is_started())
            .field("stop_requested", &self.is_stop_requested())
            .field("stopping", &self.is_stopping())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_complete_their_futures_and_tokens() {
        let lifetime = ApplicationLifetime::new();
        let started = tokio::spawn(lifetime.started());
        let token = lifetime.stopping_token();
        assert!(!lifetime.is_started());
        lifetime.notify_started();
        started.await.unwrap();
        assert!(lifetime.is_started());
        assert!(!token.is_cancelled());
        lifetime.notify_stopping();
        assert!(token.is_cancelled());
        lifetime.notify_stopped();
        lifetime.stopped().await;
    }

    #[test]
    fn cancelling_a_handed_out_token_does_not_fire_the_event() {
        let lifetime = ApplicationLifetime::new();
        lifetime.stopping_token().cancel();
        assert!(!lifetime.is_stopping());
    }

    #[test]
    fn the_first_stop_request_wins() {
        let lifetime = ApplicationLifetime::new();
        assert!(!lifetime.is_stop_requested());
        lifetime.stop_application();
        lifetime.stop_application_with_code(7);
        assert!(lifetime.is_stop_requested());
        assert_eq!(lifetime.requested_exit_code(), None);

        let coded = ApplicationLifetime::new();
        coded.stop_application_with_code(7);
        coded.stop_application_with_code(9);
        assert_eq!(coded.requested_exit_code(), Some(7));
    }
}
