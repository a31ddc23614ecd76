//! The generic host: build a [`Host`] from a [`HostBuilder`], register
//! [`HostedService`]s and [`BackgroundService`]s, and let the host start
//! them, watch them, and stop them gracefully — as .NET's Generic Host.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use std::time::Duration;
//! use host_core::{BackgroundService, Host, ServiceContext, ServiceError, async_trait};
//!
//! struct Worker;
//!
//! #[async_trait]
//! impl BackgroundService for Worker {
//!     async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
//!         let mut every = ctx.every(Duration::from_secs(1));
//!         while every.tick().await {
//!             tracing::warn!("hello from service");
//!         }
//!         Ok(()) // asked to stop
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> ExitCode {
//!     let mut builder = Host::builder();
//!     builder.add_hosted_service_instance(Worker);
//!     builder.run().await
//! }
//! ```
//!
//! # The life of a host
//!
//! `build()` validates the registrations and constructs the hosted services
//! (exit code 2 if it cannot). `start` runs every `starting` hook, every
//! `start` in registration order and every `started` hook; a background
//! service's `start` spawns its `execute` and returns at once. If a start
//! fails, exactly the services whose `start` completed are stopped again.
//! The host then waits for a stop request: a signal,
//! [`ApplicationLifetime::stop_application`], or a failing background
//! service. `stop` runs every `stopping` hook, every `stop` and every
//! `stopped` hook in reverse order, within [`HostOptions::shutdown_timeout`];
//! whatever is still running then is named and aborted. See [`exit_code`]
//! for the exit codes.
//!
//! # Runtimes
//!
//! The host runs under `#[tokio::main]` (multi-thread, the default) and on a
//! current-thread runtime. On a current-thread runtime every service shares
//! one thread: a service that blocks it stops everything, including the
//! shutdown timeout; signals are still seen (on their own thread) and the
//! run-to-exit watchdog (a plain thread) still ends the process. For a plain
//! `fn main`, use [`HostBuilder::run_blocking`].
//!
//! # Configuration
//!
//! `build()` reads the configuration (`host_config`): `appsettings` files,
//! environment variables, the command line given to
//! [`HostBuilder::args`]. It binds the `host` section over the
//! [`HostOptions`] set in code, the `logging` section ([`LoggingOptions`]),
//! and every section bound with [`HostBuilder::configure`], and reports
//! every invalid value before anything is constructed (exit code 2).
//!
//! # Logging
//!
//! Lifecycle messages go to the `host::lifetime` tracing target
//! ([`LIFETIME_TARGET`]); suppress the status lines with
//! [`HostOptions::suppress_status_messages`]. Each service's calls run inside
//! a `service` span carrying its name. `build()` installs a
//! `tracing-subscriber` fmt subscriber on standard error, configured by the
//! `logging` section (levels per target, which follow reloads; human, JSON
//! or journald format) and overridden by `RUST_LOG`, unless the application
//! installed its own global subscriber or turned it off with
//! [`HostBuilder::default_logging`].
//!
//! A service logs with the `tracing` macros (`tracing::warn!(...)`); there
//! is no logger to inject, as .NET's `ILogger<T>`. The macros already do
//! what `ILogger<T>` is injected for: each event's target is the module it
//! is written in (the category, which the `logging` section's levels
//! filter by), and inside `execute`, `start`, `stop` and the hooks it
//! carries the `service` span, so the line names the service without the
//! service naming itself. A field or a constructor argument would add
//! nothing but lines.
//!
//! Lines logged before `build()` are lost: no subscriber is installed yet,
//! and `tracing` drops events nobody subscribes to. Log after `build()`, or
//! install your own subscriber first (`tracing_subscriber::fmt().init()`);
//! `build()` then keeps it and installs none (the `logging` section and
//! `RUST_LOG` are then up to that subscriber).
//!
//! # Supervision and schedules
//!
//! Each background service runs under a supervisor: options set with the
//! registration ([`HostBuilder::add_hosted_service_with`],
//! [`ServiceOptions`]) or the `services` configuration section give it a
//! [`Restart`] policy, start and stop timeouts, dependencies and readiness,
//! and a heartbeat deadline; [`ServiceStates`] and its events, and
//! [`ServiceControl`], watch and steer it at run time. A
//! [`PeriodicService`] runs on a [`Schedule`]. See `docs/supervision.md`
//! and `docs/scheduling.md`.
//!
//! # systemd
//!
//! Under systemd (`NOTIFY_SOCKET` set), the run-to-exit path
//! ([`HostBuilder::run`]) reports the start, readiness and the stop,
//! extends systemd's timeouts while a long start or stop is within the
//! host's own, and feeds the watchdog; see
//! [`HostBuilder::systemd_notify`] and `docs/deploy.md`. On Unix, when it
//! also handles signals, SIGHUP reloads the configuration between
//! `RELOADING=1` and `READY=1` (`Type=notify-reload`); elsewhere SIGHUP
//! keeps its default action.
//!
//! # Dependencies
//!
//! | crate | why |
//! |---|---|
//! | `host-di` | the service container the builder owns |
//! | `host-config` | the configuration `build()` reads and binds |
//! | `serde` | the `host` and `logging` sections |
//! | `tokio` | the runtime: tasks, timers (and Ctrl+C outside Unix) |
//! | `signal-hook` | SIGINT, SIGTERM and SIGQUIT (and SIGHUP, for a host that notifies systemd) on a thread of their own, seen even when the runtime is blocked (Unix) |
//! | `tokio-util` | `CancellationToken` for stopping and deadlines; `AbortOnDropHandle` (feature `rt`) for the systemd tasks that end with the start, the stop or the run |
//! | `async-trait` | object-safe async traits, stored as `Arc<dyn HostedService>` |
//! | `futures` | catching panics in futures, running phases concurrently, the watchdog's wait |
//! | `futures-timer` | the moment [`Host::stop`] gives up on a stop, on a timer thread of its own: tokio's timers do not fire while the worker that drives them is blocked |
//! | `pin-project-lite` | a background service's task, run in its span without a second handle on it (already a dependency of tokio) |
//! | `tracing`, `tracing-subscriber` | logs and spans; the default subscriber (its reloadable filter, JSON format) |
//! | `anyhow` | [`ServiceError`]: any error converts with `?` |
//! | `croner` | cron expressions of 5, 6 or 7 fields, with defined daylight-saving behaviour (OCPS, see [`Schedule`]); `cron` requires seconds, `saffron` has no time zones |
//! | `chrono`, `chrono-tz` | a cron schedule's time zone: the IANA database compiled in, the same on every machine (`chrono` as `croner` takes it) |
//! | `humantime` | a schedule's durations and times in logs and errors (`every 1m 30s`) |
//! | `host-cluster` | the lease store a cluster singleton campaigns in (the file lock by default), without its database backends |
//! | `metrics` | the facade services' transitions, restarts, start and stop durations and schedule lateness are recorded through, for whatever exporter the application installs (a no-op without one) |
//! | `fastrand` | the random part of a restart's backoff (jitter): small, no system entropy call per draw |
//! | `rustix` | `CLOCK_MONOTONIC` for systemd's `MONOTONIC_USEC` on reload, without unsafe code; `time` only (Unix, already in the tree through `tempfile`) |
//! | `metrics-util` (tests only) | `DebuggingRecorder`: the integration tests read what the `metrics` facade recorded |
//!
//! systemd's notifications take no crate: the `sd-notify` crate does not
//! handle an abstract socket address (`@name`), and libsystemd is a whole C
//! library for what is one datagram per message; the standard library's
//! `UnixDatagram` sends them.

#![doc(test(attr(deny(warnings))))]

mod build;
mod error;
mod lifecycle;
mod logging;
mod scheduling;
mod services;
mod supervision;
mod systemd;

pub use build::builder::HostBuilder;
pub use build::cluster::ClusterStoreHandle;
pub use build::environment::{ENVIRONMENT_VARIABLE, HostEnvironment, environments};
pub use build::options::{BackgroundServiceFailure, HostOptions};
pub use error::{HostError, ServiceError, exit_code};
pub use lifecycle::host::Host;
pub use lifecycle::lifetime::ApplicationLifetime;
pub use logging::{LIFETIME_TARGET, LogFormat, LogLevel, LoggingOptions};
pub use scheduling::{
    ClusterWide, Overlap, Periodic, PeriodicService, RunContext, Schedule, ScheduleError, TickClaim,
};
pub use services::background::{BackgroundService, ServiceContext, Ticker};
pub use services::failure::{Phase, ServiceFailure};
pub use services::hosted::{HostedService, LifecycleContext, LifecycleFuture};
pub use services::registration::HostedServiceCollectionExt;
pub use services::state::{Leadership, ServiceState, ServiceStates, ServiceStatus};
pub use supervision::control::ServiceControl;
pub use supervision::events::{SERVICES_TARGET, ServiceEvent, ServiceEvents};
pub use supervision::options::ServiceOptions;
pub use supervision::restart::{Restart, Unrecoverable};
pub use supervision::singleton::Singleton;

/// `async_trait`, re-exported so that implementations need no extra dependency.
pub use async_trait::async_trait;

/// The error helpers [`ServiceError`] (an `anyhow::Error`) is built on:
/// `bail!("...")` returns an error, `anyhow!("...")` makes one, and
/// `.context("...")` adds a line to any error or `None`; re-exported so
/// that a service needs no `anyhow` dependency of its own.
pub use anyhow::{Context, anyhow, bail};

/// The fencing token of a cluster singleton's term (from `host-cluster`).
pub use host_cluster::FencingToken;
/// The token [`ServiceContext::stopping_token`] hands out, and the type
/// clients that take a cancellation token expect.
pub use tokio_util::sync::CancellationToken;
