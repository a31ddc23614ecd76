//! The built host: start, wait for shutdown, stop.

use std::fmt;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{self, Either};
use host_di::ServiceProvider;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::backstop;
use crate::lifecycle::bound::Bound;
use crate::lifecycle::exit_guard;
use crate::lifecycle::lifetime::Event;
use crate::lifecycle::phases::{Mode, PhaseOutcome, PhaseRunner, run_callbacks};
use crate::lifecycle::signals;
use crate::lifecycle::watchdog::{self as exit_watchdog, Watchdog};
use crate::logging::LIFETIME_TARGET;
use crate::services::failure::ServiceFailure;
use crate::services::record::{HostShared, ServiceRecord};
use crate::services::state::ServiceState;
use crate::supervision::liveness;
use crate::systemd::{self, Extender, Systemd};
use crate::{
    ApplicationLifetime, HostBuilder, HostEnvironment, HostError, HostOptions, Phase,
    ServiceControl, ServiceStates,
};
use tokio_util::task::AbortOnDropHandle;

/// Past the shutdown deadline, how long the calls still running get, all at
/// once, before they are abandoned.
pub(crate) const OVERTIME: Duration = Duration::from_millis(200);

/// How long the host waits for aborted `execute` tasks to end before it
/// concludes that they block their threads.
const ABORT_GRACE: Duration = Duration::from_millis(150);

/// How long disposal may take when the shutdown deadline has passed already.
const DISPOSE_GRACE: Duration = Duration::from_millis(100);

/// Past the shutdown timeout, how long [`Host::stop`] waits for the stop's
/// task before it gives up on it: the overtime, the abort grace and the
/// disposal grace, and a margin. Only a stop that blocks its own thread
/// (a `stop` that never yields) takes longer; the run-to-exit watchdog
/// (750 ms) comes later, so its path ends the process with the same report.
const ABANDON_AFTER: Duration = OVERTIME
    .saturating_add(ABORT_GRACE)
    .saturating_add(DISPOSE_GRACE)
    .saturating_add(Duration::from_millis(150));

/// A built host: its services, their lifetime, and the way to run them
/// (as .NET's `IHost`).
///
/// Most applications call [`HostBuilder::run`], which builds, runs and maps
/// the outcome to an exit code. Drive the host yourself with
/// [`start`](Self::start), [`wait_for_shutdown`](Self::wait_for_shutdown) and
/// [`stop`](Self::stop) when embedding it.
///
/// # Cancellation
///
/// - [`start`](Self::start) is cancellation-safe in the sense that nothing
///   is lost: dropping it abandons the `start` calls in progress, and a later
///   [`stop`](Self::stop) (or dropping the host) stops what had started.
/// - [`wait_for_shutdown`](Self::wait_for_shutdown) is cancellation-safe.
/// - [`stop`](Self::stop) is cancellation-safe: once begun, the stop runs to
///   its end on a task of its own, within the shutdown timeout, whatever
///   happens to its caller; the next call awaits that same stop.
/// - Dropping a started host whose stop has not begun aborts what runs
///   without waiting (see [`Drop`](#impl-Drop-for-Host)); dropping
///   [`run`](Self::run) after its stop began leaves that stop running to its
///   end.
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
    control: ServiceControl,
    handle_signals: bool,
    progress: Progress,
    /// Watches heartbeat deadlines from the start until the stop begins.
    liveness: Option<AbortOnDropHandle<()>>,
    signals: Option<signals::Listener>,
    /// Fired when a stop (a rollback included) begins, for the watchdog.
    stop_began: CancellationToken,
    blocked: Vec<Arc<str>>,
    /// systemd's environment, read at `build()`; `None` outside systemd or
    /// when turned off.
    systemd: Option<Arc<Systemd>>,
    /// Whether this host speaks for the process to systemd: on the
    /// run-to-exit path only (see the `systemd` module).
    notifying: bool,
    /// The start's or the stop's `EXTEND_TIMEOUT_USEC`, while it runs.
    extender: Option<systemd::Task>,
}

#[derive(Debug)]
enum Progress {
    Built,
    Started,
    /// The stop runs on its own task; its outcome has not been collected.
    /// The instant is when the caller gives up waiting for it.
    Stopping(JoinHandle<StopReport>, Option<tokio::time::Instant>),
    Stopped,
}

/// What a stop did.
struct StopReport {
    stopped: Vec<Arc<str>>,
    error: Option<HostError>,
    /// Services whose `execute` blocks its thread: aborting them did not end them.
    blocked: Vec<Arc<str>>,
}

impl fmt::Debug for StopReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopReport")
            .field("stopped", &self.stopped)
            .field("failed", &self.error.is_some())
            .finish_non_exhaustive()
    }
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
        let stop_began = shared.stop_began.clone();
        Self {
            provider,
            records,
            shared,
            environment,
            options,
            states,
            control: ServiceControl::new(),
            handle_signals,
            progress: Progress::Built,
            liveness: None,
            signals: None,
            stop_began,
            blocked: Vec::new(),
            systemd: None,
            notifying: false,
            extender: None,
        }
    }

    /// Sets the control handle `build()` registered with the container.
    pub(crate) fn with_control(mut self, control: ServiceControl) -> Self {
        self.control = control;
        self
    }

    /// Sets what `build()` read of systemd's environment.
    pub(crate) fn with_systemd(mut self, systemd: Option<Systemd>) -> Self {
        self.systemd = systemd.map(Arc::new);
        self
    }

    /// systemd, when this host notifies it.
    fn active_systemd(&self) -> Option<&Arc<Systemd>> {
        self.systemd.as_ref().filter(|_| self.notifying)
    }

    /// What reloads the configuration on SIGHUP: set when this host
    /// notifies systemd (`Type=notify-reload`), which is also what sends it.
    #[cfg(unix)]
    fn reloader(&self) -> Option<systemd::Reloader> {
        let systemd = self.active_systemd()?.clone();
        let configuration = self.provider.get::<host_config::Configuration>().ok()?;
        Some(systemd::Reloader::new(systemd, (*configuration).clone()))
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

    /// The handle that restarts, pauses and resumes a background service
    /// while the host runs (also resolvable from the container).
    pub fn control(&self) -> ServiceControl {
        self.control.clone()
    }

    /// Starts the host: every `starting` hook, every `start` in registration
    /// order, every `started` hook, the started event, then every
    /// [`on_started`](ApplicationLifetime::on_started) callback.
    ///
    /// If a service or callback fails (or the startup timeout expires), the
    /// services whose `start` completed are stopped again in reverse order
    /// and the original error is returned; no other service is stopped. A
    /// background service whose `execute` fails (under `StopHost`) before the
    /// start ends fails it likewise; in a sequential start the host yields
    /// to the runtime once before a service of another kind follows
    /// background services, so that an `execute` that fails at once is seen
    /// before that service starts. If a stop is otherwise requested before or
    /// during the start, the start ends early without error, a warning names
    /// the call it interrupted and the services never started, and
    /// [`stop`](Self::stop) stops what had started. Calling it again does
    /// nothing.
    ///
    /// Dropping the future abandons the `start` calls in progress; what had
    /// started is stopped by a later [`stop`](Self::stop), or aborted when
    /// the host is dropped. A rollback, once begun, runs to its end like any
    /// stop.
    pub async fn start(&mut self) -> Result<(), HostError> {
        if !matches!(self.progress, Progress::Built) {
            return Ok(());
        }
        self.progress = Progress::Started;
        let _ = self.shared.runtime.set(tokio::runtime::Handle::current());
        if self.handle_signals {
            #[cfg(unix)]
            let listener = signals::Listener::start(self.lifetime().clone(), self.reloader());
            #[cfg(not(unix))]
            let listener = signals::Listener::start(self.lifetime().clone());
            self.signals = listener;
        }
        if !self.options.suppress_status_messages {
            tracing::info!(target: LIFETIME_TARGET, "Hosting environment: {}",
                self.environment.environment_name());
            tracing::info!(target: LIFETIME_TARGET, "Content root path: {}",
                self.environment.content_root().display());
        }

        self.liveness = liveness::spawn(&self.records, self.shared.clone());
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
            if let Some(error) = HostError::start_failed(outcome.failures.iter().cloned()) {
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
                return self.interrupted_start(phase, &outcome).await;
            }
        }
        lifetime.notify_started();
        let callbacks = lifetime.take_callbacks(Event::Started);
        let ran = run_callbacks(callbacks, Phase::Started, &mut bound).await;
        if let Some(error) = HostError::start_failed(ran.failures) {
            return Err(self.roll_back(error).await);
        }
        if bound.past_deadline() {
            let limit = bound.limit().unwrap_or_default();
            return Err(self
                .roll_back(HostError::startup_timeout(limit, ran.unfinished))
                .await);
        }
        if bound.is_interrupted() {
            return self
                .interrupted_start(Phase::Started, &PhaseOutcome::default())
                .await;
        }
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

    /// The start ended early on a stop request. A background service whose
    /// `execute` failed (under `StopHost`) while the host was starting made
    /// that request: the start fails, as if its `start` had. Otherwise the
    /// stop is a graceful one; what it cut short is named.
    async fn interrupted_start(
        &mut self,
        phase: Phase,
        outcome: &PhaseOutcome,
    ) -> Result<(), HostError> {
        if let Some(error) = HostError::start_failed(self.shared.take_failures()) {
            return Err(self.roll_back(error).await);
        }
        let interrupted: Vec<String> = outcome
            .unfinished
            .iter()
            .map(|record| format!("{} ({phase})", record.name))
            .collect();
        let never: Vec<&str> = self
            .records
            .iter()
            .filter(|record| {
                !record.start_completed()
                    && !outcome.unfinished.iter().any(|r| Arc::ptr_eq(r, record))
            })
            .map(|record| &*record.name)
            .collect();
        let mut message = String::from("Stop requested during start");
        if !interrupted.is_empty() {
            message.push_str(&format!("; interrupted: {}", interrupted.join(", ")));
        }
        if !never.is_empty() {
            message.push_str(&format!("; never started: {}", never.join(", ")));
        }
        if interrupted.is_empty() && never.is_empty() {
            tracing::info!(target: LIFETIME_TARGET, "{message}; stopping what has started");
        } else {
            tracing::warn!(target: LIFETIME_TARGET, "{message}; stopping what has started");
        }
        Ok(())
    }

    /// Completes when a stop has been requested: by
    /// [`ApplicationLifetime::stop_application`], a failing background
    /// service, or a signal. Cancellation-safe.
    pub async fn wait_for_shutdown(&self) {
        self.lifetime().stop_requested().await;
    }

    /// Stops the host: every `stopping` hook in reverse order, the stopping
    /// event and every [`on_stopping`](ApplicationLifetime::on_stopping)
    /// callback, every `stop` in reverse order, every `stopped` hook, the
    /// stopped event and every [`on_stopped`](ApplicationLifetime::on_stopped)
    /// callback; then disposes the container's singletons.
    ///
    /// Only services whose `start` completed are stopped. A failure never
    /// keeps the other services from stopping; every failure is in the
    /// returned error, as is every service still running when the shutdown
    /// timeout expired (those are aborted), and every disposal that panicked.
    ///
    /// On a multi-thread runtime this returns within the shutdown timeout
    /// and 600 ms even when a service blocks its thread: if the stop's own
    /// task is stuck in a `stop` that never yields, the host stops waiting
    /// for it, names the services still stopping or running (logged as
    /// blocking their thread) and returns a shutdown timeout. That task and
    /// the blocked thread are left as they are: nothing can end them but the
    /// end of the process, which this path never brings about itself; the
    /// `stopped` hooks, `on_stopped` callbacks and disposal it had not reached
    /// never run.
    ///
    /// Cancellation-safe: the stop runs on a task of its own, so dropping
    /// this future (a `select!`, a `timeout`) does not interrupt it; it ends
    /// within the shutdown timeout all the same. The next call awaits that
    /// same stop and returns its outcome. Once the outcome has been
    /// returned, further calls return `Ok(())` at once.
    pub async fn stop(&mut self) -> Result<(), HostError> {
        match self.finish_stop().await {
            Some(report) => report.error.map_or(Ok(()), Err),
            None => Ok(()),
        }
    }

    /// Starts, waits for shutdown, and stops.
    ///
    /// Dropping the future before the stop began aborts the host (as
    /// dropping the host does); dropping it after leaves the stop running to
    /// its end. This path never ends the process itself; on a multi-thread
    /// runtime it returns even when a service blocks its thread (see
    /// [`stop`](Self::stop)).
    pub async fn run(mut self) -> Result<(), HostError> {
        self.start().await?;
        self.wait_for_shutdown().await;
        self.stop().await
    }

    /// Runs the host and turns the outcome into the process's exit code
    /// (see the [table](crate::exit_code)), logging any error.
    ///
    /// This is the run-to-exit path, for `main`. The process never outlives
    /// a stop, a failed start's rollback included, by more than the shutdown
    /// timeout and a second: if a task blocks its thread (and so cannot be
    /// aborted), the host ends the process itself, with code 3, no later than
    /// 750 ms after the timeout. Called on the process's main thread (as
    /// under `#[tokio::main]`), it also ends the process with the returned
    /// code if the runtime has not shut down 500 ms after it began to (a
    /// `spawn_blocking` task that never returns would otherwise keep the
    /// process alive for good).
    pub async fn run_until_exit(mut self) -> ExitCode {
        let lifetime = self.lifetime().clone();
        let watchdog = Watchdog::arm(
            &lifetime,
            &self.stop_began,
            self.options.shutdown_timeout,
            self.states.clone(),
        );
        self.notifying = self.systemd.is_some();
        // Fed from start until the process exits (this path's end).
        let _feeding = self.active_systemd().and_then(|systemd| {
            Some(
                systemd
                    .watchdog?
                    .spawn(systemd.clone(), self.states.clone()),
            )
        });
        if let Some(systemd) = self.active_systemd().cloned() {
            systemd.notifier.send("STATUS=starting");
            let deadline = self
                .options
                .startup_timeout
                .and_then(|timeout| tokio::time::Instant::now().checked_add(timeout));
            self.extender = deadline
                .map(|deadline| Extender::Start.spawn(systemd, self.states.clone(), deadline));
        }
        let started = self.start().await;
        if !self.stop_began.is_cancelled() {
            self.extender = None;
        }
        if let Some(systemd) = self.active_systemd() {
            // Ready once every service has started (the started event),
            // even if a stop was requested since: a job that is done at once
            // is still a start that succeeded. A start cut short before is not.
            if started.is_ok() && self.lifetime().is_started() {
                systemd.notifier.send("READY=1\nSTATUS=running");
            }
        }
        if let Err(error) = started {
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
            // Code 3, as the watchdog's: a rollback that blocks is a
            // shutdown that timed out, whatever failed the start.
            std::process::exit(i32::from(crate::error::exit_code::SHUTDOWN_TIMED_OUT));
        }
        exit_guard::arm_on_main_thread(code);
        ExitCode::from(code)
    }

    /// Undoes a failed start: stops exactly the services whose `start`
    /// completed, in reverse order.
    async fn roll_back(&mut self, error: HostError) -> HostError {
        match self.finish_stop().await {
            Some(report) => error.with_rollback(report.stopped, report.error),
            None => error,
        }
    }

    /// Begins the stop unless it has begun, then awaits it. `None` when its
    /// outcome was collected already.
    async fn finish_stop(&mut self) -> Option<StopReport> {
        self.begin_stop();
        let Progress::Stopping(task, give_up) = &mut self.progress else {
            return None;
        };
        // Dropped here, the task goes on and stays in `self.progress`.
        let joined = match *give_up {
            Some(give_up) => match future::select(&mut *task, pin!(backstop::until(give_up))).await
            {
                Either::Left((joined, _)) => joined,
                Either::Right(_) => {
                    self.progress = Progress::Stopped;
                    let report = self.abandoned_stop();
                    self.blocked.extend(report.blocked.iter().cloned());
                    return Some(report);
                }
            },
            None => task.await,
        };
        self.progress = Progress::Stopped;
        self.extender = None;
        let report = joined.unwrap_or_else(|error| {
            // The task catches every panic of a service; this is our own.
            tracing::error!(target: LIFETIME_TARGET, "the stop failed: {error}");
            StopReport {
                stopped: Vec::new(),
                error: HostError::stopped_with(
                    vec![ServiceFailure::panic_message(
                        "host".into(),
                        Phase::Stop,
                        error.to_string(),
                    )],
                    Vec::new(),
                    self.options.shutdown_timeout,
                ),
                blocked: Vec::new(),
            }
        });
        self.blocked.extend(report.blocked.iter().cloned());
        Some(report)
    }

    /// The report of a stop whose task has not ended long past its deadline:
    /// a `stop` (or hook) blocks the thread that polls the stop. Built from
    /// the services' states, as the watchdog does.
    fn abandoned_stop(&self) -> StopReport {
        let blocked: Vec<Arc<str>> = self
            .records
            .iter()
            .filter(|record| {
                matches!(
                    record.state(),
                    ServiceState::Starting | ServiceState::Running | ServiceState::Stopping
                ) || record.execute_running()
            })
            .map(|record| record.name.clone())
            .collect();
        let names = if blocked.is_empty() {
            "none known".to_owned()
        } else {
            blocked.iter().map(|n| &**n).collect::<Vec<_>>().join(", ")
        };
        tracing::error!(target: LIFETIME_TARGET,
            "shutdown timed out after {:?}; still running: {names} (the stop cannot make \
             progress: a thread is blocked; abandoning it, the thread stays blocked)",
            self.options.shutdown_timeout);
        let mut timed_out = blocked.clone();
        if timed_out.is_empty() {
            timed_out.push("the stop".into());
        }
        StopReport {
            stopped: Vec::new(),
            error: HostError::stopped_with(
                self.shared.take_failures(),
                timed_out,
                self.options.shutdown_timeout,
            ),
            blocked,
        }
    }

    /// Spawns the stop, once, on a task of its own: from then on it runs to
    /// its end whatever happens to the caller or to the host.
    fn begin_stop(&mut self) {
        if !matches!(self.progress, Progress::Built | Progress::Started) {
            return;
        }
        self.stop_began.cancel();
        if let Some(systemd) = self.active_systemd().cloned() {
            systemd.notifier.send("STOPPING=1\nSTATUS=stopping");
            // The run-to-exit path ends the process by then at the latest.
            let deadline = tokio::time::Instant::now()
                .checked_add(self.options.shutdown_timeout)
                .and_then(|deadline| deadline.checked_add(exit_watchdog::GRACE));
            self.extender = deadline
                .map(|deadline| Extender::Stop.spawn(systemd, self.states.clone(), deadline));
        }
        let stop = Stop {
            provider: self.provider.clone(),
            records: self.records.clone(),
            shared: self.shared.clone(),
            options: self.options.clone(),
            signals: self.signals.take(),
        };
        let give_up = tokio::time::Instant::now()
            .checked_add(self.options.shutdown_timeout)
            .and_then(|deadline| deadline.checked_add(ABANDON_AFTER));
        self.progress = Progress::Stopping(tokio::spawn(stop.run()), give_up);
    }
}

/// Dropping a host whose stop has not begun (a `run()` future dropped
/// while running, a host never stopped) aborts it without waiting, as
/// disposing a .NET host does: every background service's stopping token is
/// cancelled and its `execute` task aborted, and the container's sync
/// disposals run (a service that spawned tasks, such as the web server,
/// ends them there). Async disposals cannot be awaited and are named in a
/// warning. Dropping a host whose stop has begun leaves that stop running to
/// its end.
impl Drop for Host {
    fn drop(&mut self) {
        match self.progress {
            Progress::Built | Progress::Started => {}
            Progress::Stopping(..) | Progress::Stopped => return,
        }
        if matches!(self.progress, Progress::Started) {
            tracing::warn!(target: LIFETIME_TARGET,
                "the host was dropped without being stopped; aborting its services");
            for record in &self.records {
                // Cancels its stopping token and aborts the task; nothing waits.
                drop(record.abort_execute());
                record.advance(
                    |state| {
                        matches!(
                            state,
                            ServiceState::Starting | ServiceState::Running | ServiceState::Stopping
                        )
                    },
                    ServiceState::Stopped,
                );
            }
        }
        self.stop_began.cancel();
        self.signals = None;
        self.shared.set_provider(None);
        self.provider.dispose_now();
    }
}

/// What a stop needs, owned, so that it can run on a task of its own.
struct Stop {
    provider: ServiceProvider,
    records: Vec<Arc<ServiceRecord>>,
    shared: Arc<HostShared>,
    options: HostOptions,
    /// Dropped at the very end: until then a second signal forces the exit.
    signals: Option<signals::Listener>,
}

impl Stop {
    async fn run(mut self) -> StopReport {
        let lifetime = self.shared.lifetime.clone();
        let started: Vec<Arc<ServiceRecord>> = self
            .records
            .iter()
            .rev()
            .filter(|record| record.start_completed())
            .cloned()
            .collect();
        let mut bound = Bound::new(Some(self.options.shutdown_timeout)).with_overtime(OVERTIME);
        let deadline = bound.deadline();
        let runner = PhaseRunner {
            lifetime: lifetime.clone(),
            concurrent: self.options.services_stop_concurrently,
            mode: Mode::Stop,
        };
        let mut failures = self.shared.take_failures();
        // Outside tokio's cooperative budget: the phases await thousands of
        // `JoinHandle`s at once, and once the budget of a poll is spent each
        // of them answers `Pending` and wakes itself, so the set of running
        // calls would re-poll every one of them on every poll (quadratic:
        // 4.8 s instead of 0.1 s to stop 100 000 services concurrently). The
        // phases are finite work that yields whenever it waits.
        let outcome = tokio::task::unconstrained(stop_phases(
            runner,
            started.clone(),
            &mut bound,
            !self.options.suppress_status_messages,
        ))
        .await;
        failures.extend(outcome.failures);
        let stopped = outcome.stopped;
        let mut unfinished = outcome.unfinished;
        // Failures of `execute` that ended while stopping.
        failures.extend(self.shared.take_failures());

        end_cut_short(&self.records).await;
        let (mut timed_out, blocked) = abort_stragglers(&started, &mut unfinished).await;
        // A start that never completed (failed elsewhere, timed out, or
        // interrupted) leaves no service `starting` once the host is down.
        for record in &self.records {
            record.advance(
                |state| matches!(state, ServiceState::Starting),
                ServiceState::Stopped,
            );
        }
        timed_out.extend(outcome.callbacks_unfinished);
        lifetime.notify_stopped();
        let callbacks = lifetime.take_callbacks(Event::Stopped);
        let ran = run_callbacks(callbacks, Phase::Stopped, &mut bound).await;
        failures.extend(ran.failures);
        timed_out.extend(ran.unfinished);
        self.shared.set_provider(None);
        let disposal = dispose(&self.provider, deadline).await;
        failures.extend(disposal.failures);
        timed_out.extend(disposal.skipped);
        // Only services' own stop timeouts, or the host's as well.
        let limit = bound
            .past_deadline()
            .then_some(self.options.shutdown_timeout);
        // Looked for only when something timed out: a clean stop of many
        // services need not walk them again.
        let own_timeouts: Vec<(Arc<str>, Duration)> = if timed_out.is_empty() {
            Vec::new()
        } else {
            self.records
                .iter()
                .filter_map(|record| {
                    Some((record.name.clone(), record.own_stop_timeout_expired()?))
                })
                .collect()
        };
        let error = HostError::stopped_with(failures, timed_out, limit)
            .map(|error| error.with_own_timeouts(own_timeouts));
        if let Some(error) = error.as_ref().filter(|error| error.is_shutdown_timeout()) {
            // The message's first line: "shutdown timed out ...; still running: ...".
            let message = error.to_string();
            let line = message.lines().next().unwrap_or_default();
            tracing::error!(target: LIFETIME_TARGET, "{line}");
        }
        self.signals = None;
        StopReport {
            stopped,
            error,
            blocked,
        }
    }
}

/// Ends the `execute` of background services whose start was cut short
/// after it was spawned (a start that waited for their readiness, dropped
/// when another service's start failed): no stop comes for a start that
/// never completed. Asked through its token first, aborted past a short
/// grace; not a timeout of the stop.
async fn end_cut_short(records: &[Arc<ServiceRecord>]) {
    let cut_short: Vec<&Arc<ServiceRecord>> = records
        .iter()
        .filter(|record| !record.start_completed() && record.execute_running())
        .collect();
    if cut_short.is_empty() {
        return;
    }
    let asked = futures::future::join_all(cut_short.iter().map(|record| record.stop_execute()));
    if tokio::time::timeout(ABORT_GRACE, asked).await.is_err() {
        for record in &cut_short {
            drop(record.abort_execute());
        }
    }
}

/// Aborts what still runs after the stop: services whose calls timed out,
/// and any `execute` task still going. Returns their names, and those of the
/// ones that do not end even when aborted (they block their threads).
async fn abort_stragglers(
    started: &[Arc<ServiceRecord>],
    unfinished: &mut Vec<Arc<ServiceRecord>>,
) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
    for record in started {
        if record.execute_running() && !unfinished.iter().any(|r| Arc::ptr_eq(r, record)) {
            unfinished.push(record.clone());
        }
    }
    if unfinished.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let names: Vec<Arc<str>> = unfinished.iter().map(|r| r.name.clone()).collect();
    let ends: Vec<_> = unfinished
        .iter()
        .filter_map(|record| record.abort_execute())
        .collect();
    let _ = tokio::time::timeout(ABORT_GRACE, futures::future::join_all(ends)).await;
    let mut blocked = Vec::new();
    for record in unfinished.iter() {
        if record.execute_running() {
            tracing::error!(target: LIFETIME_TARGET, service = %record.name,
                "`{}` blocks its thread and cannot be aborted; use \
                 tokio::task::spawn_blocking for blocking work", record.name);
            blocked.push(record.name.clone());
        }
        record.set_state(ServiceState::Stopped);
    }
    (names, blocked)
}

/// What disposing the container's singletons went wrong with.
struct Disposal {
    /// Disposals that panicked, as failures naming the service.
    failures: Vec<ServiceFailure>,
    /// Async disposals not awaited because the deadline had passed.
    skipped: Vec<Arc<str>>,
}

/// Disposes the container's singletons, one at a time, newest first, within
/// what is left of the shutdown timeout (and a short grace when nothing is
/// left). Past it the sync disposals still run; the async ones are named.
async fn dispose(provider: &ServiceProvider, deadline: Option<tokio::time::Instant>) -> Disposal {
    // No shutdown deadline (a timeout too large for an instant) means none here.
    let deadline = deadline.map(|deadline| {
        tokio::time::Instant::now()
            .checked_add(DISPOSE_GRACE)
            .map_or(deadline, |grace| deadline.max(grace))
    });
    let expired = async move {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    let report = provider.dispose_within(expired).await;
    let failures = report
        .panicked()
        .iter()
        .map(|(service, message)| {
            ServiceFailure::panic_message((*service).into(), Phase::Dispose, message.clone())
        })
        .collect();
    let skipped = report
        .skipped()
        .iter()
        .map(|service| Arc::from(format!("{service} (disposal)")))
        .collect();
    Disposal { failures, skipped }
}

/// What the stop phases did.
#[derive(Default)]
struct StopOutcome {
    /// The services whose `stop` returned `Ok`, in that order.
    stopped: Vec<Arc<str>>,
    failures: Vec<ServiceFailure>,
    /// The services with a call still running when the bound ended.
    unfinished: Vec<Arc<ServiceRecord>>,
    /// The `on_stopping` callbacks still running then.
    callbacks_unfinished: Vec<Arc<str>>,
}

/// Runs `stopping`, the stopping event and its callbacks, `stop` and
/// `stopped` over `started` (already in reverse order).
async fn stop_phases(
    runner: PhaseRunner,
    started: Vec<Arc<ServiceRecord>>,
    bound: &mut Bound,
    status_messages: bool,
) -> StopOutcome {
    let mut outcome = StopOutcome::default();
    for phase in [Phase::Stopping, Phase::Stop, Phase::Stopped] {
        if phase == Phase::Stop {
            runner.lifetime.notify_stopping();
            if status_messages {
                tracing::info!(target: LIFETIME_TARGET, "Application is shutting down...");
            }
            let callbacks = runner.lifetime.take_callbacks(Event::Stopping);
            let ran = run_callbacks(callbacks, Phase::Stopping, bound).await;
            outcome.failures.extend(ran.failures);
            outcome.callbacks_unfinished = ran.unfinished;
        }
        let ran = runner.run(&started, phase, bound).await;
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
