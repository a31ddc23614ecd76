//! Running one lifecycle phase over the hosted services, in order or all at
//! once, within a bound.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::lifecycle::bound::{Bound, poll_once};
use crate::lifecycle::lifetime::Callback;
use crate::logging::LIFETIME_TARGET;
use crate::services::failure::ServiceFailure;
use crate::services::hosted::{PhaseContext, is_no_op};
use crate::services::record::ServiceRecord;
use crate::services::state::ServiceState;
use crate::{ApplicationLifetime, LifecycleContext, LifecycleFuture, Phase};

/// How a phase treats failures and its deadline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Start phases: the first failure, the deadline or a stop request ends
    /// the phase; no further service is called.
    Start,
    /// Stop phases: every service is called whatever the others did; past
    /// the deadline, the remaining calls run at once in the bound's overtime.
    Stop,
}

/// What happened to each service in one phase.
#[derive(Default)]
pub(crate) struct PhaseOutcome {
    /// The calls that returned `Ok`, in the order they returned.
    pub(crate) succeeded: Vec<Arc<ServiceRecord>>,
    pub(crate) failures: Vec<ServiceFailure>,
    /// The calls that were still running when the bound ended.
    pub(crate) unfinished: Vec<Arc<ServiceRecord>>,
}

type CallResult = Result<(), ServiceFailure>;

pub(crate) struct PhaseRunner {
    pub(crate) lifetime: ApplicationLifetime,
    pub(crate) concurrent: bool,
    pub(crate) mode: Mode,
}

impl PhaseRunner {
    /// Calls `phase` on each of `records`, in the order given (or all at
    /// once), within `bound`.
    pub(crate) async fn run(
        &self,
        records: &[Arc<ServiceRecord>],
        phase: Phase,
        bound: &mut Bound,
    ) -> PhaseOutcome {
        let shared = Arc::new(PhaseContext::new(
            phase,
            bound.token().clone(),
            self.lifetime.clone(),
        ));
        // The calls borrow their contexts, which live as long as the phase:
        // a call is then the service's own future, which can be polled in
        // place or moved into the set of running calls without a box of ours.
        let contexts: Vec<LifecycleContext> = records
            .iter()
            .map(|record| LifecycleContext::new(record.clone(), shared.clone()))
            .collect();
        let mut phase_run = PhaseRun {
            runner: self,
            phase,
            contexts: &contexts,
            calls: vec![CallState::NotMade; records.len()],
            outcome: PhaseOutcome::default(),
        };
        if self.concurrent || (self.mode == Mode::Stop && bound.past_deadline()) {
            phase_run.all_at_once(0, bound).await;
        } else {
            phase_run.in_order(bound).await;
        }
        let PhaseRun {
            calls, mut outcome, ..
        } = phase_run;
        outcome.unfinished.extend(
            records
                .iter()
                .zip(calls)
                .filter(|(_, call)| *call == CallState::Made)
                .map(|(record, _)| record.clone()),
        );
        outcome
    }
}

/// One phase in progress.
struct PhaseRun<'a> {
    runner: &'a PhaseRunner,
    phase: Phase,
    contexts: &'a [LifecycleContext],
    calls: Vec<CallState>,
    outcome: PhaseOutcome,
}

/// Where one service's call of the phase is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallState {
    NotMade,
    /// Made and not returned (yet, or ever: unfinished).
    Made,
    Returned,
}

impl<'a> PhaseRun<'a> {
    /// One call after the other. A start phase ends at the first failure, at
    /// its deadline or on a stop request; a stop phase, past its deadline,
    /// runs the call in progress and every later one at once.
    async fn in_order(&mut self, bound: &mut Bound) {
        let mode = self.runner.mode;
        let mut spawned_since_yield = false;
        for index in 0..self.contexts.len() {
            if mode == Mode::Start && bound.has_ended() {
                return;
            }
            if mode == Mode::Start && self.phase == Phase::Start {
                let background = self.contexts[index].record.service.is_background();
                if spawned_since_yield && !background {
                    // One turn of the runtime gives the `execute`s spawned
                    // since the last one their first poll: one that fails at
                    // once has then asked the host to stop, and this service
                    // (the web server, registered last) never starts. Only
                    // before a service of another kind, so that a run of
                    // background services starts without a wait.
                    tokio::task::yield_now().await;
                    spawned_since_yield = false;
                    if bound.has_ended() {
                        return;
                    }
                }
                spawned_since_yield |= background;
            }
            let result = match self.call(index) {
                Err(settled) => Some(settled),
                Ok(mut current) => match bound.run(Pin::new(&mut current)).await {
                    Some(result) => Some(result),
                    None if mode == Mode::Start => poll_once(Pin::new(&mut current)).await,
                    None => {
                        let running = FuturesUnordered::new();
                        running.push(current);
                        return self.run_together(running, index + 1, bound).await;
                    }
                },
            };
            match result {
                Some((_, result)) => {
                    if self.settle(index, result) && mode == Mode::Start {
                        return;
                    }
                }
                None => return,
            }
        }
    }

    /// Every call from `first` on, at once: each is polled once as it is
    /// made (most hooks finish there), and the ones still running are then
    /// polled together. In a start phase, a failure ends the phase.
    async fn all_at_once(&mut self, first: usize, bound: &mut Bound) {
        self.run_together(FuturesUnordered::new(), first, bound)
            .await;
    }

    async fn run_together(
        &mut self,
        mut running: FuturesUnordered<Guarded<'a>>,
        first: usize,
        bound: &mut Bound,
    ) {
        for index in first..self.contexts.len() {
            // As in order: a stop requested before (or while making) the
            // calls means no further service starts.
            if self.runner.mode == Mode::Start && bound.has_ended() {
                break;
            }
            let (_, result) = match self.call(index) {
                Err(settled) => settled,
                Ok(mut current) => match poll_once(Pin::new(&mut current)).await {
                    Some(settled) => settled,
                    None => {
                        running.push(current);
                        continue;
                    }
                },
            };
            if self.settle(index, result) && self.runner.mode == Mode::Start {
                // Tell the others their start is abandoned; start no more.
                bound.cancel();
                break;
            }
        }
        loop {
            match bound.run(Pin::new(&mut running.next())).await {
                Some(Some((index, result))) => {
                    let failed = self.settle(index, result);
                    if failed && self.runner.mode == Mode::Start {
                        bound.cancel();
                    }
                }
                Some(None) => break,
                None if bound.has_ended() => {
                    // One more poll each, with the token fired.
                    while let Some(Some((index, result))) =
                        poll_once(Pin::new(&mut running.next())).await
                    {
                        self.settle(index, result);
                    }
                    break;
                }
                None => {} // into overtime: keep polling
            }
        }
    }

    /// Makes the call of this phase on service `index` (in a concurrent
    /// start or stop, once what it must follow has settled). `Err` when it
    /// settled as it was made: a hook left at its default returns `Ok` at
    /// once, with nothing of the service's to run, and needs no poll.
    fn call(&mut self, index: usize) -> Result<Guarded<'a>, (usize, Settled)> {
        self.calls[index] = CallState::Made;
        let context = &self.contexts[index];
        let record = &*context.record;
        match self.phase {
            Phase::Starting => record.set_state(ServiceState::Starting),
            Phase::Stopping => record.set_state(ServiceState::Stopping),
            _ => {}
        }
        let settings = &record.settings;
        let timeout = match self.phase {
            Phase::Start => settings.start_timeout,
            Phase::Stop => settings.stop_timeout,
            _ => None,
        };
        let waiting = if self.runner.concurrent {
            follow(&context.record, self.phase, context)
        } else {
            None
        };
        let made = match waiting {
            Some(_) => None,
            None => {
                let made = make(context, self.phase);
                if made.as_ref().is_ok_and(is_no_op) {
                    return Err((index, Settled::Returned(Ok(()))));
                }
                Some(made)
            }
        };
        let mut guarded = Guarded {
            index,
            context,
            phase: self.phase,
            in_span: true,
            waiting,
            call: None,
            timeout,
            deadline: None,
        };
        if let Some(made) = made {
            guarded.made(made);
        }
        Ok(guarded)
    }

    /// Records how call `index` ended; returns whether it failed.
    fn settle(&mut self, index: usize, settled: Settled) -> bool {
        let record = &self.contexts[index].record;
        let result = match settled {
            Settled::Returned(result) => result,
            Settled::TimedOut(timeout) if self.phase == Phase::Stop => {
                // Left `Made`: the host aborts and names it with the others
                // still running when the stop ends.
                tracing::error!(target: LIFETIME_TARGET, service = %record.name,
                    "`{}` did not stop within its stop timeout ({timeout:?}); abandoning its \
                     stop", record.name);
                record.mark_stop_timed_out();
                record.mark_stop_returned();
                return false;
            }
            Settled::TimedOut(timeout) => Err(ServiceFailure::error(
                record.name.clone(),
                self.phase,
                anyhow::anyhow!(
                    "it did not {} within its {} timeout ({timeout:?})",
                    self.phase,
                    self.phase
                ),
            )),
        };
        self.calls[index] = CallState::Returned;
        match result {
            Ok(()) => {
                match self.phase {
                    Phase::Start => {
                        record.mark_start_completed();
                        record.advance(
                            |state| matches!(state, ServiceState::Starting),
                            ServiceState::Running,
                        );
                    }
                    Phase::Stop => {
                        record.advance(
                            |state| !matches!(state, ServiceState::Failed(_)),
                            ServiceState::Stopped,
                        );
                        record.mark_stop_returned();
                    }
                    _ => {}
                }
                self.outcome.succeeded.push(record.clone());
                false
            }
            Err(failure) => {
                record.fail(failure.clone());
                if self.phase == Phase::Start {
                    // A background service whose start failed after its
                    // `execute` was spawned (waiting to be ready, say): no
                    // stop will come for it, so it ends here.
                    drop(record.abort_execute());
                    record.notify_settled();
                }
                if self.phase == Phase::Stop {
                    record.mark_stop_returned();
                }
                self.outcome.failures.push(failure.clone());
                tracing::error!(target: LIFETIME_TARGET, service = %record.name, "{failure}");
                true
            }
        }
    }
}

/// What a concurrent call waits for before it is made: a start, until
/// what the service depends on has started (or become ready); a stop,
/// until what depends on it has stopped. `None` when nothing.
fn follow(
    record: &Arc<ServiceRecord>,
    phase: Phase,
    context: &LifecycleContext,
) -> Option<Waiting<'static>> {
    let awaited: Vec<Arc<ServiceRecord>> = match phase {
        Phase::Start => record
            .dependencies()
            .iter()
            .map(|edge| edge.on.clone())
            .collect(),
        Phase::Stop => record
            .dependents()
            .into_iter()
            .filter(|dependent| dependent.start_completed())
            .collect(),
        _ => return None,
    };
    if awaited.is_empty() {
        return None;
    }
    // A stop waits for its dependents' only until the deadline: past it,
    // every stop still running gets the overtime, and this one is at least
    // told to stop.
    let deadline = (phase == Phase::Stop).then(|| context.token());
    let waited = async move {
        for other in awaited {
            // Linked to this one, so it has links.
            let Some(links) = other.links() else {
                continue;
            };
            loop {
                let mut settled = std::pin::pin!(links.settled.notified());
                settled.as_mut().enable();
                let done = match phase {
                    Phase::Start => other.start_completed(),
                    _ => other.stop_returned(),
                };
                if done {
                    break;
                }
                settled.await;
            }
        }
    };
    Some(Box::pin(async move {
        match deadline {
            Some(deadline) => {
                tokio::select! {
                    () = waited => {}
                    () = deadline.cancelled() => {}
                }
            }
            None => waited.await,
        }
    }))
}

/// A wait before a call is made.
type Waiting<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// How a call ended.
enum Settled {
    Returned(CallResult),
    /// The service's own start or stop timeout passed.
    TimedOut(Duration),
}

/// A call of one service: each poll runs inside the service's span, and a
/// panic becomes a failure that names the service and the phase.
struct Guarded<'a> {
    index: usize,
    context: &'a LifecycleContext,
    phase: Phase,
    /// Whether to poll in the service's span: not a hook left at its
    /// default, which runs no code of the service's.
    in_span: bool,
    /// What the call waits for before it is made.
    waiting: Option<Waiting<'static>>,
    /// The call's future, or the panic that kept it from being made; `None`
    /// until it is made.
    call: Option<Result<LifecycleFuture<'a>, Option<Box<dyn Any + Send>>>>,
    /// The service's own timeout for this call, and its deadline once made.
    timeout: Option<Duration>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// A call made: its future, or the panic that kept it from being made.
type Made<'a> = Result<LifecycleFuture<'a>, Box<dyn Any + Send>>;

/// Makes the call of `phase` on the service `context` is for.
fn make<'a>(context: &'a LifecycleContext, phase: Phase) -> Made<'a> {
    let record = &*context.record;
    let service = &record.service;
    if matches!(phase, Phase::Start | Phase::Stop) {
        record.call_begins();
    }
    // An `async fn` runs on its first poll; a hand-written one may panic
    // before it returns its future.
    std::panic::catch_unwind(AssertUnwindSafe(|| match phase {
        Phase::Starting => service.starting(context),
        Phase::Start => service.start(context),
        Phase::Started => service.started(context),
        Phase::Stopping => service.stopping(context),
        Phase::Stop => service.stop(context),
        Phase::Stopped | Phase::Execute | Phase::Dispose => service.stopped(context),
    }))
}

impl<'a> Guarded<'a> {
    /// Takes the call made, and starts its timeout.
    fn made(&mut self, call: Made<'a>) {
        self.in_span = !call.as_ref().is_ok_and(is_no_op);
        if let Some(timeout) = self.timeout {
            self.deadline = tokio::time::Instant::now()
                .checked_add(timeout)
                .map(|deadline| Box::pin(tokio::time::sleep_until(deadline)));
        }
        self.call = Some(call.map_err(Some));
    }
}

impl Future for Guarded<'_> {
    type Output = (usize, Settled);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(waiting) = &mut this.waiting {
            std::task::ready!(waiting.as_mut().poll(cx));
            this.waiting = None;
            let made = make(this.context, this.phase);
            this.made(made);
        }
        let record = &*this.context.record;
        let polled = {
            let _entered = this.in_span.then(|| record.span.enter());
            match this.call.as_mut() {
                Some(Ok(call)) => {
                    std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx)))
                }
                Some(Err(payload)) => {
                    Err(payload.take().unwrap_or_else(|| Box::new("polled again")))
                }
                None => Err(Box::new("polled before it was made") as Box<dyn Any + Send>),
            }
        };
        let outcome = match polled {
            Ok(Poll::Pending) => {
                if let (Some(deadline), Some(timeout)) = (&mut this.deadline, this.timeout)
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready((this.index, Settled::TimedOut(timeout)));
                }
                return Poll::Pending;
            }
            Ok(Poll::Ready(result)) => Ok(result),
            Err(payload) => Err(payload),
        };
        let name = || record.name.clone();
        Poll::Ready((
            this.index,
            Settled::Returned(ServiceFailure::from_outcome(name, this.phase, outcome)),
        ))
    }
}

/// What running one event's callbacks did.
#[derive(Default)]
pub(crate) struct CallbackOutcome {
    /// The callbacks that panicked, as failures naming them.
    pub(crate) failures: Vec<ServiceFailure>,
    /// The callbacks still running when the bound ended (dropped).
    pub(crate) unfinished: Vec<Arc<str>>,
}

/// Runs `callbacks` one at a time, in order, within `bound`. Past the bound's
/// end, each callback still gets one poll, so that a callback that needs no
/// waiting (a log line) still runs.
pub(crate) async fn run_callbacks(
    callbacks: Vec<Callback>,
    phase: Phase,
    bound: &mut Bound,
) -> CallbackOutcome {
    let mut outcome = CallbackOutcome::default();
    for callback in callbacks {
        let name = callback.name.clone();
        let mut call = callback.call();
        let result = loop {
            if bound.has_ended() {
                break poll_once(Pin::new(&mut call)).await;
            }
            if let Some(result) = bound.run(Pin::new(&mut call)).await {
                break Some(result);
            }
            // Into overtime, or the bound has ended: go round.
        };
        match result {
            Some(Ok(())) => {}
            Some(Err(message)) => {
                let failure = ServiceFailure::panic_message(name, phase, message);
                tracing::error!(target: LIFETIME_TARGET, "{failure}");
                outcome.failures.push(failure);
            }
            None => {
                tracing::warn!(target: LIFETIME_TARGET,
                    "`{name}` had not returned at the deadline (or the stop request) that \
                     ends the {phase} callbacks; dropped");
                outcome.unfinished.push(name);
            }
        }
    }
    outcome
}
