//! The request's services: a DI scope created on first use, and what the
//! server shares with every request (its drain's tokens and trackers).

use std::fmt;
use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use host_di::{Scope, ServiceProvider};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::InjectRejection;
use crate::app::WEB_TARGET;

/// The services of one request: its scope's provider, created on first use,
/// so that a request that injects nothing pays for no scope.
///
/// An extractor: `async fn handler(services: RequestServices)`; most handlers
/// use [`Inject`](crate::Inject) instead.
#[derive(Clone)]
pub struct RequestServices {
    inner: Arc<Lazy>,
}

struct Lazy {
    server: Arc<ServerContext>,
    scope: OnceLock<Scope>,
}

/// What every request of one server shares.
#[derive(Debug)]
pub(crate) struct ServerContext {
    pub(crate) root: ServiceProvider,
    pub(crate) drain: Drain,
}

/// The server's drain, as requests see it: the tokens that say when it
/// begins and when it ends, and the trackers the stop waits on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Drain {
    /// Fired when the drain begins (see [`Shutdown`](crate::Shutdown)).
    pub(crate) draining: CancellationToken,
    /// Fired at the drain's bound: what is still open is closed.
    pub(crate) closing: CancellationToken,
    /// Connections, HTTP/2 streams and [`Upgrades`](crate::Upgrades): the
    /// drain waits for them until its bound.
    pub(crate) connections: TaskTracker,
    /// The closes of request scopes whose request was dropped unfinished
    /// (a client gone, a stream reset, the drain's bound): the stop awaits
    /// them after the connections, before the container is disposed.
    pub(crate) scopes: TaskTracker,
}

/// Runs `closing` (a request scope's close) to its end on a task the stop
/// awaits, so that its async disposals run although the request that owned
/// it is gone. Outside a runtime it is dropped: a scope not yet closing then
/// runs its sync disposals (and host-di names the async ones it skipped).
pub(crate) fn close_later(
    scopes: &TaskTracker,
    closing: impl Future<Output = ()> + Send + 'static,
) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            scopes.spawn_on(closing, &runtime);
        }
        Err(_) => tracing::warn!(target: WEB_TARGET,
            "a request scope was left outside the runtime: its async disposals cannot run"),
    }
}

/// Closes `scope`, awaiting its async disposals.
pub(crate) async fn close(scope: Scope) {
    scope.close().await;
}

impl RequestServices {
    /// One allocation per request; the scope itself waits for first use.
    pub(crate) fn new(server: Arc<ServerContext>) -> Self {
        Self {
            inner: Arc::new(Lazy {
                server,
                scope: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn drain(&self) -> &Drain {
        &self.inner.server.drain
    }

    /// The request scope's provider (created now if it was not): scoped
    /// services resolved from it live until the response is produced.
    pub fn provider(&self) -> &ServiceProvider {
        self.inner
            .scope
            .get_or_init(|| self.inner.server.root.create_scope())
            .provider()
    }

    /// The scope, if the request created one, for the request layer to
    /// close (disposing its services), with the tracker of scope closes.
    /// `None` too if a clone was kept past the handler (moved into a
    /// spawned task): the last clone's drop closes the scope then.
    pub(crate) fn into_scope(self) -> Option<(Scope, TaskTracker)> {
        let mut lazy = Arc::try_unwrap(self.inner).ok()?;
        let scope = lazy.scope.take()?;
        Some((scope, lazy.server.drain.scopes.clone()))
    }
}

impl Drop for Lazy {
    /// The request ended without the layer closing the scope: its future
    /// was dropped (the client went away, an HTTP/2 stream was reset, the
    /// drain's bound closed the connection) or a clone outlived it. The
    /// scope is closed on a task the server's stop awaits, so its async
    /// disposals run before the container is disposed.
    fn drop(&mut self) {
        if let Some(scope) = self.scope.take() {
            close_later(&self.server.drain.scopes, close(scope));
        }
    }
}

impl fmt::Debug for RequestServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestServices")
            .field("scope_created", &self.inner.scope.get().is_some())
            .finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestServices {
    type Rejection = InjectRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestServices>()
            .cloned()
            .ok_or_else(InjectRejection::no_layer)
    }
}
