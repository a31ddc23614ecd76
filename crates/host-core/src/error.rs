//! The crate's error type and the exit-code table.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::ServiceFailure;

/// The error type of a hosted service's `start`, `stop`, `execute` and hooks.
///
/// Any error converts into it with `?`, and `anyhow::Context` adds context.
pub type ServiceError = anyhow::Error;

/// Exit codes of a host process, as [`HostError::exit_code`] and
/// [`HostBuilder::run`](crate::HostBuilder::run) give them.
///
/// | code | meaning |
/// |---|---|
/// | 0 | clean stop |
/// | 1 | a service failed: in `start` or a hook, in `execute` under [`BackgroundServiceFailure::StopHost`](crate::BackgroundServiceFailure::StopHost), or in `stop` |
/// | 2 | the host could not be built: invalid configuration or registration, or a hosted service's constructor failed or panicked; nothing started |
/// | 3 | the shutdown timed out: the services still running were aborted |
/// | 128 + n | another signal n during the stop forced the exit (130 SIGINT, 131 SIGQUIT, 143 SIGTERM); the signal that began the stop, repeated within 500 ms, is ignored |
/// | `code` | [`ApplicationLifetime::stop_application_with_code`](crate::ApplicationLifetime::stop_application_with_code), unless a failure happened; a `code` outside `0..=255` is refused: an error names it and the code is 1 (never wrapped around: 256 would read as success) |
///
/// A signal that arrives once the stop has completed has its default action:
/// the process is killed by it, with no exit code of its own (a shell shows
/// 128 + n).
pub mod exit_code {
    /// The host stopped cleanly.
    pub const SUCCESS: u8 = 0;
    /// A service failed.
    pub const SERVICE_FAILED: u8 = 1;
    /// The host could not be built; nothing started.
    pub const BUILD_FAILED: u8 = 2;
    /// The shutdown timed out and the services still running were aborted.
    pub const SHUTDOWN_TIMED_OUT: u8 = 3;
    /// Added to a signal's number when a second signal forces the exit.
    pub const SIGNAL_BASE: u8 = 128;
}

/// The exit code for a stop requested with `code`: the code itself within
/// `0..=255`; otherwise 1, with an error naming the code. Wrapping it around
/// (256 to 0, -1 to 255) would turn a request that meant failure into
/// success, or into a code that means something else.
pub(crate) fn requested_exit_code(code: i32) -> u8 {
    u8::try_from(code).unwrap_or_else(|_| {
        tracing::error!(target: crate::LIFETIME_TARGET,
            "stop_application_with_code({code}): an exit code must be within 0..=255; \
             exiting with {} instead", exit_code::SERVICE_FAILED);
        exit_code::SERVICE_FAILED
    })
}

/// Why a host could not be built, could not start, or did not stop cleanly.
///
/// It names every service involved; [`exit_code`](Self::exit_code) maps it to
/// the [exit-code table](exit_code).
///
/// `{:?}` prints what `{}` prints (the message, every failure, the `help:`
/// line), so that a `main` returning `Result<(), HostError>` shows the
/// message rather than a dump of the struct; `{:#?}` shows the structure.
///
/// # From `main`
///
/// `Result<(), HostError>` from `main` prints the error and exits with 1,
/// whatever the error: the standard library gives every `Err` the same code.
/// To keep the [exit-code table](exit_code) (2 when the host could not be
/// built, 3 for a shutdown timeout), return an [`ExitCode`](std::process::ExitCode),
/// which `HostError` converts into:
///
/// ```no_run
/// use std::process::ExitCode;
/// use host_core::{Host, HostError};
///
/// async fn run() -> Result<(), HostError> {
///     let mut builder = Host::builder();
///     builder.args(std::env::args()); // and the registrations
///     let mut host = builder.build()?;
///     host.start().await?;
///     host.wait_for_shutdown().await;
///     host.stop().await
/// }
///
/// #[tokio::main]
/// async fn main() -> ExitCode {
///     match run().await {
///         Ok(()) => ExitCode::SUCCESS,
///         Err(error) => {
///             eprintln!("error: {error}");
///             error.into() // 2, 1 or 3, from the table
///         }
///     }
/// }
/// ```
///
/// [`HostBuilder::run`](crate::HostBuilder::run) does all of this.
pub struct HostError {
    kind: Kind,
    failures: Vec<ServiceFailure>,
    rolled_back: Vec<Arc<str>>,
    timed_out: Vec<Arc<str>>,
    /// Of the timed-out services, those whose own stop timeout expired,
    /// with it, for the message.
    own_timeouts: Vec<(Arc<str>, Duration)>,
}

#[derive(Debug)]
enum Kind {
    Configuration(host_config::ConfigError),
    Build(Box<dyn std::error::Error + Send + Sync>),
    Start,
    StartupTimeout {
        after: Duration,
    },
    Failed,
    /// `after`: the host's shutdown timeout, when it expired; `None` when
    /// only services' own stop timeouts did.
    ShutdownTimeout {
        after: Option<Duration>,
    },
    /// A [`ServiceControl`](crate::ServiceControl) request that cannot be
    /// carried out; the host is unaffected.
    Control(String),
}

impl HostError {
    pub(crate) fn build(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(Kind::Build(source.into()))
    }

    /// A refused control request: `message` says what and why.
    pub(crate) fn control(message: String) -> Self {
        Self::new(Kind::Control(message))
    }

    pub(crate) fn configuration(error: host_config::ConfigError) -> Self {
        Self::new(Kind::Configuration(error))
    }

    pub(crate) fn start(failure: ServiceFailure) -> Self {
        let mut error = Self::new(Kind::Start);
        error.failures.push(failure);
        error
    }

    /// A failed start with every one of `failures`; `None` when there is none.
    pub(crate) fn start_failed(failures: impl IntoIterator<Item = ServiceFailure>) -> Option<Self> {
        let mut failures = failures.into_iter();
        let first = failures.next()?;
        Some(failures.fold(Self::start(first), Self::also))
    }

    pub(crate) fn startup_timeout(after: Duration, still_starting: Vec<Arc<str>>) -> Self {
        let mut error = Self::new(Kind::StartupTimeout { after });
        error.timed_out = still_starting;
        error
    }

    /// Services failed while running or stopping (and possibly timed out:
    /// at the host's `shutdown_timeout`, or at their own stop timeouts when
    /// it is `None`).
    pub(crate) fn stopped_with(
        failures: Vec<ServiceFailure>,
        timed_out: Vec<Arc<str>>,
        shutdown_timeout: impl Into<Option<Duration>>,
    ) -> Option<Self> {
        let kind = if !timed_out.is_empty() {
            Kind::ShutdownTimeout {
                after: shutdown_timeout.into(),
            }
        } else if !failures.is_empty() {
            Kind::Failed
        } else {
            return None;
        };
        Some(Self {
            kind,
            failures,
            rolled_back: Vec::new(),
            timed_out,
            own_timeouts: Vec::new(),
        })
    }

    /// Adds another failure of the same phase.
    pub(crate) fn also(mut self, failure: ServiceFailure) -> Self {
        self.failures.push(failure);
        self
    }

    /// Adds what a rollback after a failed start did.
    pub(crate) fn with_rollback(
        mut self,
        rolled_back: Vec<Arc<str>>,
        rollback: Option<HostError>,
    ) -> Self {
        self.rolled_back = rolled_back;
        if let Some(rollback) = rollback {
            self.failures.extend(rollback.failures);
            self.timed_out.extend(rollback.timed_out);
        }
        self
    }

    fn new(kind: Kind) -> Self {
        Self {
            kind,
            failures: Vec::new(),
            rolled_back: Vec::new(),
            timed_out: Vec::new(),
            own_timeouts: Vec::new(),
        }
    }

    /// Notes the services, among the timed-out ones, that their own stop
    /// timeout ended, so that the message says so.
    pub(crate) fn with_own_timeouts(mut self, own: Vec<(Arc<str>, Duration)>) -> Self {
        self.own_timeouts = own;
        self
    }

    /// The timed-out services for the message: each with its own stop
    /// timeout when that is what ended it.
    fn timed_out_list(&self) -> String {
        self.timed_out
            .iter()
            .map(
                |name| match self.own_timeouts.iter().find(|(own, _)| own == name) {
                    Some((_, timeout)) => format!("{name} (its stop timeout, {timeout:?})"),
                    None => name.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The process exit code for this error, from the [table](exit_code).
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::Configuration(_) | Kind::Build(_) => exit_code::BUILD_FAILED,
            Kind::Start | Kind::StartupTimeout { .. } | Kind::Failed | Kind::Control(_) => {
                exit_code::SERVICE_FAILED
            }
            Kind::ShutdownTimeout { .. } => exit_code::SHUTDOWN_TIMED_OUT,
        }
    }

    /// Whether the host could not be built (invalid configuration or registration).
    pub fn is_build(&self) -> bool {
        matches!(self.kind, Kind::Configuration(_) | Kind::Build(_))
    }

    /// Whether the configuration is invalid: a malformed file, a bad value,
    /// a failed check of an options type.
    pub fn is_configuration(&self) -> bool {
        matches!(self.kind, Kind::Configuration(_))
    }

    /// The configuration error, with the keys, values and sources at fault.
    pub fn configuration_error(&self) -> Option<&host_config::ConfigError> {
        match &self.kind {
            Kind::Configuration(error) => Some(error),
            _ => None,
        }
    }

    /// Whether the host failed to start (a service failed or the startup timed out).
    pub fn is_start(&self) -> bool {
        matches!(self.kind, Kind::Start | Kind::StartupTimeout { .. })
    }

    /// Whether the startup timeout expired.
    pub fn is_startup_timeout(&self) -> bool {
        matches!(self.kind, Kind::StartupTimeout { .. })
    }

    /// Whether the shutdown timeout expired with services still running.
    pub fn is_shutdown_timeout(&self) -> bool {
        matches!(self.kind, Kind::ShutdownTimeout { .. })
    }

    /// Every service failure, in the order they happened.
    pub fn failures(&self) -> &[ServiceFailure] {
        &self.failures
    }

    /// After a failed start: the services that had started and were stopped
    /// again, in the order they were stopped.
    pub fn rolled_back(&self) -> impl Iterator<Item = &str> {
        self.rolled_back.iter().map(|name| &**name)
    }

    /// The services still running when a timeout expired (they were aborted).
    pub fn timed_out(&self) -> impl Iterator<Item = &str> {
        self.timed_out.iter().map(|name| &**name)
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut failures = self.failures.iter();
        match &self.kind {
            // It reads "invalid configuration: ..." by itself.
            Kind::Configuration(error) => write!(f, "{error}")?,
            Kind::Build(source) => write!(f, "cannot build the host: {source}")?,
            Kind::Start => {
                let first = failures.next().expect("a start error carries its failure");
                write!(f, "host failed to start: {first}")?;
            }
            Kind::StartupTimeout { after } => {
                write!(f, "host failed to start: startup timed out after {after:?}")?;
                if !self.timed_out.is_empty() {
                    write!(f, "; still starting: {}", list(&self.timed_out))?;
                }
            }
            Kind::Failed => {
                let first = failures
                    .next()
                    .expect("a failure error carries its failure");
                write!(f, "{first}")?;
            }
            Kind::Control(message) => f.write_str(message)?,
            Kind::ShutdownTimeout { after: Some(after) } => write!(
                f,
                "shutdown timed out after {after:?}; still running: {} (aborted)",
                self.timed_out_list()
            )?,
            Kind::ShutdownTimeout { after: None } => write!(
                f,
                "shutdown timed out; still running: {} (aborted)",
                self.timed_out_list()
            )?,
        }
        if !self.rolled_back.is_empty() {
            let stopped: Vec<String> = self
                .rolled_back
                .iter()
                .map(|name| format!("{name} (stopped)"))
                .collect();
            write!(f, "\n  rolled back: {}", stopped.join(", "))?;
        }
        if matches!(self.kind, Kind::Start) && !self.timed_out.is_empty() {
            write!(
                f,
                "\n  rollback timed out; still running: {} (aborted)",
                list(&self.timed_out)
            )?;
        }
        for failure in failures {
            write!(f, "\n  also: {failure}")?;
        }
        Ok(())
    }
}

/// The message, as `Display` writes it; `{:#?}` gives the structure.
impl fmt::Debug for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.debug_struct("HostError")
                .field("kind", &self.kind)
                .field("failures", &self.failures)
                .field("rolled_back", &self.rolled_back)
                .field("timed_out", &self.timed_out)
                .finish()
        } else {
            fmt::Display::fmt(self, f)
        }
    }
}

/// The error's [`exit_code`](HostError::exit_code).
impl From<HostError> for std::process::ExitCode {
    fn from(error: HostError) -> Self {
        Self::from(error.exit_code())
    }
}

/// The error's [`exit_code`](HostError::exit_code).
impl From<&HostError> for std::process::ExitCode {
    fn from(error: &HostError) -> Self {
        Self::from(error.exit_code())
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Configuration(error) => Some(error),
            Kind::Build(source) => Some(source.as_ref()),
            _ => None,
        }
    }
}

fn list(names: &[Arc<str>]) -> String {
    names
        .iter()
        .map(|name| &**name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Phase;

    fn failure(service: &str, phase: Phase, message: &str) -> ServiceFailure {
        ServiceFailure::error(service.into(), phase, anyhow::anyhow!(message.to_owned()))
    }

    #[test]
    fn start_failure_lists_what_was_rolled_back() {
        let error = HostError::start(failure("app::Web", Phase::Start, "address in use"))
            .with_rollback(vec!["app::Worker".into(), "app::Cache".into()], None);
        assert_eq!(
            error.to_string(),
            "host failed to start: `app::Web` failed in start: address in use\n  \
             rolled back: app::Worker (stopped), app::Cache (stopped)"
        );
        assert_eq!(error.exit_code(), 1);
        assert!(error.is_start());
    }

    #[test]
    fn stop_failures_are_all_listed() {
        let error = HostError::stopped_with(
            vec![
                failure("app::A", Phase::Stop, "flush failed"),
                failure("app::B", Phase::Stopped, "disk full"),
            ],
            Vec::new(),
            Duration::from_secs(30),
        )
        .expect("failures make an error");
        assert_eq!(
            error.to_string(),
            "`app::A` failed in stop: flush failed\n  also: `app::B` failed in stopped: disk full"
        );
        assert_eq!(error.exit_code(), 1);
    }

    #[test]
    fn timeout_wins_over_failures_for_the_exit_code() {
        let error = HostError::stopped_with(
            vec![failure("app::A", Phase::Execute, "boom")],
            vec!["app::Exporter".into()],
            Duration::from_secs(30),
        )
        .expect("a timeout makes an error");
        assert_eq!(
            error.to_string(),
            "shutdown timed out after 30s; still running: app::Exporter (aborted)\n  \
             also: `app::A` failed in execute: boom"
        );
        assert_eq!(error.exit_code(), 3);
        assert!(error.is_shutdown_timeout());
    }

    #[test]
    fn clean_stop_is_no_error() {
        assert!(HostError::stopped_with(Vec::new(), Vec::new(), Duration::from_secs(1)).is_none());
    }

    #[test]
    fn a_requested_code_outside_a_byte_is_refused_with_one() {
        assert_eq!(requested_exit_code(0), 0);
        assert_eq!(requested_exit_code(255), 255);
        assert_eq!(requested_exit_code(256), 1);
        assert_eq!(requested_exit_code(512), 1);
        assert_eq!(requested_exit_code(-1), 1);
        assert_eq!(requested_exit_code(i32::MIN), 1);
    }

    #[test]
    fn debug_reads_as_the_message_and_alternate_shows_the_structure() {
        let error = HostError::build("`app::Worker` needs `app::Clock`, which is not registered");
        assert_eq!(format!("{error:?}"), error.to_string());
        let structure = format!("{error:#?}");
        assert!(structure.starts_with("HostError {"), "{structure}");
        assert!(structure.contains("Build("), "{structure}");
        assert_eq!(
            std::process::ExitCode::from(&error),
            std::process::ExitCode::from(2)
        );
        assert_eq!(
            std::process::ExitCode::from(error),
            std::process::ExitCode::from(2)
        );
    }

    #[test]
    fn build_error_exits_two() {
        let error = HostError::build("`app::Worker` needs `app::Clock`, which is not registered");
        assert_eq!(
            error.to_string(),
            "cannot build the host: `app::Worker` needs `app::Clock`, which is not registered"
        );
        assert_eq!(error.exit_code(), 2);
        assert!(error.is_build());
    }
}
