//! A crate outside host-core extends the builder with its own
//! `builder.add_something(...)`, as .NET's `AddXyz` extension methods.

mod common;

use std::sync::Arc;

use common::test_builder;
use std::time::Duration;

use host_core::{
    BackgroundService, HostBuilder, Restart, ServiceContext, ServiceError, async_trait,
};
use host_di::{Dependency, DiError, Injectable, ServiceProvider};

/// What the extension registers for the application.
struct MetricsEndpoint(String);

/// The hosted service the extension adds; it needs the endpoint.
struct MetricsExporter {
    endpoint: Arc<MetricsEndpoint>,
}

impl Injectable for MetricsExporter {
    fn dependencies() -> Vec<Dependency> {
        vec![Dependency::required::<MetricsEndpoint>()]
    }

    fn create(provider: &ServiceProvider) -> Result<Self, DiError> {
        Ok(Self {
            endpoint: provider.get::<MetricsEndpoint>()?,
        })
    }
}

#[async_trait]
impl BackgroundService for MetricsExporter {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        if self.endpoint.0 == "broken" {
            host_core::bail!("cannot reach the metrics endpoint");
        }
        assert_eq!(self.endpoint.0, "http://127.0.0.1:9000");
        ctx.lifetime().stop_application();
        Ok(())
    }
}

/// The extension trait, as a library crate would define it.
trait MetricsHostBuilderExt {
    fn add_metrics(&mut self, endpoint: &str) -> &mut Self;
}

impl MetricsHostBuilderExt for HostBuilder {
    fn add_metrics(&mut self, endpoint: &str) -> &mut Self {
        self.services()
            .add_instance(Arc::new(MetricsEndpoint(endpoint.to_owned())));
        // With per-service options, and the builder handed back.
        self.add_hosted_service_with::<MetricsExporter, _>(|exporter| {
            exporter
                .restart(Restart::on_failure())
                .stop_timeout(Duration::from_secs(2))
        })
    }
}

#[tokio::test]
async fn an_extension_registers_services_and_a_hosted_service() {
    let mut builder = test_builder();
    builder
        .add_metrics("http://127.0.0.1:9000")
        .configure_host_options(|options| {
            options.shutdown_timeout = std::time::Duration::from_secs(5)
        });
    let host = builder.build().unwrap();
    let states = host.service_states();
    tokio::time::timeout(std::time::Duration::from_secs(30), host.run())
        .await
        .expect("the exporter stops the application")
        .unwrap();
    assert_eq!(
        states.snapshot()[0].name.as_ref(),
        "extension::MetricsExporter"
    );
}

#[tokio::test(start_paused = true)]
async fn an_extensions_options_apply_and_the_configuration_tunes_them() {
    let mut builder = test_builder();
    // The extension restarts on failure (1 s backoff, 5 restarts); the
    // application's configuration shortens the backoff and the limit.
    builder
        .args([
            "app",
            "--services.MetricsExporter.restart.initial_delay=10ms",
            "--services.MetricsExporter.restart.max_restarts=2",
        ])
        .add_metrics("broken");
    let host = builder.build().unwrap();
    let states = host.service_states();
    let error = host.run().await.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(
        error
            .to_string()
            .contains("cannot reach the metrics endpoint"),
        "{error}"
    );
    let status = &states.snapshot()[0];
    assert_eq!(&*status.name, "extension::MetricsExporter");
    assert_eq!(status.restarts, 2);
}

#[test]
fn a_missing_dependency_of_a_hosted_service_fails_the_build_with_two() {
    let mut builder = test_builder();
    builder.add_hosted_service::<MetricsExporter>();
    let error = builder.build().unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(error.is_build());
    let message = error.to_string();
    assert!(message.starts_with("cannot build the host: "), "{message}");
    assert!(message.contains("extension::MetricsEndpoint"), "{message}");
    assert!(message.contains("extension::MetricsExporter"), "{message}");
}
