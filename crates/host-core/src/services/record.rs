//! The host's bookkeeping for one hosted service: its state, and the task of
//! a background service's `execute`.

use std::any::{Any, type_name};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::logging::LIFETIME_TARGET;
use crate::services::failure::ServiceFailure;
use crate::services::state::{ServiceState, ServiceStatus};
use crate::{
    ApplicationLifetime, BackgroundService, BackgroundServiceFailure, HostedService, Phase,
    ServiceContext, ServiceError,
};

/// What the host's services share: where failures are reported.
#[derive(Debug)]
pub(crate) struct HostShared {
    pub(crate) lifetime: ApplicationLifetime,
    pub(crate) on_failure: BackgroundServiceFailure,
    failures: Mutex<Vec<ServiceFailure>>,
}

impl HostShared {
    pub(crate) fn new(lifetime: ApplicationLifetime, on_failure: BackgroundServiceFailure) -> Self {
        Self {
            lifetime,
            on_failure,
            failures: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn record_failure(&self, failure: ServiceFailure) {
        lock(&self.failures).push(failure);
    }

    pub(crate) fn take_failures(&self) -> Vec<ServiceFailure> {
        std::mem::take(&mut *lock(&self.failures))
    }
}

pub(crate) struct ServiceRecord {
    pub(crate) name: Arc<str>,
    pub(crate) service: Arc<dyn HostedService>,
    pub(crate) span: tracing::Span,
    status: Mutex<Status>,
    changed: Arc<watch::Sender<u64>>,
    start_completed: AtomicBool,
    task: OnceLock<ExecuteTask>,
    shared: Arc<HostShared>,
}

struct Status {
    state: ServiceState,
    last_failure: Option<ServiceFailure>,
}

/// A background service's running `execute`.
struct ExecuteTask {
    stopping: CancellationToken,
    /// Taken by `stop`, which awaits it.
    handle: Mutex<Option<JoinHandle<()>>>,
    /// Also tells whether the task has ended: returned, panicked or aborted.
    abort: AbortHandle,
}

/// How often the host looks whether an aborted task has ended.
const FINISHED_POLL: Duration = Duration::from_millis(5);

impl ServiceRecord {
    pub(crate) fn new(
        name: Arc<str>,
        service: Arc<dyn HostedService>,
        changed: Arc<watch::Sender<u64>>,
        shared: Arc<HostShared>,
    ) -> Self {
        let span = tracing::info_span!("service", name = %name);
        Self {
            name,
            service,
            span,
            status: Mutex::new(Status {
                state: ServiceState::NotStarted,
                last_failure: None,
            }),
            changed,
            start_completed: AtomicBool::new(false),
            task: OnceLock::new(),
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
        }
    }

    pub(crate) fn set_state(&self, state: ServiceState) {
        lock(&self.status).state = state;
        self.notify();
    }

    /// Moves to `state` unless the service has failed meanwhile (a background
    /// service's `execute` may fail before its `start` has returned).
    pub(crate) fn advance(&self, from: fn(&ServiceState) -> bool, state: ServiceState) {
        {
            let mut status = lock(&self.status);
            if !from(&status.state) {
                return;
            }
            status.state = state;
        }
        self.notify();
    }

    pub(crate) fn fail(&self, failure: ServiceFailure) {
        {
            let mut status = lock(&self.status);
            status.last_failure = Some(failure.clone());
            status.state = ServiceState::Failed(failure);
        }
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

    /// Spawns a background service's `execute` on its own task. Never polls it.
    pub(crate) fn spawn_execute(
        self: &Arc<Self>,
        service: Arc<dyn BackgroundService>,
        lifetime: ApplicationLifetime,
    ) -> Result<(), ServiceError> {
        if self.task.get().is_some() {
            anyhow::bail!("`{}` was started twice", self.name);
        }
        let stopping = CancellationToken::new();
        let context = ServiceContext::new(self.name.clone(), stopping.clone(), lifetime);
        let execute = async move {
            AssertUnwindSafe(service.execute(context))
                .catch_unwind()
                .await
        };
        let handle = tokio::spawn(ExecuteInSpan {
            record: self.clone(),
            execute: Some(execute),
        });
        let task = ExecuteTask {
            stopping,
            abort: handle.abort_handle(),
            handle: Mutex::new(Some(handle)),
        };
        // Checked above; the host starts each service from one place only.
        let _ = self.task.set(task);
        Ok(())
    }

    fn execute_ended(&self, outcome: ExecuteOutcome) {
        let Err(failure) =
            ServiceFailure::from_outcome(|| self.name.clone(), Phase::Execute, outcome)
        else {
            let stopping = self
                .task
                .get()
                .is_some_and(|task| task.stopping.is_cancelled());
            if !stopping {
                tracing::debug!(target: LIFETIME_TARGET, service = %self.name,
                    "background service completed");
                self.advance(
                    |state| matches!(state, ServiceState::Starting | ServiceState::Running),
                    ServiceState::Completed,
                );
            }
            return;
        };
        // Act before logging: a subscriber that panics must not lose the stop.
        self.fail(failure.clone());
        match self.shared.on_failure {
            BackgroundServiceFailure::StopHost => {
                self.shared.record_failure(failure.clone());
                self.shared.lifetime.stop_application();
                tracing::error!(target: LIFETIME_TARGET, service = %self.name,
                    "{failure}; stopping the host");
            }
            BackgroundServiceFailure::Ignore => {
                tracing::error!(target: LIFETIME_TARGET, service = %self.name,
                    "{failure}; the host keeps running (BackgroundServiceFailure::Ignore)");
            }
        }
    }

    /// Asks `execute` to return and waits until it has.
    pub(crate) async fn stop_execute(&self) {
        let Some(task) = self.task.get() else {
            return;
        };
        task.stopping.cancel();
        let handle = lock(&task.handle).take();
        match handle {
            // Panics are caught inside the task; an abort is the host's own.
            Some(handle) => drop(handle.await),
            None => ended(task.abort.clone()).await,
        }
    }

    /// Whether this service's `execute` task is still running.
    pub(crate) fn execute_running(&self) -> bool {
        self.task
            .get()
            .is_some_and(|task| !task.abort.is_finished())
    }

    /// Aborts the `execute` task; returns a future that completes when the
    /// task has really ended (never, while it blocks its thread).
    pub(crate) fn abort_execute(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let task = self.task.get()?;
        task.stopping.cancel();
        task.abort.abort();
        Some(ended(task.abort.clone()))
    }
}

/// The outcome of `execute`: its result, or the payload of its panic.
type ExecuteOutcome = Result<Result<(), ServiceError>, Box<dyn Any + Send>>;

pin_project_lite::pin_project! {
    /// A background service's `execute` task: each poll, the end
    /// ([`ServiceRecord::execute_ended`]) and the drop of an unfinished
    /// `execute` (an abort) run inside the service's span, as `Instrumented`
    /// would, but through the record the task holds anyway: no second handle
    /// on the span per task (a subscriber call to clone it and one to close
    /// it, and the span's size in every task).
    struct ExecuteInSpan<F> {
        record: Arc<ServiceRecord>,
        // `None` once `execute` has returned.
        #[pin]
        execute: Option<F>,
    }

    impl<F> PinnedDrop for ExecuteInSpan<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.execute.is_some() {
                let _entered = this.record.span.enter();
                this.execute.set(None);
            }
        }
    }
}

impl<F: Future<Output = ExecuteOutcome>> Future for ExecuteInSpan<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let _entered = this.record.span.enter();
        let Some(execute) = this.execute.as_mut().as_pin_mut() else {
            return Poll::Ready(());
        };
        let outcome = std::task::ready!(execute.poll(cx));
        this.execute.set(None);
        this.record.execute_ended(outcome);
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
