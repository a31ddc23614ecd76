//! The seed: one background service in a host, with an injected dependency.
//!
//! `cargo run --example worker` logs `hello from service` once a second
//! until Ctrl+C, then stops cleanly with exit code 0.

use std::time::Duration;

use host::prelude::*;

/// Says what the worker logs.
trait Greeter: Send + Sync {
    fn greeting(&self) -> String;
}

/// The greeter the application registers; the worker sees only `dyn Greeter`.
#[derive(Injectable)]
#[injectable(as = dyn Greeter)]
struct HelloGreeter;

impl Greeter for HelloGreeter {
    fn greeting(&self) -> String {
        "hello from service".to_owned()
    }
}

/// Logs a greeting once a second until the host stops it.
#[derive(Injectable)]
struct Worker {
    greeter: Arc<dyn Greeter>,
}

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = ctx.stopping() => return Ok(()),
                _ = every.tick() => tracing::warn!(
                    thread = ?std::thread::current().id(),
                    "{}", self.greeter.greeting()
                ),
            }
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut builder = Host::builder();
    builder
        .services()
        .add_singleton::<dyn Greeter, HelloGreeter>();
    builder.add_hosted_service::<Worker>();
    builder.run().await
}
