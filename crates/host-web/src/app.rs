//! The application's router, with host-web's parts: health endpoints, the
//! request's services (scope, shutdown token), panics caught, and request
//! tracing when it would be seen.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use host_core::{ApplicationLifetime, HostEnvironment, ServiceStates};
use host_di::{DiError, Options, ServiceProvider};
use tower_http::trace::TraceLayer;

use crate::health::{CheckSlot, Health};
use crate::layer::RequestLayer;
use crate::scope::{Drain, ServerContext};
use crate::{HealthCheck, WebOptions};

/// The tracing target of host-web's own messages.
pub(crate) const WEB_TARGET: &str = "host::web";

/// Routes added with `builder.web(...)`, applied in order.
pub(crate) struct Routes(pub(crate) Box<dyn Fn(Router) -> Router + Send + Sync>);

/// The router the server serves (and the test client calls): the
/// application's routes, the health endpoints, then the layers.
pub(crate) fn build(provider: &ServiceProvider, drain: Drain) -> Result<Router, DiError> {
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
            checks: provider
                .get_all::<dyn HealthCheck>()?
                .into_iter()
                .map(CheckSlot::new)
                .collect(),
            timeout: options.health.check_timeout,
            cache_for: options.health.cache_for,
            detailed: options
                .health
                .detailed_errors
                .unwrap_or_else(|| environment.is_development()),
        };
        let health = Arc::new(health);
        let live = health.clone();
        let startup = health.clone();
        router = router
            .route(
                &options.health.live_path,
                get(move || std::future::ready(live.live())),
            )
            .route(
                &options.health.startup_path,
                get(move || std::future::ready(startup.startup())),
            )
            .route(
                &options.health.ready_path,
                get(move || {
                    let health = health.clone();
                    async move { health.ready().await }
                }),
            );
    }
    let router = router.layer(RequestLayer::new(ServerContext {
        root: provider.clone(),
        drain,
    }));
    let router = if traces_requests(&options) {
        router.layer(TraceLayer::new_for_http())
    } else {
        router
    };
    // Turns every route into its service once, not on each request.
    Ok(router.with_state(()))
}

/// Whether requests get `tower-http`'s trace layer: as configured, or (by
/// default) when its debug events would be seen at start, since the layer
/// costs every request about a microsecond even when nothing is printed.
fn traces_requests(options: &WebOptions) -> bool {
    options
        .trace_requests
        .unwrap_or_else(|| tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG))
}
