//! The application lifetime: started, stopping and stopped events, and the
//! request to stop.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

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
