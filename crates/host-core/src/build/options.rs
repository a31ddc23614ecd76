//! Host options: timeouts, concurrency, failure behaviour.

use std::time::Duration;

use serde::Deserialize;

/// What the host does when a background service's `execute` returns an error
/// or panics. In configuration: `"stop_host"` or `"ignore"` (or .NET's
/// spelling, `"StopHost"`, `"Ignore"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackgroundServiceFailure {
    /// Log the failure, stop the host gracefully, and exit non-zero (code 1).
    #[default]
    #[serde(alias = "StopHost")]
    StopHost,
    /// Log the failure and keep running; the service's state says it failed.
    #[serde(alias = "Ignore")]
    Ignore,
}

/// Options of the host, as .NET's `HostOptions`.
///
/// Set them in code with
/// [`HostBuilder::configure_host_options`](crate::HostBuilder::configure_host_options),
/// and override them in the `host` configuration section (durations in a
/// human form):
///
/// ```toml
/// [host]
/// shutdown_timeout = "10s"
/// startup_timeout = "1m"
/// services_start_concurrently = false
/// services_stop_concurrently = true
/// background_service_failure = "ignore"   # or "stop_host"
/// suppress_status_messages = false
/// ```
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use host_core::{BackgroundServiceFailure, HostOptions};
///
/// let mut options = HostOptions::default();
/// assert_eq!(options.shutdown_timeout, Duration::from_secs(30));
/// options.shutdown_timeout = Duration::from_secs(5);
/// options.background_service_failure = BackgroundServiceFailure::Ignore;
/// assert_eq!(options.startup_timeout, None);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostOptions {
    /// How long the whole stop may take: every `stopping` hook, `stop` and
    /// `stopped` hook. When it expires, the services still running are named
    /// in an error log and aborted, and the exit code is 3. Default: 30 s.
    pub shutdown_timeout: Duration,
    /// How long the whole start may take; `None` waits forever. When it
    /// expires, the start fails and what had started is stopped again.
    /// Default: `None`.
    pub startup_timeout: Option<Duration>,
    /// Run each start phase (`starting`, `start`, `started`) for every
    /// service at once instead of in registration order. Default: `false`.
    pub services_start_concurrently: bool,
    /// Run each stop phase (`stopping`, `stop`, `stopped`) for every service
    /// at once instead of in reverse registration order. Default: `false`.
    pub services_stop_concurrently: bool,
    /// What a failing background service does to the host. Default:
    /// [`BackgroundServiceFailure::StopHost`].
    pub background_service_failure: BackgroundServiceFailure,
    /// Leave out the `host::lifetime` status lines ("Application started.
    /// Press Ctrl+C to shut down.", the environment, the content root).
    /// Default: `false`.
    pub suppress_status_messages: bool,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            shutdown_timeout: Duration::from_secs(30),
            startup_timeout: None,
            services_start_concurrently: false,
            services_stop_concurrently: false,
            background_service_failure: BackgroundServiceFailure::StopHost,
            suppress_status_messages: false,
        }
    }
}

/// The `host` configuration section: each key present overrides the option
/// set in code (which acts as the application's default).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct HostOptionsSection {
    #[serde(with = "host_config::duration::option")]
    shutdown_timeout: Option<Duration>,
    #[serde(with = "host_config::duration::option")]
    startup_timeout: Option<Duration>,
    services_start_concurrently: Option<bool>,
    services_stop_concurrently: Option<bool>,
    background_service_failure: Option<BackgroundServiceFailure>,
    suppress_status_messages: Option<bool>,
}

impl HostOptionsSection {
    /// The configuration section's key.
    pub(crate) const KEY: &str = "host";

    pub(crate) fn apply(&self, options: &mut HostOptions) {
        let Self {
            shutdown_timeout,
            startup_timeout,
            services_start_concurrently,
            services_stop_concurrently,
            background_service_failure,
            suppress_status_messages,
        } = *self;
        if let Some(timeout) = shutdown_timeout {
            options.shutdown_timeout = timeout;
        }
        if startup_timeout.is_some() {
            options.startup_timeout = startup_timeout;
        }
        if let Some(concurrently) = services_start_concurrently {
            options.services_start_concurrently = concurrently;
        }
        if let Some(concurrently) = services_stop_concurrently {
            options.services_stop_concurrently = concurrently;
        }
        if let Some(failure) = background_service_failure {
            options.background_service_failure = failure;
        }
        if let Some(suppress) = suppress_status_messages {
            options.suppress_status_messages = suppress;
        }
    }
}
