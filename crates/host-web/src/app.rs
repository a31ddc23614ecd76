//! The application's router, with host-web's parts: health endpoints, the
//! request scope, the shutdown token, request tracing, panics caught.

use std::any::Any;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use host_core::{ApplicationLifetime, HostEnvironment, ServiceStates};
use host_di::{DiError, Options, ServiceProvider};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::health::Health;
use crate::scope::RequestScopeLayer;
use crate::{HealthCheck, Shutdown, WebOptions};

/// The tracing target of host-web's own messages.
pub(crate) const WEB_TARGET: &str = "host::web";

/// Routes added with `builder.web(...)`, applied in order.
pub(crate) struct Routes(pub(crate) Box<dyn Fn(Router) -> Router + Send + Sync>);

/// The router the server serves (and the test client calls): the
/// application's routes, the health endpoints, then the layers.
pub(crate) fn build(
    provider: &ServiceProvider,
    shutdown: CancellationToken,
) -> Result<Router, DiError> {
    let options = provider.get::<Options<WebOptions>>()?;
    let mut router = Router::new();
    for routes in provider.get_all::<Routes>()? {
        router = (routes.0)(router);
    }
    if options.health.enabled {
        let environment = provider.get::<HostEnvironment>()?;
        let health = Health {
            lifetime: provider.get::<ApplicationLifetime>()?,
            states: provider.get::<ServiceStates>()?,
            checks: provider.get_all::<dyn HealthCheck>()?,
            timeout: options.health.check_timeout,
            detailed: options
                .health
                .detailed_errors
                .unwrap_or_else(|| environment.is_development()),
        };
        let health = Arc::new(health);
        router = router
            .route(&options.health.live_path, get(|| async { Health::live() }))
            .route(
                &options.health.ready_path,
                get(move || {
                    let health = health.clone();
                    async move { health.ready().await }
                }),
            );
    }
    Ok(router
        .layer(Extension(Shutdown::new(shutdown)))
        .layer(RequestScopeLayer::new(provider.clone()))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(TraceLayer::new_for_http()))
}

/// A handler panicked: 500, and the panic is logged (never silent).
fn panicked(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned());
    tracing::error!(target: WEB_TARGET, "a request handler panicked: {message}");
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal server error",
    )
        .into_response()
}
