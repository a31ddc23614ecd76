//! Host options: timeouts, concurrency, failure behaviour.

use std::time::Duration;

/// What the host does when a background service's `execute` returns an error
/// or panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BackgroundServiceFailure {
    /// Log the failure, stop the host gracefully, and exit non-zero (code 1).
    #[default]
    StopHost,
    /// Log the failure and keep running; the service's state says it failed.
    Ignore,
}

/// Options of the host, as .NET's `HostOptions`.
///
/// Set them with [`HostBuilder::configure_host_options`](crate::HostBuilder::configure_host_options).
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
