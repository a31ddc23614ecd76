//! A generic host for Rust services, modelled on .NET's Generic Host: one
//! dependency for the host ([`host_core`]), its service container
//! ([`host_di`]) and, behind features, its integrations.
//!
//! .NET's canonical background service, a loop that logs every second until
//! the host stops, with `AddHostedService<MyBackgroundService>()`, reads
//! line by line:
//!
//! - `BackgroundService` is a trait; `ExecuteAsync(stoppingToken)` is
//!   `execute(&self, ctx)`, and `ctx` carries the stopping token.
//! - `while (!token.IsCancellationRequested) { await Task.Delay(1s, token); ... }`
//!   is `while ctx.delay(1s).await { ... }`: `delay` returns `false`, early,
//!   once the service is asked to stop (no exception to catch).
//! - `ILogger<T>` injected by the constructor is the `tracing` macros: the
//!   event's target is the module, and the host's `service` span names the
//!   service (see [`host_core`]'s crate docs, *Logging*). With nothing to
//!   inject, the constructor is `#[derive(Injectable)]` on a unit struct.
//! - `builder.Services.AddHostedService<T>()` is
//!   `builder.add_hosted_service::<T>()`.
//!
//! ```no_run
//! use host::prelude::*;
//!
//! #[derive(Injectable)]
//! struct MyBackgroundService;
//!
//! #[async_trait]
//! impl BackgroundService for MyBackgroundService {
//!     async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
//!         self.tick_method(&ctx).await
//!     }
//! }
//!
//! impl MyBackgroundService {
//!     async fn tick_method(&self, ctx: &ServiceContext) -> Result<(), ServiceError> {
//!         while ctx.delay(Duration::from_secs(1)).await {
//!             let thread = std::thread::current().id();
//!             tracing::warn!("hello from service debug thread:{thread:?}");
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let mut builder = Host::builder();
//!     builder.add_hosted_service::<MyBackgroundService>();
//!     builder.run().await
//! }
//! ```
//!
//! Its dependencies: `host`, `tokio` (features `macros` and
//! `rt-multi-thread`, for `#[tokio::main]`) and `tracing`. The prelude
//! brings the rest: `async_trait`, `Duration`, `Arc`, [`CancellationToken`],
//! [`HostError`], and the error helpers [`ServiceError`] is built on
//! (`bail!`, `anyhow!`, `Context`).
//!
//! For a loop whose period must not drift by the time each round takes, use
//! [`ServiceContext::every`]: `let mut every = ctx.every(period); while every.tick().await { ... }`.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `derive` | yes | `#[derive(Injectable)]`, constructor injection without glue |
//! | `web` | no | [`web`]: axum as a hosted service (`builder.web(...)`), `Inject<T>` in handlers, health endpoints, a bounded graceful drain |
//! | `cluster` | no | [`cluster`]: the lease and claim stores with fencing tokens, the PostgreSQL store among them (`cluster.postgres.url`) and its fence, the Redis store (`cluster.redis.url`) and the etcd store (`cluster.etcd.url`); cluster singletons themselves need no feature (the file lock is the default store) |
//! | `testing` | no | [`testing`]: the in-process test host (`TestHost`): events and log lines recorded, bounded waits for a service's state; for `[dev-dependencies]` (`host = { ..., features = ["testing"] }`) |
#![doc(test(attr(deny(warnings))))]

pub use host_core::*;

/// Configuration: layers, typed options, validation, reload.
pub mod config {
    pub use host_config::*;
}

/// The web server: axum as a hosted service, DI in handlers, health, drain.
#[cfg(feature = "web")]
pub mod web {
    pub use host_web::*;
}

/// Scale-out: lease stores with fencing tokens (the `cluster` feature).
#[cfg(feature = "cluster")]
pub mod cluster {
    pub use host_cluster::*;
}

/// The in-process test host: a host built for a test, its events and log
/// lines recorded, bounded waits for a service's state.
#[cfg(feature = "testing")]
pub mod testing {
    pub use host_testing::*;
}

/// The service container: registration, resolution, scopes, disposal.
pub mod di {
    pub use host_di::*;
}

/// What almost every application uses, in one import.
pub mod prelude {
    pub use host_config::{Configuration, OptionsMonitor, OptionsSnapshot, ValidationError};
    pub use host_core::{
        ApplicationLifetime, BackgroundService, BackgroundServiceFailure, CancellationToken,
        ClusterWide, Context, FencingToken, Host, HostBuilder, HostEnvironment, HostError,
        HostOptions, HostedService, HostedServiceCollectionExt, LifecycleContext, Overlap,
        PeriodicService, Restart, RunContext, Schedule, ServiceContext, ServiceControl,
        ServiceError, ServiceState, ServiceStates, Singleton, Unrecoverable, anyhow, async_trait,
        bail,
    };
    pub use host_di::{Injectable, Options, ServiceCollection, ServiceProvider};
    #[cfg(feature = "web")]
    pub use host_web::{Inject, Shutdown, Upgrades, WebHostBuilderExt};
    pub use std::sync::Arc;
    pub use std::time::Duration;
}
