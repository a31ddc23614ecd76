//! A `main` returning `Result<(), HostError>` whose `build()?` fails prints
//! the error's message (as `Display` writes it), not a dump of its struct,
//! and exits with 1 (the standard library's code for every `Err`).
//!
//! It needs a real `main`: this target has no harness (`harness = false`);
//! run without the scenario variable, `main` spawns itself with it as the
//! host process and checks what that process printed.

use std::process::Command;
use std::sync::Arc;

use host_core::{BackgroundService, Host, HostError, ServiceContext, ServiceError, async_trait};
use host_di::{Dependency, DiError, Injectable, ServiceProvider};

const SCENARIO: &str = "HOST_CORE_MAIN_RESULT_SCENARIO";

/// Registered by nobody.
struct Clock;

/// Needs the clock, which is not registered: `build()` fails.
struct Worker {
    _clock: Arc<Clock>,
}

impl Injectable for Worker {
    fn dependencies() -> Vec<Dependency> {
        vec![Dependency::required::<Clock>()]
    }

    fn create(provider: &ServiceProvider) -> Result<Self, DiError> {
        Ok(Self {
            _clock: provider.get::<Clock>()?,
        })
    }
}

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }
}

fn main() -> Result<(), HostError> {
    if std::env::var_os(SCENARIO).is_some() {
        // The application under test: `main` returns the build error.
        let mut builder = Host::builder();
        builder
            .default_logging(false)
            .handle_signals(false)
            .add_hosted_service::<Worker>();
        builder.build()?;
        return Ok(());
    }
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .env(SCENARIO, "1")
        .output()
        .expect("the host process runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.starts_with(
            "Error: cannot build the host: `main_result::Worker` needs \
             `Arc<main_result::Clock>`, which is not registered\n"
        ),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains("\n  help: register it, e.g. `services.add_singleton_self::<Clock>()`"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("HostError {"), "a struct dump: {stderr}");
    assert!(!stderr.contains("kind:"), "a struct dump: {stderr}");
    println!("main_result: a `main` returning `Err(HostError)` prints its message: ok");
    Ok(())
}
