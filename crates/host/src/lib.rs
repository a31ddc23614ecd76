//! A generic host for Rust services, modelled on .NET's Generic Host: one
//! dependency for the host ([`host_core`]), its service container
//! ([`host_di`]) and, behind features, its integrations.
//!
//! ```no_run
//! use host::prelude::*;
//!
//! struct Worker;
//!
//! #[async_trait]
//! impl BackgroundService for Worker {
//!     async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
//!         ctx.stopping().await;
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let mut builder = Host::builder();
//!     builder.add_hosted_service_instance(Worker);
//!     builder.run().await
//! }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `derive` | yes | `#[derive(Injectable)]`, constructor injection without glue |
//! | `web` | no | [`web`]: axum as a hosted service (`builder.web(...)`), `Inject<T>` in handlers, health endpoints, a bounded graceful drain |
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

/// The service container: registration, resolution, scopes, disposal.
pub mod di {
    pub use host_di::*;
}

/// What almost every application uses, in one import.
pub mod prelude {
    pub use host_config::{Configuration, OptionsMonitor, OptionsSnapshot, ValidationError};
    pub use host_core::{
        ApplicationLifetime, BackgroundService, BackgroundServiceFailure, Host, HostBuilder,
        HostEnvironment, HostOptions, HostedService, HostedServiceCollectionExt, LifecycleContext,
        ServiceContext, ServiceError, async_trait,
    };
    pub use host_di::{Injectable, Options, ServiceCollection, ServiceProvider};
    #[cfg(feature = "web")]
    pub use host_web::{Inject, Shutdown, Upgrades, WebHostBuilderExt};
    pub use std::sync::Arc;
}
