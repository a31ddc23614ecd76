//! The one layer host-web puts around the application: each request gets
//! its [`RequestServices`]; a panicking handler answers 500 and is logged;
//! the request's scope, if it made one, is closed once the handler has
//! answered, or on a tracked task if the request is dropped before (see
//! [`Drain::scopes`](crate::scope::Drain)). One layer, not three, and no box
//! per request: each layer and each allocation costs every request, whether
//! it injects or not.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::MatchedPath;
use axum::http::{Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use futures::future::{BoxFuture, CatchUnwind};
use pin_project_lite::pin_project;
use tokio_util::task::TaskTracker;
use tower::{Layer, Service};

use crate::app::WEB_TARGET;
use crate::scope::{self, RequestServices, ServerContext};

#[derive(Clone)]
pub(crate) struct RequestLayer {
    server: Arc<ServerContext>,
}

impl RequestLayer {
    pub(crate) fn new(server: ServerContext) -> Self {
        Self {
            server: Arc::new(server),
        }
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestService {
            server: self.server.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub(crate) struct RequestService<S> {
    server: Arc<ServerContext>,
    inner: S,
}

impl<S, B> Service<Request<B>> for RequestService<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequestFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let services = RequestServices::new(self.server.clone());
        request.extensions_mut().insert(services.clone());
        let route = RouteOf::new(&request);
        RequestFuture {
            response: AssertUnwindSafe(self.inner.call(request)).catch_unwind(),
            services: Some(services),
            closing: None,
            route,
        }
    }
}

pin_project! {
    /// The handler's answer, then (if the request made a scope) the scope's
    /// close, then the answer.
    pub(crate) struct RequestFuture<F, E> {
        #[pin]
        response: CatchUnwind<AssertUnwindSafe<F>>,
        services: Option<RequestServices>,
        closing: Option<(Closing, Option<Result<Response, E>>)>,
        route: RouteOf,
    }
}

/// Which request a handler was answering, for the line that logs its
/// panic. Reference-counted clones, no allocation: it is taken for every
/// request, and used only if its handler panics.
struct RouteOf {
    method: Method,
    /// The route's pattern (`/users/{id}`), when the router matched one.
    matched: Option<MatchedPath>,
    /// The path asked for, when no route matched (the fallback).
    uri: Option<Uri>,
}

impl RouteOf {
    fn new<B>(request: &Request<B>) -> Self {
        let matched = request.extensions().get::<MatchedPath>().cloned();
        Self {
            method: request.method().clone(),
            uri: matched.is_none().then(|| request.uri().clone()),
            matched,
        }
    }

    fn path(&self) -> &str {
        match (&self.matched, &self.uri) {
            (Some(matched), _) => matched.as_str(),
            (None, Some(uri)) => uri.path(),
            (None, None) => "?",
        }
    }
}

/// A scope's close in progress. Dropped before its end (the connection
/// closed while a disposal was awaited), it finishes on a tracked task:
/// dropping the close half-way would skip the disposals not yet run.
struct Closing {
    future: Option<BoxFuture<'static, ()>>,
    scopes: TaskTracker,
}

impl Future for Closing {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let future = self.future.as_mut().expect("polled after completion");
        ready!(future.as_mut().poll(cx));
        self.future = None;
        Poll::Ready(())
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            scope::close_later(&self.scopes, future);
        }
    }
}

impl<F, E> Future for RequestFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some((closing, answer)) = this.closing.as_mut() {
            ready!(Pin::new(closing).poll(cx));
            return Poll::Ready(answer.take().expect("polled after completion"));
        }
        let answer = match ready!(this.response.as_mut().poll(cx)) {
            Ok(answer) => answer,
            Err(panic) => Ok(panicked(this.route, panic)),
        };
        // Closed after a panic too: async disposals are awaited.
        match this.services.take().and_then(RequestServices::into_scope) {
            None => Poll::Ready(answer),
            // Nothing to dispose (a handler that injected only singletons):
            // the drop closes it, with no future to allocate.
            Some((scope, _)) if !scope.has_disposals() => {
                drop(scope);
                Poll::Ready(answer)
            }
            Some((scope, scopes)) => {
                let mut closing = Closing {
                    future: Some(Box::pin(scope::close(scope))),
                    scopes,
                };
                if Pin::new(&mut closing).poll(cx).is_ready() {
                    return Poll::Ready(answer);
                }
                *this.closing = Some((closing, Some(answer)));
                Poll::Pending
            }
        }
    }
}

/// A handler panicked: 500, and the panic is logged (never silent), naming
/// the method and the route, which is what tells one handler from another.
fn panicked(route: &RouteOf, panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned());
    let (method, path) = (&route.method, route.path());
    tracing::error!(target: WEB_TARGET, %method, route = path,
        "the handler of {method} {path} panicked: {message}");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
}
