//! `TestHostBuilder`: a `HostBuilder` set up for a test, and what the test
//! host adds to it (log levels, the wait limit).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::Duration;

use host_core::{Host, HostBuilder, HostError, environments};
use tempfile::TempDir;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;

use crate::host::TestHost;
use crate::logs::default_filter;
use crate::wait::WAIT_LIMIT;

/// The application's name in a test host, whatever the test binary is called.
pub const APPLICATION_NAME: &str = "test-host";

/// Builds a [`TestHost`]: a [`HostBuilder`] (every registration method works
/// through `Deref`), set up so that nothing of the machine or the process
/// leaks into the test.
///
/// Compared with [`Host::builder`]:
///
/// | setting | here |
/// |---|---|
/// | signals | not handled ([`handle_signals(false)`](HostBuilder::handle_signals)) |
/// | systemd | never notified, even under `NOTIFY_SOCKET` |
/// | the default log subscriber | not installed; the test host's own captures the lines (see [`TestHost::logs`]) |
/// | environment | `Production` (not `HOST_ENVIRONMENT`'s) |
/// | application name | [`APPLICATION_NAME`] (not the test binary's) |
/// | content root | a new empty directory, deleted with the test host ([`content_dir`](Self::content_dir)) |
/// | `appsettings` files | not read (`configuration().appsettings(true)` reads those of the content root) |
/// | environment variables | not read (`configuration().env_prefix("APP_")` reads them again) |
///
/// Every one of them can be set back: the builder is the application's.
#[must_use = "a builder does nothing until it is built or started"]
pub struct TestHostBuilder {
    builder: HostBuilder,
    content_dir: TempDir,
    log_filter: Targets,
    wait_limit: Duration,
}

impl TestHostBuilder {
    pub(crate) fn new() -> Self {
        let content_dir = tempfile::Builder::new()
            .prefix("host-testing-")
            .tempdir()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot create the test host's content root in `{}`: {error}",
                    std::env::temp_dir().display()
                )
            });
        let mut builder = Host::builder();
        builder
            .handle_signals(false)
            .systemd_notify(false)
            .default_logging(false)
            .environment_name(environments::PRODUCTION)
            .application_name(APPLICATION_NAME)
            .content_root(content_dir.path());
        builder.configuration().appsettings(false).without_env();
        Self {
            builder,
            content_dir,
            log_filter: default_filter(),
            wait_limit: WAIT_LIMIT,
        }
    }

    /// The content root: an empty directory of the test host's own, deleted
    /// when the test host is. Write an `appsettings.toml` here and turn
    /// `configuration().appsettings(true)` on to test reading it.
    pub fn content_dir(&self) -> &Path {
        self.content_dir.path()
    }

    /// Logs `target` (and the targets beneath it: `app` covers
    /// `app::worker`) at `level`, in the test's output and in
    /// [`TestHost::logs`]. Default: `debug` for the host's own targets
    /// (`host::lifetime`, `host::services`), `info` for the others; see
    /// [`default_log_level`](Self::default_log_level).
    ///
    /// ```
    /// use tracing::Level;
    /// let mut builder = host_testing::TestHost::builder();
    /// builder.log_level("app::worker", Level::TRACE).log_level("host::", Level::INFO);
    /// ```
    pub fn log_level(&mut self, target: &str, level: impl Into<LevelFilter>) -> &mut Self {
        self.log_filter = std::mem::take(&mut self.log_filter).with_target(target, level);
        self
    }

    /// Logs the targets no [`log_level`](Self::log_level) names at `level`.
    /// Default: `info`.
    pub fn default_log_level(&mut self, level: impl Into<LevelFilter>) -> &mut Self {
        self.log_filter = std::mem::take(&mut self.log_filter).with_default(level);
        self
    }

    /// How long [`TestHost::wait_for`] waits, on the tokio clock, before it
    /// fails the test. Default: [`WAIT_LIMIT`]. Raise it for a test that
    /// waits, in paused time, longer than that on purpose (an hourly job).
    pub fn wait_limit(&mut self, limit: Duration) -> &mut Self {
        self.wait_limit = limit;
        self
    }

    /// Builds the host without starting it; start it with
    /// [`TestHost::start`]. From here until the test host is dropped, the
    /// current thread's log lines are captured and every lifecycle event is
    /// recorded.
    ///
    /// # Errors
    ///
    /// What [`HostBuilder::build`] returns: invalid configuration or
    /// registrations, or a hosted service that cannot be constructed.
    pub fn build(self) -> Result<TestHost, HostError> {
        let Self {
            builder,
            content_dir,
            log_filter,
            wait_limit,
        } = self;
        TestHost::build(builder, content_dir, log_filter, wait_limit)
    }

    /// Builds and starts the host.
    ///
    /// # Errors
    ///
    /// What [`build`](Self::build) and [`Host::start`] return. To assert on
    /// the events and the lines of a failed start, [`build`](Self::build)
    /// and [`TestHost::start`] instead: the test host stays.
    pub async fn start(self) -> Result<TestHost, HostError> {
        let mut host = self.build()?;
        host.start().await?;
        Ok(host)
    }

    /// The error that building fails with, for a test of invalid
    /// configuration or registrations.
    ///
    /// # Panics
    ///
    /// The host builds: the message names its services.
    ///
    /// ```
    /// let mut builder = host_testing::TestHost::builder();
    /// builder.args(["app", "--host.shutdown_timeout=soon"]);
    /// let error = builder.build_error();
    /// assert!(error.to_string().contains("host.shutdown_timeout"), "{error}");
    /// assert_eq!(error.exit_code(), 2);
    /// ```
    pub fn build_error(self) -> HostError {
        match self.build() {
            Ok(host) => {
                let names: Vec<String> = host
                    .states()
                    .snapshot()
                    .into_iter()
                    .map(|status| format!("`{}`", status.name))
                    .collect();
                panic!(
                    "build_error: the host built, with the services: {}",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                )
            }
            Err(error) => error,
        }
    }
}

impl Deref for TestHostBuilder {
    type Target = HostBuilder;

    fn deref(&self) -> &HostBuilder {
        &self.builder
    }
}

impl DerefMut for TestHostBuilder {
    fn deref_mut(&mut self) -> &mut HostBuilder {
        &mut self.builder
    }
}

impl fmt::Debug for TestHostBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestHostBuilder")
            .field("builder", &self.builder)
            .field("content_dir", &self.content_dir.path())
            .field("log_filter", &self.log_filter)
            .field("wait_limit", &self.wait_limit)
            .finish()
    }
}
