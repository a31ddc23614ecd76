//! The seed: one background service in a host, with an injected dependency
//! and typed options from the configuration.
//!
//! `cargo run --example worker` logs `hello from service` once a second
//! until Ctrl+C, then stops cleanly with exit code 0. With no file at all it
//! runs on the built-in defaults; override them in `appsettings.toml` in the
//! current directory:
//!
//! ```toml
//! [worker]
//! interval = "250ms"
//! message = "hello from the file"
//! ```
//!
//! or with `APP_WORKER__MESSAGE="hi" cargo run --example worker`, or with
//! `cargo run --example worker -- --worker.interval=2s`.

use host::prelude::*;
use serde::Deserialize;

/// The `worker` configuration section.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WorkerOptions {
    /// How often the worker logs.
    #[serde(with = "host::config::duration")]
    interval: Duration,
    /// What it logs.
    message: String,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            message: "hello from service".to_owned(),
        }
    }
}

/// Says what the worker logs.
trait Greeter: Send + Sync {
    fn greeting(&self) -> &str;
}

/// The greeter the application registers; the worker sees only `dyn Greeter`.
#[derive(Injectable)]
#[injectable(as = dyn Greeter)]
struct ConfiguredGreeter {
    options: Options<WorkerOptions>,
}

impl Greeter for ConfiguredGreeter {
    fn greeting(&self) -> &str {
        &self.options.message
    }
}

/// Logs a greeting at the configured interval until the host stops it.
#[derive(Injectable)]
struct Worker {
    greeter: Arc<dyn Greeter>,
    options: Options<WorkerOptions>,
}

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        // Ticks once an interval; `tick` returns false once the host stops us.
        let mut every = ctx.every(self.options.interval);
        while every.tick().await {
            tracing::warn!(thread = ?std::thread::current().id(), "{}", self.greeter.greeting());
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut builder = Host::builder();
    builder.args(std::env::args());
    builder
        .configure::<WorkerOptions>("worker")
        .validate(|options| match options.interval.is_zero() {
            true => Err(ValidationError::key("interval", "must be longer than zero")),
            false => Ok(()),
        });
    builder
        .services()
        .add_singleton::<dyn Greeter, ConfiguredGreeter>();
    builder.add_hosted_service::<Worker>();
    builder.run().await
}
