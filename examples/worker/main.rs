//! The seed: one background service in a host, with an injected dependency
//! and typed options from the configuration, restarted if it fails; and a
//! periodic service beside it.
//!
//! `cargo run --example worker` logs `hello from service` once a second,
//! and `tidying up` every five seconds, until Ctrl+C, then stops cleanly
//! with exit code 0. With no file at all it
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
//! `cargo run --example worker -- --worker.interval=2s`. The tidy-up's
//! schedule comes from the `services` section when it is there
//! (`--services.Tidy.schedule.every=1s`, or a cron expression:
//! `[services.Tidy.schedule]` with `cron = "*/10 * * * * *"`).

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

/// Tidies up every few seconds; a run never overlaps the previous one.
#[derive(Injectable)]
struct Tidy;

#[async_trait]
impl PeriodicService for Tidy {
    async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
        tracing::info!(run = ctx.number(), "tidying up");
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
    // If `execute` fails, it runs again after 1 s, 2 s, 4 s, ... (at most
    // 30 s); more than 5 restarts within a minute stop the host.
    builder.add_hosted_service_with::<Worker, _>(|worker| worker.restart(Restart::on_failure()));
    builder.add_periodic::<Tidy>(Schedule::every(Duration::from_secs(5)));
    builder.run().await
}
