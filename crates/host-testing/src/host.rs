//! `TestHost`: a built host with its events and log lines recorded, and the
//! assertions on them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use host_core::{
    Host, HostBuilder, HostError, ServiceControl, ServiceEvent, ServiceState, ServiceStates,
};
use host_di::ServiceProvider;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tracing_subscriber::filter::Targets;

use crate::builder::TestHostBuilder;
use crate::events::{self, EventLog};
use crate::logs::LogCapture;
use crate::wait;

/// A host built for a test: its lifecycle events recorded from before the
/// start, its log lines captured, and assertions on both.
///
/// Build one with [`TestHost::builder`]. Dropping it without
/// [`stop`](Self::stop) is fine: the host's own drop aborts what still
/// runs.
///
/// # Log lines
///
/// While it lives, a subscriber is the default of the thread that built it:
/// each line goes to the test's output (which `cargo test` shows for a
/// failing test only) and to [`logs`](Self::logs). Being the thread's
/// default, it keeps the lines of tests running at once on other threads
/// apart. That covers everything on a current-thread runtime, which
/// `#[tokio::test]` uses by default; on a multi-thread runtime, the lines
/// logged on the runtime's other threads (most of what services log) are
/// neither shown nor captured, nor are those of `spawn_blocking`. Two test
/// hosts alive at once on one thread: the newer one captures.
///
/// # Examples
///
/// See the [crate docs](crate).
pub struct TestHost {
    host: Host,
    states: ServiceStates,
    events: Arc<EventLog>,
    recorder: Option<JoinHandle<()>>,
    wait_limit: Duration,
    // After the host: its drop may still log.
    logs: LogCapture,
    _content_dir: TempDir,
}

impl TestHost {
    /// A builder set up for a test; see [`TestHostBuilder`].
    pub fn builder() -> TestHostBuilder {
        TestHostBuilder::new()
    }

    pub(crate) fn build(
        builder: HostBuilder,
        content_dir: TempDir,
        log_filter: Targets,
        wait_limit: Duration,
    ) -> Result<Self, HostError> {
        let logs = LogCapture::install(log_filter);
        let host = builder.build()?;
        let states = host.service_states();
        let events = EventLog::subscribe(&states);
        // Built outside a runtime, the recorder waits for `start`.
        let recorder = tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| events.spawn_recorder(&states));
        Ok(Self {
            host,
            states,
            events,
            recorder,
            wait_limit,
            logs,
            _content_dir: content_dir,
        })
    }

    /// Starts the host (see [`Host::start`]); calling it again does nothing.
    ///
    /// # Errors
    ///
    /// What [`Host::start`] returns; the events and the lines of the failed
    /// start stay for assertions.
    pub async fn start(&mut self) -> Result<(), HostError> {
        if self.recorder.is_none() {
            self.recorder = Some(self.events.spawn_recorder(&self.states));
        }
        self.host.start().await
    }

    /// Stops the host (see [`Host::stop`]) and drops the test host. To
    /// assert on what the stop did, stop through
    /// [`host_mut`](Self::host_mut) instead:
    /// `host.host_mut().stop().await?` keeps the test host.
    ///
    /// # Errors
    ///
    /// What [`Host::stop`] returns: a service failed to stop, or the
    /// shutdown timed out.
    pub async fn stop(mut self) -> Result<(), HostError> {
        self.host.stop().await
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The host, to start or stop it by hand.
    pub fn host_mut(&mut self) -> &mut Host {
        &mut self.host
    }

    /// The state of every hosted service.
    pub fn states(&self) -> ServiceStates {
        self.states.clone()
    }

    /// The handle that restarts, pauses and resumes a background service.
    pub fn control(&self) -> ServiceControl {
        self.host.control()
    }

    /// The container the host's services were built from, to resolve what
    /// a test checks (an overridden registration, a fake's record).
    pub fn services(&self) -> &ServiceProvider {
        self.host.services()
    }

    /// Waits until the service called `name` is in a state `wanted`
    /// accepts, and returns that state: its current state if accepted, else
    /// the first state it enters afterwards that is, even if it has moved
    /// on by the time the test runs again (a brief `restarting` is not
    /// missed).
    ///
    /// The wait is bounded on the tokio clock
    /// ([`wait_limit`](TestHostBuilder::wait_limit), default
    /// [`WAIT_LIMIT`](crate::WAIT_LIMIT)), so that a hang fails the test.
    /// Under paused time an idle runtime skips ahead to that limit at once,
    /// so a service that waits for something outside the runtime's timers
    /// (a socket, another thread) cannot be waited for in paused time.
    ///
    /// # Panics
    ///
    /// No service is called `name` (the message names those there are), or
    /// none of its states is accepted within the limit (the message names
    /// its current state and lists every event seen).
    pub async fn wait_for(
        &self,
        name: &str,
        wanted: impl Fn(&ServiceState) -> bool,
    ) -> ServiceState {
        wait::wait_for(&self.states, &self.events, self.wait_limit, name, wanted).await
    }

    /// Every lifecycle event since the host was built, in order.
    pub fn events(&self) -> Vec<ServiceEvent> {
        self.events.all()
    }

    /// Asserts that the services entered these states in this order: each
    /// `(service, state)` pair (a state's name, as
    /// [`ServiceState::as_str`] gives it) is an event's service and the
    /// state it entered, found after the one before it; other events may
    /// come between.
    ///
    /// # Panics
    ///
    /// A pair is not found after the ones before it: the message names it,
    /// says which pairs were found where, and lists every event seen in a
    /// table.
    #[track_caller]
    pub fn assert_events(&self, expected: &[(&str, &str)]) {
        let seen = self.events.all();
        let pairs: Vec<(&str, &str)> = seen
            .iter()
            .map(|event| (&*event.service, event.to.as_str()))
            .collect();
        let found = events::match_in_order(&pairs, expected);
        if found.len() < expected.len() {
            panic!(
                "{}",
                events::mismatch(expected, &found, &self.events.report())
            );
        }
    }

    /// Every log line captured so far: level, spans, target, message and
    /// fields, as the test's output shows them, without time or colour.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lines()
    }

    /// Asserts that a captured line contains `text`.
    ///
    /// # Panics
    ///
    /// None does: the message lists every line captured.
    #[track_caller]
    pub fn assert_logged(&self, text: &str) {
        let lines = self.logs();
        if !lines.iter().any(|line| line.contains(text)) {
            panic!(
                "assert_logged: no line contains `{text}`; the lines logged:\n{}",
                list(&lines)
            );
        }
    }

    /// Asserts that no captured line contains `text`.
    ///
    /// # Panics
    ///
    /// One does: the message lists the lines that do.
    #[track_caller]
    pub fn assert_not_logged(&self, text: &str) {
        let lines: Vec<String> = self
            .logs()
            .into_iter()
            .filter(|line| line.contains(text))
            .collect();
        if !lines.is_empty() {
            panic!(
                "assert_not_logged: {} lines contain `{text}`:\n{}",
                lines.len(),
                list(&lines)
            );
        }
    }
}

/// Lines indented for a panic message.
fn list(lines: &[String]) -> String {
    if lines.is_empty() {
        return "  (none)".to_owned();
    }
    lines
        .iter()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            recorder.abort();
        }
    }
}

impl fmt::Debug for TestHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestHost")
            .field("host", &self.host)
            .field("events", &self.events.len())
            .field("logs", &self.logs)
            .field("wait_limit", &self.wait_limit)
            .finish_non_exhaustive()
    }
}
