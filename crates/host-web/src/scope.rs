//! The request's services: a DI scope created on first use, and the
//! server's shutdown token.

use std::fmt;
use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use host_di::{Scope, ServiceProvider};
use tokio_util::sync::CancellationToken;

use crate::InjectRejection;

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
    /// Fired when the drain begins (see [`Shutdown`](crate::Shutdown)).
    pub(crate) shutdown: CancellationToken,
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

    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.inner.server.shutdown
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
    /// close (disposing its services). `None` too if a clone was kept past
    /// the handler (moved into a spawned task): dropping that disposes.
    pub(crate) fn into_scope(self) -> Option<Scope> {
        Arc::try_unwrap(self.inner)
            .ok()
            .and_then(|lazy| lazy.scope.into_inner())
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
