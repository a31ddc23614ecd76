//! The built host: start, wait for shutdown, stop.

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use host_di::ServiceProvider;

use crate::bound::Bound;
use crate::logging::LIFETIME_TARGET;
use crate::phases::{Mode, PhaseRunner};
use crate::record::{HostShared, ServiceRecord};
use crate::state::ServiceState;
use crate::watchdog::Watchdog;
use crate::{
    ApplicationLifetime, HostBuilder, HostEnvironment, HostError, HostOptions, Phase,
    ServiceStates, signals,
};

/// Past the shutdown deadline, how long the calls still running get, all at
/// once, before they are abandoned.
const OVERTIME: Duration = Duration::from_millis(200);

/// How long the host waits for aborted `execute` tasks to end before it
/// concludes that they block their threads.
const ABORT_GRACE: Duration = Duration::from_millis(150);

/// How long disposal may take when the shutdown deadline has passed already.
const DISPOSE_GRACE: Duration = Duration::from_millis(100);

/// A built host: its services, their lifetime, and the way to run them
/// (as .NET's `IHost`).
///
/// Most applications call [`HostBuilder::run`], which builds, runs and maps
/// the outcome to an exit code. Drive the host yourself with
/// [`start`](Self::start), [`wait_for_shutdown`](Self::wait_for_shutdown) and
/// [`stop`](Self::stop) when embedding it.
///
/// # Examples
///
/// ```
/// use host_core::Host;
///
/// # #[tokio::main] async fn main() -> Result<(), host_core::HostError> {
/// let mut builder = Host::builder();
/// builder.handle_signals(false);
/// let mut host = builder.build()?;
/// host.start().await?;
/// host.lifetime().stop_application();
/// host.wait_for_shutdown().await;
/// host.stop().await?;
/// # Ok(()) }
/// ```
pub struct Host {
    provider: ServiceProvider,
    records: Vec<Arc<ServiceRecord>>,
    shared: Arc<HostShared>,
    environment: HostEnvironment,
    options: HostOptions,
    states: ServiceStates,
    handle_signals: bool,
    progress: Progress,
    signals: Option<signals::Listener>,
    blocked: Vec<Arc<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Built,
    Started,
    Stopped,
}

/// What a stop did.
struct StopReport {
    stopped: Vec<Arc<str>>,
    error: Option<HostError>,
}

impl Host {
    /// A builder with the defaults: environment from `HOST_ENVIRONMENT`,
    /// signals handled, the default log subscriber.
    pub fn builder() -> HostBuilder {
        HostBuilder::new()
    }

    pub(crate) fn new(
        provider: ServiceProvider,
        records: Vec<Arc<ServiceRecord>>,
        shared: Arc<HostShared>,
        environment: HostEnvironment,
        options: HostOptions,
        states: ServiceStates,
        handle_signals: bool,
    ) -> Self {
        Self {
            provider,
            records,
            shared,
            environment,
            options,
            states,
            handle_signals,
            progress: Progress::Built,
            signals: None,
            blocked: Vec::new(),
        }
    }

    /// The container the host's services were built from.
    pub fn services(&self) -> &ServiceProvider {
        &self.provider
    }

    /// The application lifetime.
    pub fn lifetime(&self) -> &ApplicationLifetime {
        &self.shared.lifetime
    }

    /// The hosting environment.
    pub fn environment(&self) -> &HostEnvironment {
        &self.environment
    }

    /// The host options in force.
    pub fn options(&self) -> &HostOptions {
        &self.options
    }

    /// The state of every hosted service.
    pub fn service_states(&self) -> ServiceStates {
        self.states.clone()
    }

    /// Starts the host: every `starting` hook, every `start` in registration
    /// order, every `started` hook, then the started event.
    ///
    /// If a service fails (or the startup timeout expires), the services
    /// whose `start` completed are stopped again in reverse order and the
    /// original error is returned; no other service is stopped. If a stop is
    /// requested during the start, the start ends early without error and
    /// [`stop`](Self::stop) stops what had started. Calling it again does
    /// nothing.
    pub async fn start(&mut self) -> Result<(), HostError> {
        if self.progress != Progress::Built {
            return Ok(());
        }
        self.progress = Progress::Started;
        if self.handle_signals {
            self.signals = signals::Listener::start(self.lifetime().clone());
        }
        if !self.options.suppress_status_messages {
            tracing::info!(target: LIFETIME_TARGET, "Hosting environment: {}",
                self.environment.environment_name());
            tracing::info!(target: LIFETIME_TARGET, "Content root path: {}",
                self.environment.content_root().display());
        }

        let lifetime = self.shared.lifetime.clone();
        let mut bound = Bound::new(self.options.startup_timeout)
            .interrupted_by(lifetime.stop_requested_token());
        let runner = PhaseRunner {
            lifetime: lifetime.clone(),
            concurrent: self.options.services_start_concurrently,
            mode: Mode::Start,
        };
        let records = self.records.clone();
        for phase in [Phase::Starting, Phase::Start, Phase::Started] {
            let outcome = runner.run(&records, phase, &mut bound).await;
            if let Some(first) = outcome.failures.first() {
                let mut error = HostError::start(first.clone());
                for failure in &outcome.failures[1..] {
                    error = error.also(failure.clone());
                }
                return Err(self.roll_back(error).await);
            }
            if bound.past_deadline() {
                let limit = bound.limit().unwrap_or_default();
                let pending = outcome.unfinished.iter().map(|r| r.name.clone()).collect();
                return Err(self
                    .roll_back(HostError::startup_timeout(limit, pending))
                    .await);
            }
            if bound.is_interrupted() {
                tracing::info!(target: LIFETIME_TARGET,
                    "Stop requested during start; stopping what has started");
                return Ok(());
            }
        }
        lifetime.notify_started();
        if !self.options.suppress_status_messages {
            if self.handle_signals {
                tracing::info!(target: LIFETIME_TARGET,
                    "Application started. Press Ctrl+C to shut down.");
            } else {
                tracing::info!(target: LIFETIME_TARGET, "Application started.");
            }
        }
        Ok(())
    }

    /// Completes when a stop has been requested: by
    /// [`ApplicationLifetime::stop_application`], a failing background
    /// service, or a signal.
    pub async fn wait_for_shutdown(&self) {
        self.lifetime().stop_requested().await;
    }

    /// Stops the host: every `stopping` hook in reverse order, the stopping
    /// event, every `stop` in reverse order, every `stopped` hook, the
    /// stopped event; then disposes the container's singletons.
    ///
    /// Only services whose `start` completed are stopped. A failure never
    /// keeps the other services from stopping; every failure is in the
    /// returned error, as is every service still running when the shutdown
    /// timeout expired (those are aborted). Calling it again does nothing.
    pub async fn stop(&mut self) -> Result<(), HostError> {
        if self.progress == Progress::Stopped {
            return Ok(());
        }
        self.progress = Progress::Stopped;
        let report = self.stop_services().await;
        match report.error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Starts, waits for shutdown, and stops.
    pub async fn run(mut self) -> Result<(), HostError> {
        self.start().await?;
        self.wait_for_shutdown().await;
        self.stop().await
    }

    /// Runs the host and turns the outcome into the process's exit code
    /// (see the [table](crate::exit_code)), logging any error.
    ///
    /// This is the run-to-exit path: if the stop overruns the shutdown
    /// timeout because a task blocks its thread (and so cannot be aborted),
    /// it ends the process itself, with code 3, no later than 750 ms after
    /// the timeout, counted from the stop request.
    pub async fn run_until_exit(mut self) -> ExitCode {
        let lifetime = self.lifetime().clone();
        let watchdog = Watchdog::arm(
            &lifetime,
            self.options.shutdown_timeout,
            self.states.clone(),
        );
        if let Err(error) = self.start().await {
            watchdog.disarm();
            eprintln!("error: {error}");
            return self.exit(error.exit_code());
        }
        self.wait_for_shutdown().await;
        let result = self.stop().await;
        watchdog.disarm();
        let code = match result {
            Ok(()) => lifetime
                .requested_exit_code()
                .map_or(0, crate::error::requested_exit_code),
            Err(error) => error.exit_code(),
        };
        self.exit(code)
    }

    fn exit(&self, code: u8) -> ExitCode {
        if !self.blocked.is_empty() {
            // The runtime could never shut down: its blocked threads would
            // keep the process alive. The log lines are written already.
            std::process::exit(i32::from(code));
        }
        ExitCode::from(code)
    }

    /// Undoes a failed start: stops exactly the services whose `start`
    /// completed, in reverse order.
    async fn roll_back(&mut self, error: HostError) -> HostError {
        self.progress = Progress::Stopped;
        let report = self.stop_services().await;
        error.with_rollback(report.stopped, report.error)
    }

    async fn stop_services(&mut self) -> StopReport {
        let lifetime = self.shared.lifetime.clone();
        let started: Vec<Arc<ServiceRecord>> = self
            .records
            .iter()
            .rev()
            .filter(|record| record.start_completed())
            .cloned()
            .collect();
        let bound = Bound::new(Some(self.options.shutdown_timeout)).with_overtime(OVERTIME);
        let deadline = bound.deadline().unwrap_or_else(tokio::time::Instant::now);
        let runner = PhaseRunner {
            lifetime: lifetime.clone(),
            concurrent: self.options.services_stop_concurrently,
            mode: Mode::Stop,
        };
        let phases = stop_phases(
            runner,
            started.clone(),
            bound,
            !self.options.suppress_status_messages,
        );
        let mut failures = self.shared.take_failures();
        let outcome = if self.options.services_stop_concurrently {
            phases.await
        } else {
            // Awaited from the thread that blocks on the runtime (as under
            // `#[tokio::main]`), every service's stop would wake that thread
            // and then a worker; on a worker it costs no thread wake-up.
            match tokio::spawn(phases).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::error!(target: LIFETIME_TARGET, "the stop failed: {error}");
                    StopOutcome {
                        unfinished: started.clone(),
                        ..StopOutcome::default()
                    }
                }
            }
        };
        failures.extend(outcome.failures);
        let stopped = outcome.stopped;
        let mut unfinished = outcome.unfinished;
        // Failures of `execute` that ended while stopping.
        failures.extend(self.shared.take_failures());

        let timed_out = self.abort_stragglers(&started, &mut unfinished).await;
        // A start that never completed (failed elsewhere, timed out, or
        // interrupted) leaves no service `starting` once the host is down.
        for record in &self.records {
            record.advance(
                |state| matches!(state, ServiceState::Starting),
                ServiceState::Stopped,
            );
        }
        lifetime.notify_stopped();
        self.dispose(deadline).await;
        self.signals = None;
        StopReport {
            stopped,
            error: HostError::stopped_with(failures, timed_out, self.options.shutdown_timeout),
        }
    }

    /// Aborts what still runs after the stop: services whose calls timed
    /// out, and any `execute` task still going. Returns their names; the
    /// ones that do not end even when aborted are kept in `self.blocked`.
    async fn abort_stragglers(
        &mut self,
        started: &[Arc<ServiceRecord>],
        unfinished: &mut Vec<Arc<ServiceRecord>>,
    ) -> Vec<Arc<str>> {
        for record in started {
            if record.execute_running() && !unfinished.iter().any(|r| Arc::ptr_eq(r, record)) {
                unfinished.push(record.clone());
            }
        }
        if unfinished.is_empty() {
            return Vec::new();
        }
        let names: Vec<Arc<str>> = unfinished.iter().map(|r| r.name.clone()).collect();
        tracing::error!(target: LIFETIME_TARGET,
            "shutdown timed out after {:?}; still running: {} (aborted)",
            self.options.shutdown_timeout,
            names.iter().map(|n| &**n).collect::<Vec<_>>().join(", "));
        let ends: Vec<_> = unfinished
            .iter()
            .filter_map(|record| record.abort_execute())
            .collect();
        let _ = tokio::time::timeout(ABORT_GRACE, futures::future::join_all(ends)).await;
        for record in unfinished.iter() {
            if record.execute_running() {
                tracing::error!(target: LIFETIME_TARGET, service = %record.name,
                    "`{}` blocks its thread and cannot be aborted; use \
                     tokio::task::spawn_blocking for blocking work", record.name);
                self.blocked.push(record.name.clone());
            }
            record.set_state(ServiceState::Stopped);
        }
        names
    }

    /// Disposes the container's singletons, within what is left of the
    /// shutdown timeout (and a short grace when nothing is left).
    async fn dispose(&self, deadline: tokio::time::Instant) {
        let deadline = deadline.max(tokio::time::Instant::now() + DISPOSE_GRACE);
        if tokio::time::timeout_at(deadline, self.provider.dispose())
            .await
            .is_err()
        {
            tracing::error!(target: LIFETIME_TARGET,
                "disposing the container's singletons did not finish within the shutdown timeout");
        }
    }
}

/// What the stop phases did.
#[derive(Default)]
struct StopOutcome {
    /// The services whose `stop` returned `Ok`, in that order.
    stopped: Vec<Arc<str>>,
    failures: Vec<crate::ServiceFailure>,
    /// The services with a call still running when the bound ended.
    unfinished: Vec<Arc<ServiceRecord>>,
}

/// Runs `stopping`, the stopping event, `stop` and `stopped` over `started`
/// (already in reverse order).
async fn stop_phases(
    runner: PhaseRunner,
    started: Vec<Arc<ServiceRecord>>,
    mut bound: Bound,
    status_messages: bool,
) -> StopOutcome {
    let mut outcome = StopOutcome::default();
    for phase in [Phase::Stopping, Phase::Stop, Phase::Stopped] {
        if phase == Phase::Stop {
            runner.lifetime.notify_stopping();
            if status_messages {
                tracing::info!(target: LIFETIME_TARGET, "Application is shutting down...");
            }
        }
        let ran = runner.run(&started, phase, &mut bound).await;
        if phase == Phase::Stop {
            outcome.stopped = ran.succeeded.iter().map(|r| r.name.clone()).collect();
        }
        outcome.failures.extend(ran.failures);
        for record in ran.unfinished {
            if !outcome
                .unfinished
                .iter()
                .any(|known| Arc::ptr_eq(known, &record))
            {
                outcome.unfinished.push(record);
            }
        }
    }
    outcome
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("environment", &self.environment)
            .field("options", &self.options)
            .field("services", &self.states)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}
