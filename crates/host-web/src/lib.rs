//! Axum as a hosted service of the generic host, as Kestrel is in ASP.NET:
//! the web server runs beside the background services, in one host, with
//! dependency injection in handlers, health endpoints and a bounded
//! graceful drain.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::Json;
//! use axum::routing::get;
//! use host_core::Host;
//! use host_web::{Inject, WebHostBuilderExt};
//!
//! struct Counter(std::sync::atomic::AtomicU64);
//!
//! async fn count(Inject(counter): Inject<Arc<Counter>>) -> Json<u64> {
//!     Json(counter.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let mut builder = Host::builder();
//!     builder.args(std::env::args());
//!     builder.services().add_instance(Arc::new(Counter(Default::default())));
//!     builder.web(|app| app.route("/count", get(count)));
//!     builder.run().await // serves 127.0.0.1:8080 unless `web.urls` says otherwise
//! }
//! ```
//!
//! # The server's life
//!
//! - **Start**: after every other hosted service's `start` has returned
//!   (background services return at once, so workers and server run side by
//!   side; under `services_start_concurrently` every service, the server
//!   included, starts at once). It binds every configured address first:
//!   an address in use
//!   fails the start (exit code 1), naming the address, and what had
//!   started is stopped again. A malformed address is invalid configuration
//!   (exit code 2, nothing started).
//! - **Ready**: `/health/ready` answers 200 once the host has started, while
//!   every hosted service required for readiness is healthy (running, ready,
//!   paused, or completed without error) and every [`HealthCheck`] passes
//!   (degraded still counts as ready).
//! - **Stop**, first of all services (at once with the others under
//!   `services_stop_concurrently`): readiness answers 503 from the stop
//!   request on; the server keeps serving for
//!   [`shutdown_delay`](WebOptions::shutdown_delay), then stops accepting
//!   (new connections are refused), fires [`Shutdown`] for streaming
//!   handlers and upgraded connections, lets requests in flight (and
//!   upgraded connections run through [`Upgrades`]) finish within
//!   [`drain_timeout`](WebOptions::drain_timeout) (default: what is left of
//!   the host's shutdown timeout), and closes what is still open. An open
//!   connection never makes the host hang. Then it awaits the closes of
//!   the request scopes whose requests were dropped unfinished, so that
//!   their async disposals run before the host disposes the container.
//!
//! # Dependency injection in handlers
//!
//! Each request gets a DI scope, created when a handler first resolves
//! something ([`Inject`], or [`RequestServices::provider`]) and closed,
//! disposing its scoped services, once the handler has answered (or
//! panicked). A request dropped unfinished (the client gone, an HTTP/2
//! reset, the drain's bound) has its scope closed on a task the server's
//! stop awaits, async disposals included. A request that resolves nothing
//! creates no scope.
//!
//! # Health
//!
//! `/health/live` answers 503 while a service is hung (missed its heartbeat
//! deadline) with no restart coming, naming it, and 200 otherwise;
//! `/health/startup` answers 200 from the host's start on (the stop
//! included); `/health/ready` answers with a JSON body:
//!
//! ```json
//! {"status":"unhealthy","host":"started",
//!  "services":[{"name":"app::Worker","state":"restarting","required":true,"restarts":2},
//!              {"name":"host_web::WebServer","state":"running","required":true,"restarts":0}],
//!  "checks":[{"name":"app::Database","status":"healthy","duration_ms":0.4}]}
//! ```
//!
//! A check's result is reused for
//! [`cache_for`](HealthOptions::cache_for) (default 2 s), and a check never
//! runs twice at once; the host's state is read per request, so readiness
//! turns 503 the moment the stop begins. Error text (a failed service's
//! error, its last failure, a check's description) is in the body only in
//! Development or with `web.health.detailed_errors = true`.
//!
//! # Dependencies
//!
//! | crate | why |
//! |---|---|
//! | `axum` | the router, extractors and responses applications write |
//! | `hyper`, `hyper-util` | serving connections one by one, so that they can be drained and closed |
//! | `tower`, `tower-http` | the request layer; request tracing (`tower-http`) |
//! | `host-core`, `host-di`, `host-config` | the hosted service, injection, the `web` section |
//! | `tokio`, `tokio-util` | sockets, tasks, timers; tokens and the connection tracker |
//! | `serde`, `serde_json` | the options and the health report |
//! | `http-body-util` | collecting bodies in the [`TestClient`] |
//! | `humantime` | a service's next run in the readiness report, in RFC 3339 (already a dependency of `host-core`) |
//! | `futures`, `async-trait`, `anyhow`, `parking_lot`, `tracing` | futures, [`HealthCheck`], start errors, locks, logs |

#![doc(test(attr(deny(warnings))))]

mod addresses;
mod app;
mod cluster_health;
mod extension;
mod health;
mod inject;
mod layer;
mod options;
mod scope;
mod server;
mod shutdown;
mod testing;
mod time;
mod upgrades;

pub use addresses::ServerAddresses;
pub use cluster_health::LeaseStoreHealthCheck;
pub use extension::{WEB_SECTION, WebHostBuilderExt};
pub use health::{HealthCheck, HealthCheckResult, HealthStatus};
pub use inject::{Inject, InjectRejection};
pub use options::{DEFAULT_URL, HealthOptions, WebOptions};
pub use scope::RequestServices;
pub use shutdown::Shutdown;
pub use testing::{TestClient, TestResponse};
pub use upgrades::Upgrades;

/// `async_trait`, for implementing [`HealthCheck`].
pub use async_trait::async_trait;
/// `axum`, re-exported so that routes need no version of their own.
pub use axum;

/// What handlers and routes use most, in one import:
/// `use host_web::prelude::*;` (or `host::web::prelude::*`).
pub mod prelude {
    pub use crate::{
        HealthCheck, HealthCheckResult, HealthStatus, Inject, RequestServices, Shutdown, Upgrades,
        WebHostBuilderExt,
    };
    pub use axum::extract::{Path, Query};
    pub use axum::http::StatusCode;
    pub use axum::response::{IntoResponse, Response};
    pub use axum::routing::{delete, get, patch, post, put};
    pub use axum::{Json, Router};
}
