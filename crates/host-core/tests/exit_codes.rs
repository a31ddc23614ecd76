//! Exit codes at the edges: a requested code outside a byte, a hosted
//! service whose constructor panics. The process tests run this test binary
//! as the host process (the `child` test, selected by an environment
//! variable).

mod common;

use std::time::Instant;

use common::test_builder;
use host_core::{
    BackgroundService, Host, HostedService, HostedServiceCollectionExt, ServiceContext,
    ServiceError, async_trait,
};
use host_di::{Dependency, DiError, Injectable, ServiceProvider};
use host_test::HostProcess;

const SCENARIO: &str = "HOST_CORE_EXIT_CODES_SCENARIO";

/// Stops the application with the code it was given, once started.
struct StopsWithCode(i32);

#[async_trait]
impl BackgroundService for StopsWithCode {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.lifetime().started().await;
        ctx.lifetime().stop_application_with_code(self.0);
        Ok(())
    }
}

/// A hosted service whose constructor panics.
struct PanicsInConstructor;

impl Injectable for PanicsInConstructor {
    fn dependencies() -> Vec<Dependency> {
        Vec::new()
    }

    fn create(_provider: &ServiceProvider) -> Result<Self, DiError> {
        panic!("no licence key in the environment")
    }
}

#[async_trait]
impl BackgroundService for PanicsInConstructor {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// A dependency whose factory panics.
struct Licence;

/// A hosted service that needs the licence.
struct NeedsLicence;

impl Injectable for NeedsLicence {
    fn dependencies() -> Vec<Dependency> {
        vec![Dependency::required::<Licence>()]
    }

    fn create(provider: &ServiceProvider) -> Result<Self, DiError> {
        provider.get::<Licence>()?;
        Ok(Self)
    }
}

#[async_trait]
impl BackgroundService for NeedsLicence {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// The host process. Does nothing unless started by a test below.
#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let mut builder = Host::builder();
    if let Some(code) = scenario.strip_prefix("code=") {
        builder.add_hosted_service_instance(StopsWithCode(code.parse().unwrap()));
    } else if scenario == "panicking-constructor" {
        builder.add_hosted_service::<PanicsInConstructor>();
    } else {
        panic!("unknown scenario {scenario}");
    }
    host_test::exit_with(builder.run_blocking());
}

fn spawn(scenario: &str) -> HostProcess {
    let mut command = host_test::child_test(SCENARIO, scenario);
    command.env("RUST_LOG", "info");
    HostProcess::spawn(command)
}

#[test]
fn a_requested_code_within_a_byte_is_the_exit_code() {
    let mut host = spawn("code=255");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 255, "{}", host.output());
}

#[test]
fn a_requested_code_outside_a_byte_is_refused_with_one() {
    for requested in [256, -1] {
        let mut host = spawn(&format!("code={requested}"));
        let (code, _) = host.wait_for_exit(Instant::now());
        assert_eq!(code, 1, "{requested}: {}", host.output());
        assert!(
            host.output().contains(&format!(
                "stop_application_with_code({requested}): an exit code must be within 0..=255; \
                 exiting with 1 instead"
            )),
            "{}",
            host.output()
        );
    }
}

#[test]
fn a_panicking_constructor_fails_the_build_with_two() {
    let mut host = spawn("panicking-constructor");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 2, "{}", host.output());
    let output = host.output();
    assert!(
        output.contains(
            "error: cannot build the host: the hosted service \
             `exit_codes::PanicsInConstructor` panicked while being constructed: \
             no licence key in the environment"
        ),
        "{output}"
    );
    assert!(!output.contains("Application started"), "{output}");
}

#[test]
fn a_panicking_dependency_names_the_hosted_service_that_needed_it() {
    let mut builder = test_builder();
    builder
        .services()
        .add_singleton_factory::<Licence, _>(|_| panic!("the licence server is down"));
    builder.services().add_hosted_service::<NeedsLicence>();
    let error = builder.build().unwrap_err();
    assert!(error.is_build());
    assert_eq!(error.exit_code(), 2);
    assert_eq!(
        error.to_string(),
        "cannot build the host: the hosted service `exit_codes::NeedsLicence` panicked while \
         being constructed: the licence server is down"
    );
}

#[test]
fn a_panicking_factory_registered_by_hand_fails_the_build() {
    let mut builder = test_builder();
    builder
        .services()
        .add_singleton_factory::<dyn HostedService, _>(|_| panic!("no queue configured"));
    let error = builder.build().unwrap_err();
    assert!(error.is_build());
    assert_eq!(error.exit_code(), 2);
    assert_eq!(
        error.to_string(),
        "cannot build the host: a hosted service's factory (registered as \
         `dyn HostedService`) panicked: no queue configured"
    );
}

#[test]
fn a_build_after_a_panicking_constructor_works() {
    let mut builder = test_builder();
    builder.add_hosted_service::<PanicsInConstructor>();
    assert!(builder.build().unwrap_err().is_build());
    // The panic left nothing behind on this thread (the container's chain of
    // constructions in progress, say).
    let mut builder = test_builder();
    builder.add_hosted_service::<NeedsLicence>();
    builder
        .services()
        .add_singleton_factory::<Licence, _>(|_| Ok(std::sync::Arc::new(Licence)));
    let host = builder.build().unwrap();
    assert_eq!(host.service_states().snapshot().len(), 1);
}
