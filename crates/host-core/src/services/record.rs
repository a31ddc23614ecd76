//! The host's bookkeeping for one hosted service: its state, its options,
//! and the supervised task of a background service's `execute`.

use std::any::{Any, type_name};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures::task::AtomicWaker;
use tokio::sync::{Notify, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use host_di::ServiceProvider;

use crate::scheduling::periodic::ScheduleSlot;
use crate::services::failure::ServiceFailure;
use crate::services::state::{Leadership, ServiceState, ServiceStatus};
use crate::supervision::dependencies::{self, Edge};
use crate::supervision::election::Election;
use crate::supervision::events::EventHub;
use crate::supervision::options::ServiceSettings;
use crate::supervision::supervisor;
use crate::{
    ApplicationLifetime, BackgroundService, BackgroundServiceFailure, HostedService, ServiceError,
};

/// What the host's services share: where failures are reported, the
/// lifetime, the clock heartbeats count on, the event hub.
#[derive(Debug)]
pub(crate) struct HostShared {
    pub(crate) lifetime: ApplicationLifetime,
    pub(crate) on_failure: BackgroundServiceFailure,
    failures: Mutex<Vec<ServiceFailure>>,
    /// What heartbeats are counted from, so that one fits in an atomic.
    pub(crate) epoch: Instant,
    /// Wakes the liveness monitor when a run with a heartbeat begins.
    pub(crate) liveness: Notify,
    pub(crate) events: Arc<EventHub>,
    /// Fired when the host's stop begins: no restart begins after it.
    pub(crate) stop_began: CancellationToken,
    /// The host's shutdown timeout: how long a restart waits for a run to
    /// return when the service sets no stop timeout of its own.
    pub(crate) shutdown_timeout: Duration,
    /// The runtime the host started on: the control handle may be called
    /// from any thread, and a restart's abort timer runs there.
    pub(crate) runtime: OnceLock<tokio::runtime::Handle>,
    /// The container, for periodic services' scopes; taken when the host
    /// has stopped or is dropped (the container holds the services' states,
    /// which hold this: keeping it would be a cycle).
    provider: Mutex<Option<ServiceProvider>>,
}

impl HostShared {
    pub(crate) fn new(
        lifetime: ApplicationLifetime,
        on_failure: BackgroundServiceFailure,
        events: Arc<EventHub>,
        shutdown_timeout: Duration,
    ) -> Self {
        Self {
            shutdown_timeout,
            runtime: OnceLock::new(),
            provider: Mutex::new(None),
            lifetime,
            on_failure,
            failures: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            liveness: Notify::new(),
            events,
            stop_began: CancellationToken::new(),
        }
    }

    pub(crate) fn set_provider(&self, provider: Option<ServiceProvider>) {
        *lock(&self.provider) = provider;
    }

    /// The container, while the host has not stopped.
    pub(crate) fn provider(&self) -> Option<ServiceProvider> {
        lock(&self.provider).clone()
    }

    pub(crate) fn record_failure(&self, failure: ServiceFailure) {
        lock(&self.failures).push(failure);
    }

    pub(crate) fn take_failures(&self) -> Vec<ServiceFailure> {
        std::mem::take(&mut *lock(&self.failures))
    }

    /// Whether the host is stopping or was asked to: no restart begins then.
    pub(crate) fn winding_down(&self) -> bool {
        self.stop_began.is_cancelled() || self.lifetime.is_stop_requested()
    }
}

pub(crate) struct ServiceRecord {
    pub(crate) name: Arc<str>,
    pub(crate) service: Arc<dyn HostedService>,
    pub(crate) span: tracing::Span,
    /// Shared by every service registered without options.
    pub(crate) settings: Arc<ServiceSettings>,
    status: Mutex<Status>,
    changed: Arc<watch::Sender<u64>>,
    start_completed: AtomicBool,
    task: Mutex<Option<SupervisorTask>>,
    /// What the supervisor runs, kept for a restart through the control
    /// handle after it has ended.
    target: OnceLock<Arc<dyn BackgroundService>>,
    /// The supervisor's run of `execute`.
    pub(crate) run: Mutex<RunSlot>,
    /// Ends the current run of `execute` without waiting for it.
    pub(crate) interrupt: Interrupt,
    ready: AtomicBool,
    /// Whether something waits for it to report ready: its start lasts
    /// until it does.
    pub(crate) waits_ready: AtomicBool,
    /// While hung, whether a restart is coming to mend it.
    pub(crate) mending: AtomicBool,
    restarts: AtomicU32,
    /// Whether its `stop` call has returned (or was abandoned).
    stop_returned: AtomicBool,
    /// Whether its own stop timeout expired during the host's stop.
    stop_timed_out: AtomicBool,
    /// What only some services use, boxed together: most have none of it.
    rare: OnceLock<Box<Rare>>,
    /// A cluster singleton's election (boxed: most services are none).
    pub(crate) election: OnceLock<Box<Election>>,
    pub(crate) shared: Arc<HostShared>,
}

struct Status {
    state: ServiceState,
    last_failure: Option<ServiceFailure>,
    /// Boxed: only a cluster singleton has one.
    leadership: Option<Box<Leadership>>,
    /// When the `start` or `stop` call in progress began, for its
    /// duration: set and taken under the lock the transition takes anyway.
    call_began: Option<Instant>,
}

/// The current run of a background service's `execute`.
#[derive(Debug, Default)]
pub(crate) struct RunSlot {
    /// The run's stopping token: cancelled by the host's stop, a pause, a
    /// restart or a hang. `None` before the first run.
    pub(crate) token: Option<CancellationToken>,
    /// The host has asked the service to stop: no further run.
    pub(crate) stop_begun: bool,
    /// Why the run is being ended, when it is not the host's stop.
    pub(crate) command: Option<Command>,
    /// A pause in force: no run until resumed.
    pub(crate) paused: bool,
    /// Counts runs, so that a late abort never hits a later run.
    pub(crate) number: u64,
}

/// What only some services use.
#[derive(Default)]
struct Rare {
    links: OnceLock<Links>,
    schedule: OnceLock<ScheduleSlot>,
    /// Wakes a supervisor that waits (a backoff, a pause) for a resume or
    /// the stop; made by its first wait.
    wake: Notify,
    /// For a service with a heartbeat: the last heartbeat (or the start of
    /// the run), in nanoseconds since the host's epoch.
    heartbeat: AtomicU64,
}

/// A service's dependencies and dependents, and what waits on them.
#[derive(Debug, Default)]
pub(crate) struct Links {
    /// What it starts after.
    pub(crate) dependencies: Vec<Edge>,
    /// What starts after it; weak, as they hold it.
    pub(crate) dependents: Vec<Weak<ServiceRecord>>,
    /// Notified when its `start` or `stop` call settles, for the services
    /// whose concurrent start or stop waits on it.
    pub(crate) settled: Notify,
    /// Notified when it reports ready, or ends for good.
    pub(crate) ready_changed: Notify,
}

/// What [`ServiceRecord::begin_run`] found.
#[derive(Debug)]
pub(crate) enum NextRun {
    /// A run begins, with this token.
    Run(CancellationToken),
    /// Paused: no run until resumed.
    Paused,
    /// The host is stopping the service: no further run.
    Stopped,
}

/// Why the supervisor ends a run that is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// The control handle paused the service.
    Pause,
    /// The control handle asked for a restart.
    Restart,
    /// It missed its heartbeat deadline and its policy restarts it.
    Hung,
    /// A cluster singleton lost its lease: it campaigns again once its run
    /// has returned.
    Revoked,
    /// A cluster singleton steps down (from its `execute` or the control
    /// handle): it releases its lease once its run has returned.
    StepDown,
}

/// The supervisor's task.
struct SupervisorTask {
    /// Taken by `stop`, which awaits it.
    handle: Option<JoinHandle<()>>,
    /// Also tells whether the task has ended: returned, panicked or aborted.
    abort: AbortHandle,
}

/// How often the host looks whether an aborted task has ended.
const FINISHED_POLL: Duration = Duration::from_millis(5);

impl ServiceRecord {
    pub(crate) fn new(
        name: Arc<str>,
        service: Arc<dyn HostedService>,
        settings: Arc<ServiceSettings>,
        changed: Arc<watch::Sender<u64>>,
        shared: Arc<HostShared>,
    ) -> Self {
        let span = tracing::info_span!("service", name = %name);
        Self {
            name,
            service,
            span,
            settings,
            status: Mutex::new(Status {
                state: ServiceState::NotStarted,
                last_failure: None,
                leadership: None,
                call_began: None,
            }),
            changed,
            start_completed: AtomicBool::new(false),
            task: Mutex::new(None),
            target: OnceLock::new(),
            run: Mutex::new(RunSlot::default()),
            interrupt: Interrupt::default(),
            ready: AtomicBool::new(false),
            waits_ready: AtomicBool::new(false),
            mending: AtomicBool::new(false),
            restarts: AtomicU32::new(0),
            stop_returned: AtomicBool::new(false),
            stop_timed_out: AtomicBool::new(false),
            rare: OnceLock::new(),
            election: OnceLock::new(),
            shared,
        }
    }

    pub(crate) fn state(&self) -> ServiceState {
        lock(&self.status).state.clone()
    }

    pub(crate) fn status(&self) -> ServiceStatus {
        let status = lock(&self.status);
        ServiceStatus {
            name: self.name.clone(),
            state: status.state.clone(),
            last_failure: status.last_failure.clone(),
            restarts: self.restarts(),
            next_run: self.schedule().and_then(|slot| *lock(&slot.next_run)),
            required_for_readiness: self.settings.required_for_readiness.unwrap_or(true),
            hung_beyond_policy: matches!(status.state, ServiceState::Hung)
                && !self.mending.load(Ordering::Acquire),
            leadership: status.leadership.as_deref().cloned(),
        }
    }

    /// A cluster singleton's leadership as this instance now sees it.
    pub(crate) fn set_leadership(&self, leadership: Option<Leadership>) {
        {
            let mut status = lock(&self.status);
            if status.leadership.as_deref() == leadership.as_ref() {
                return;
            }
            status.leadership = leadership.map(Box::new);
        }
        self.notify();
    }

    /// Ends the run of a singleton that leads, to release its lease.
    /// Returns whether it led.
    pub(crate) fn step_down(self: &Arc<Self>) -> bool {
        self.fencing_token().is_some() && self.end_run(Command::StepDown, self.stop_timeout())
    }

    /// The fencing token of the term this instance leads, if it leads.
    pub(crate) fn fencing_token(&self) -> Option<u64> {
        lock(&self.status)
            .leadership
            .as_ref()
            .filter(|leadership| leadership.leading)
            .and_then(|leadership| leadership.token)
    }

    pub(crate) fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    pub(crate) fn count_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_state(&self, state: ServiceState) {
        self.transition(|_| true, state, None);
    }

    /// Moves to `state` if the current state passes `from`: a background
    /// service's `execute` may fail, or restart, before its `start` has
    /// returned.
    pub(crate) fn advance(&self, from: fn(&ServiceState) -> bool, state: ServiceState) {
        self.transition(from, state, None);
    }

    pub(crate) fn fail(&self, failure: ServiceFailure) {
        self.transition(
            |_| true,
            ServiceState::Failed(failure.clone()),
            Some(failure),
        );
    }

    /// Notes that a failure happened without changing the state (a run
    /// that fails and is restarted: the state says restarting).
    pub(crate) fn note_failure(&self, failure: ServiceFailure) {
        lock(&self.status).last_failure = Some(failure);
    }

    /// Notes that the `start` or `stop` call begins, for its duration.
    pub(crate) fn call_begins(&self) {
        let now = Instant::now();
        lock(&self.status).call_began = Some(now);
    }

    /// Sets when a periodic service runs next.
    pub(crate) fn set_next_run(&self, next: Option<SystemTime>) {
        if let Some(slot) = self.schedule() {
            *lock(&slot.next_run) = next;
        }
        self.notify();
    }

    fn transition(
        &self,
        from: impl FnOnce(&ServiceState) -> bool,
        state: ServiceState,
        failure: Option<ServiceFailure>,
    ) {
        let (previous, duration, leadership) = {
            let mut status = lock(&self.status);
            if !from(&status.state) {
                return;
            }
            if let Some(failure) = failure {
                status.last_failure = Some(failure);
            }
            // A call's duration ends with the state it leads to.
            let duration = match state {
                ServiceState::Running
                | ServiceState::Ready
                | ServiceState::Failed(_)
                | ServiceState::Stopped => status
                    .call_began
                    .take()
                    .map(|began| Instant::now().saturating_duration_since(began)),
                _ => None,
            };
            // Only an event sent to a subscriber carries the leadership.
            let leadership = self
                .shared
                .events
                .has_subscribers()
                .then(|| status.leadership.as_deref().cloned())
                .flatten();
            (
                std::mem::replace(&mut status.state, state.clone()),
                duration,
                leadership,
            )
        };
        self.shared.events.publish(
            &self.name,
            &previous,
            &state,
            duration,
            self.restarts(),
            leadership,
        );
        self.notify();
    }

    fn notify(&self) {
        // Notifying takes tokio's locks even when nobody listens; a
        // subscriber reads the states themselves, so it misses nothing.
        if self.changed.receiver_count() > 0 {
            self.changed
                .send_modify(|version| *version = version.wrapping_add(1));
        }
    }

    pub(crate) fn mark_start_completed(&self) {
        self.start_completed.store(true, Ordering::Release);
        self.notify_settled();
    }

    /// Notes that its `stop` call has returned, or will never be waited for.
    pub(crate) fn mark_stop_returned(&self) {
        self.stop_returned.store(true, Ordering::Release);
        self.notify_settled();
    }

    /// Wakes what waits for its start or stop to settle: only a service
    /// linked by a dependency has anything waiting.
    pub(crate) fn notify_settled(&self) {
        if let Some(links) = self.links() {
            links.settled.notify_waiters();
        }
    }

    /// Wakes what waits for it to be ready (or to have ended for good):
    /// only a service something depends on has anything waiting.
    pub(crate) fn notify_ready_changed(&self) {
        if let Some(links) = self.links() {
            links.ready_changed.notify_waiters();
        }
    }

    /// Notes that its own stop timeout expired.
    pub(crate) fn mark_stop_timed_out(&self) {
        self.stop_timed_out.store(true, Ordering::Release);
    }

    /// Its own stop timeout, if it expired during the host's stop.
    pub(crate) fn own_stop_timeout_expired(&self) -> Option<Duration> {
        self.stop_timed_out
            .load(Ordering::Acquire)
            .then_some(self.settings.stop_timeout)
            .flatten()
    }

    pub(crate) fn stop_returned(&self) -> bool {
        self.stop_returned.load(Ordering::Acquire)
    }

    fn rare(&self) -> &Rare {
        self.rare.get_or_init(Box::default)
    }

    /// What a waiting supervisor waits on: called before it looks at the
    /// run slot, so that whatever changes the slot from then on wakes it.
    pub(crate) fn wake(&self) -> &Notify {
        &self.rare().wake
    }

    /// Wakes the supervisor if it waits (a backoff, a pause). One that
    /// never waited has made nothing to wake it through; the change it is
    /// told about is in the run slot, which it reads under the slot's lock
    /// after making it, so a wake-up is never lost.
    pub(crate) fn wake_supervisor(&self) {
        if let Some(rare) = self.rare.get() {
            rare.wake.notify_one();
        }
    }

    pub(crate) fn set_schedule(&self, slot: ScheduleSlot) {
        let _ = self.rare().schedule.set(slot);
    }

    /// A periodic service's schedule.
    pub(crate) fn schedule(&self) -> Option<&ScheduleSlot> {
        self.rare.get()?.schedule.get()
    }

    pub(crate) fn set_links(&self, links: Links) {
        let _ = self.rare().links.set(links);
    }

    /// Its dependencies and dependents, if it has any.
    pub(crate) fn links(&self) -> Option<&Links> {
        self.rare.get()?.links.get()
    }

    /// What it starts after.
    pub(crate) fn dependencies(&self) -> &[Edge] {
        self.links()
            .map(|links| links.dependencies.as_slice())
            .unwrap_or(&[])
    }

    /// What starts after it, while the host holds them.
    pub(crate) fn dependents(&self) -> Vec<Arc<ServiceRecord>> {
        self.links()
            .map(|links| dependencies::alive(&links.dependents))
            .unwrap_or_default()
    }

    pub(crate) fn start_completed(&self) -> bool {
        self.start_completed.load(Ordering::Acquire)
    }

    /// The registered instance as its concrete type, for the background
    /// service adapter, which needs an owned handle to spawn `execute`.
    pub(crate) fn instance<T: HostedService>(&self) -> Result<Arc<T>, ServiceError> {
        let any: Arc<dyn Any + Send + Sync> = self.service.clone();
        any.downcast::<T>().map_err(|_| {
            anyhow::anyhow!(
                "the background service `{}` was started on behalf of `{}`; register it with the \
                 host itself (`add_hosted_service`) instead of starting it from another service",
                type_name::<T>(),
                self.name
            )
        })
    }

    /// Spawns the supervisor of a background service's `execute` on its
    /// own task. Never polls it.
    pub(crate) fn spawn_execute(
        self: &Arc<Self>,
        service: Arc<dyn BackgroundService>,
    ) -> Result<(), ServiceError> {
        if self.target.set(service).is_err() {
            anyhow::bail!("`{}` was started twice", self.name);
        }
        self.spawn_supervisor();
        Ok(())
    }

    fn spawn_supervisor(self: &Arc<Self>) {
        if self.target.get().is_none() {
            return;
        }
        let spawn = |future| match self.shared.runtime.get() {
            Some(runtime) => runtime.spawn(future),
            None => tokio::spawn(future),
        };
        let handle = spawn(InSpan {
            record: self.clone(),
            future: Some(supervisor::supervise(self.clone())),
        });
        *lock(&self.task) = Some(SupervisorTask {
            abort: handle.abort_handle(),
            handle: Some(handle),
        });
    }

    /// What the supervisor runs, once started: the registered instance (its
    /// runs get the host's lifetime, `shared.lifetime`).
    pub(crate) fn target(&self) -> Option<&Arc<dyn BackgroundService>> {
        self.target.get()
    }

    /// Runs `execute` again under a new supervisor, after the last one
    /// ended (the service completed, or failed and the host kept running).
    pub(crate) fn respawn(self: &Arc<Self>) -> Result<(), String> {
        if self.target.get().is_none() {
            return Err("it has not started".to_owned());
        }
        if self.execute_running() {
            return Err("its supervisor is still running".to_owned());
        }
        {
            let mut run = lock(&self.run);
            if run.stop_begun || self.shared.winding_down() {
                return Err("the host is stopping".to_owned());
            }
            run.paused = false;
        }
        self.count_restart();
        self.set_state(ServiceState::Running);
        self.spawn_supervisor();
        Ok(())
    }

    /// Begins the next run: its token, unless the host has asked the
    /// service to stop or it is paused (a pause asked before its first run
    /// included). Resets what a run reports. A restart asked before this
    /// run began is what this run is.
    pub(crate) fn begin_run(&self) -> NextRun {
        let mut run = lock(&self.run);
        if run.stop_begun {
            return NextRun::Stopped;
        }
        if run.paused {
            return NextRun::Paused;
        }
        run.number += 1;
        run.command = None;
        let token = CancellationToken::new();
        run.token = Some(token.clone());
        self.interrupt.reset();
        self.ready.store(false, Ordering::Release);
        if self.settings.heartbeat.is_some() {
            self.beat();
        }
        NextRun::Run(token)
    }

    /// Ends the current run for `command` (cancels its token); past the
    /// service's stop timeout, interrupts it. Returns `false` if the host
    /// is stopping the service already.
    pub(crate) fn end_run(self: &Arc<Self>, command: Command, stop_timeout: Duration) -> bool {
        let number = {
            let mut run = lock(&self.run);
            if run.stop_begun {
                return false;
            }
            if command == Command::Pause {
                run.paused = true;
            }
            run.command = Some(command);
            if let Some(token) = &run.token {
                token.cancel();
            }
            run.number
        };
        self.wake_supervisor();
        let Some(runtime) = self
            .shared
            .runtime
            .get()
            .cloned()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
            return true;
        };
        let record = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep(stop_timeout).await;
            let still = {
                let run = lock(&record.run);
                run.number == number && !run.stop_begun && record.execute_running()
            };
            if still && record.interrupt.fire() {
                tracing::error!(target: crate::LIFETIME_TARGET, service = %record.name,
                    "`{}` did not return within its stop timeout ({stop_timeout:?}) after \
                     being asked to ({}); its run was aborted", record.name,
                    command.describe());
            }
        });
        true
    }

    /// At the end of a run, in one look: the command that ended it, if
    /// any, and whether the host has asked this service to stop.
    pub(crate) fn end_of_run(&self) -> (Option<Command>, bool) {
        let mut run = lock(&self.run);
        (run.command.take(), run.stop_begun)
    }

    /// How long a restart or pause waits for its run to return.
    pub(crate) fn stop_timeout(&self) -> Duration {
        self.settings
            .stop_timeout
            .unwrap_or(self.shared.shutdown_timeout)
    }

    /// Records a heartbeat.
    pub(crate) fn beat(&self) {
        let nanos = u64::try_from(self.shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.rare().heartbeat.store(nanos, Ordering::Release);
    }

    /// When the last heartbeat (or the run's start) was.
    pub(crate) fn last_beat(&self) -> Instant {
        let nanos = self
            .rare
            .get()
            .map_or(0, |rare| rare.heartbeat.load(Ordering::Acquire));
        self.shared.epoch + Duration::from_nanos(nanos)
    }

    /// `execute` reported ready.
    pub(crate) fn report_ready(&self) {
        if self.ready.swap(true, Ordering::AcqRel) {
            return;
        }
        self.notify_ready_changed();
        self.advance(
            |state| matches!(state, ServiceState::Running | ServiceState::Starting),
            ServiceState::Ready,
        );
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Waits until `execute` reports ready; `Err` with the state as soon
    /// as the state is one `waiting` gives up on. A service with no links
    /// has nothing waiting for its readiness: at once.
    pub(crate) async fn until_ready(
        &self,
        waiting: impl Fn(&ServiceState) -> bool,
    ) -> Result<(), ServiceState> {
        let Some(links) = self.links() else {
            return Ok(());
        };
        loop {
            let mut changed = std::pin::pin!(links.ready_changed.notified());
            changed.as_mut().enable();
            if self.is_ready() {
                return Ok(());
            }
            let state = self.state();
            if !waiting(&state) {
                return Err(state);
            }
            changed.await;
        }
    }

    /// Asks `execute` to return and waits until the supervisor has ended.
    pub(crate) async fn stop_execute(&self) {
        {
            let mut run = lock(&self.run);
            run.stop_begun = true;
            if let Some(token) = &run.token {
                token.cancel();
            }
        }
        self.wake_supervisor();
        let (handle, abort) = {
            let mut task = lock(&self.task);
            let Some(task) = task.as_mut() else {
                return;
            };
            (task.handle.take(), task.abort.clone())
        };
        match handle {
            // Panics are caught inside the task; an abort is the host's own.
            Some(handle) => drop(handle.await),
            None => ended(abort).await,
        }
    }

    /// Whether this service's supervisor task is still running.
    pub(crate) fn execute_running(&self) -> bool {
        lock(&self.task)
            .as_ref()
            .is_some_and(|task| !task.abort.is_finished())
    }

    /// Aborts the supervisor's task; returns a future that completes when
    /// the task has really ended (never, while it blocks its thread).
    pub(crate) fn abort_execute(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let abort = lock(&self.task).as_ref()?.abort.clone();
        {
            let mut run = lock(&self.run);
            run.stop_begun = true;
            if let Some(token) = &run.token {
                token.cancel();
            }
        }
        abort.abort();
        Some(ended(abort))
    }
}

impl Command {
    fn describe(self) -> &'static str {
        match self {
            Command::Pause => "paused",
            Command::Restart => "restarted",
            Command::Hung => "restarted after missing its heartbeat",
            Command::Revoked => "stopped as it lost its cluster lease",
            Command::StepDown => "stepped down from leading its cluster singleton",
        }
    }
}

/// Ends the current run of `execute` from outside: the supervisor polls
/// the run through [`Interrupt::guard`], which completes at once when fired.
#[derive(Debug, Default)]
pub(crate) struct Interrupt {
    fired: AtomicBool,
    waker: AtomicWaker,
}

impl Interrupt {
    /// Fires; `false` if it had fired already.
    pub(crate) fn fire(&self) -> bool {
        let first = !self.fired.swap(true, Ordering::AcqRel);
        self.waker.wake();
        first
    }

    fn reset(&self) {
        self.fired.store(false, Ordering::Release);
    }

    /// Runs `future` until it completes (`Some`) or the interrupt fires
    /// (`None`: the future is dropped, as an abort would).
    pub(crate) fn guard<F: Future>(&self, future: F) -> Interruptible<'_, F> {
        Interruptible {
            interrupt: self,
            future,
        }
    }
}

pin_project_lite::pin_project! {
    /// A run that an [`Interrupt`] can end.
    pub(crate) struct Interruptible<'a, F> {
        interrupt: &'a Interrupt,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Interruptible<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Some(output));
        }
        this.interrupt.waker.register(cx.waker());
        if this.interrupt.fired.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

pin_project_lite::pin_project! {
    /// A background service's supervisor task: each poll, and the drop of
    /// an unfinished one (an abort), run inside the service's span, as
    /// `Instrumented` would, but through the record the task holds anyway:
    /// no second handle on the span per task (a subscriber call to clone it
    /// and one to close it, and the span's size in every task).
    struct InSpan<F> {
        record: Arc<ServiceRecord>,
        // `None` once it has returned.
        #[pin]
        future: Option<F>,
    }

    impl<F> PinnedDrop for InSpan<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.future.is_some() {
                let _entered = this.record.span.enter();
                this.future.set(None);
            }
        }
    }
}

impl<F: Future<Output = ()>> Future for InSpan<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let _entered = this.record.span.enter();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(());
        };
        std::task::ready!(future.poll(cx));
        this.future.set(None);
        Poll::Ready(())
    }
}

impl std::fmt::Debug for ServiceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRecord")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish()
    }
}

/// Completes when the task has ended. Only for the rare paths where its
/// `JoinHandle` is gone (a `stop` abandoned at the deadline).
async fn ended(task: AbortHandle) {
    while !task.is_finished() {
        tokio::time::sleep(FINISHED_POLL).await;
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked: every
/// critical section here is a plain assignment.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
