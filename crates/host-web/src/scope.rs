//! The request scope: a tower layer that gives each request a lazily
//! created DI scope, closed (its scoped services disposed) when the handler
//! has answered.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::http::Request;
use axum::http::request::Parts;
use futures::FutureExt;
use futures::future::BoxFuture;
use host_di::{Scope, ServiceProvider};
use tower::{Layer, Service};

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
    root: ServiceProvider,
    scope: OnceLock<Scope>,
}

impl RequestServices {
    fn new(root: ServiceProvider) -> Self {
        Self {
            inner: Arc::new(Lazy {
                root,
                scope: OnceLock::new(),
            }),
        }
    }

    /// The request scope's provider (created now if it was not): scoped
    /// services resolved from it live until the response is produced.
    pub fn provider(&self) -> &ServiceProvider {
        self.inner
            .scope
            .get_or_init(|| self.inner.root.create_scope())
            .provider()
    }

    /// Closes the scope if the request created one, disposing its services.
    async fn close(self) {
        // The extractors' clones are gone once the handler has answered;
        // if one was kept (moved into a spawned task), dropping it disposes.
        if let Ok(lazy) = Arc::try_unwrap(self.inner)
            && let Some(scope) = lazy.scope.into_inner()
        {
            scope.close().await;
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

/// Gives every request its [`RequestServices`].
#[derive(Clone)]
pub(crate) struct RequestScopeLayer {
    root: ServiceProvider,
}

impl RequestScopeLayer {
    pub(crate) fn new(root: ServiceProvider) -> Self {
        Self { root }
    }
}

impl<S> Layer<S> for RequestScopeLayer {
    type Service = RequestScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestScopeService {
            root: self.root.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub(crate) struct RequestScopeService<S> {
    root: ServiceProvider,
    inner: S,
}

impl<S, B> Service<Request<B>> for RequestScopeService<S>
where
    S: Service<Request<B>> + Send,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let services = RequestServices::new(self.root.clone());
        request.extensions_mut().insert(services.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            // A handler that panics still gets its scope closed (async
            // disposals awaited); the panic then goes on to the panic layer.
            let response = AssertUnwindSafe(response).catch_unwind().await;
            services.close().await;
            response.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}
