//! The supervisor of one background service: runs `execute`, and after
//! each run decides, by the service's restart policy, whether and when it
//! runs again.

use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use futures::future::CatchUnwind;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::logging::LIFETIME_TARGET;
use crate::services::failure::ServiceFailure;
use crate::services::record::{Command, Interruptible, NextRun, ServiceRecord, lock};
use crate::services::state::ServiceState;
use crate::supervision::election::Term;
use crate::supervision::leadership;
use crate::supervision::restart::{Decision, Ending, RestartHistory};
use crate::{
    ApplicationLifetime, BackgroundService, BackgroundServiceFailure, Phase, ServiceContext,
    ServiceError,
};

/// The outcome of one run of `execute`: its result, or the payload of its
/// panic; `None` when it was interrupted (aborted past its stop timeout).
type RunOutcome = Option<Result<Result<(), ServiceError>, Box<dyn std::any::Any + Send>>>;

/// Runs `execute` until the host stops the service, restarting it as its
/// policy says; a cluster singleton's only while this instance leads it.
/// Every ending is settled here: a failure the policy does not mend goes to
/// the host's failure behaviour.
///
/// Its one argument is the record, which holds what it runs: its task then
/// stays small (every background service has one, most never restart).
// An `async` block rather than an `async fn`: a function's arguments are
// kept twice in its future, which every background service's task holds.
#[allow(clippy::manual_async_fn)]
pub(crate) fn supervise(record: Arc<ServiceRecord>) -> impl Future<Output = ()> + Send {
    async move {
        let lifetime = &record.shared.lifetime;
        let mut runs = Runs::default();
        match record.election.get() {
            None => {
                runs.run(&record, lifetime, None).await;
            }
            Some(election) => {
                Box::pin(leadership::lead(&record, lifetime, election, &mut runs)).await;
            }
        }
        if let Some(fresh) = runs.fresh.take() {
            Box::pin(fresh.dispose(&record)).await;
        }
    }
}

/// How a stretch of runs ended.
pub(super) enum Ended {
    /// No further run: the host stops the service, or it completed or
    /// failed for good.
    Done,
    /// A cluster singleton's term is over (lost, or stepped down from):
    /// its run has returned.
    TermOver(Command),
}

/// What carries over from one run to the next: the restart history and a
/// fresh instance, each boxed when first needed (a service whose policy
/// never restarts it has neither).
#[derive(Default)]
pub(super) struct Runs {
    restarts: Option<Box<Restarts>>,
    restarted: bool,
    fresh: Option<Box<Fresh>>,
}

/// The restart history, and when the current run began.
#[derive(Default)]
struct Restarts {
    history: RestartHistory,
    began: Option<Instant>,
}

impl Runs {
    /// Runs `execute`, again and again as the policy says, until the
    /// service is done or (for a singleton) `term` is over.
    // An `async` block, as `supervise`: the arguments kept once.
    #[allow(clippy::manual_async_fn)]
    pub(super) fn run<'a>(
        &'a mut self,
        record: &'a Arc<ServiceRecord>,
        lifetime: &'a ApplicationLifetime,
        term: Option<&'a Term>,
    ) -> impl Future<Output = Ended> + Send + 'a {
        async move {
            loop {
                if revoked(term).is_some_and(CancellationToken::is_cancelled) {
                    return Ended::TermOver(Command::Revoked);
                }
                let token = match record.begin_run() {
                    NextRun::Run(token) => token,
                    NextRun::Stopped => return Ended::Done,
                    NextRun::Paused => {
                        // Paused before this run could begin.
                        record.set_state(ServiceState::Paused);
                        if Box::pin(wait(record, None, revoked(term))).await {
                            record.advance(
                                |state| matches!(state, ServiceState::Paused),
                                ServiceState::Running,
                            );
                            continue;
                        }
                        return Ended::Done;
                    }
                };
                if self.restarted {
                    if let Err(failure) = Box::pin(Fresh::next(&mut self.fresh, record)).await {
                        report(record, failure);
                        return Ended::Done;
                    }
                    cascade(record);
                }
                self.restarted = true;
                if record.settings.heartbeat.is_some() {
                    record.shared.liveness.notify_one();
                }
                if record.settings.restart.may_restart() {
                    // When the run began, to tell whether it was stable:
                    // in the boxed history, not in every service's task.
                    self.restarts.get_or_insert_with(Box::default).began = Some(Instant::now());
                }
                let Some(run) = self.execute(record, token, lifetime) else {
                    return Ended::Done;
                };
                let outcome = run.await;
                let (command, stopping) = record.end_of_run();
                let next = decide(record, &mut self.restarts, outcome, command, stopping);
                // After the state has left `hung`: a hung service being mended is
                // never seen as hung beyond its policy in between.
                record.mending.store(false, Ordering::Release);
                let resumed = match next {
                    Next::End => return Ended::Done,
                    Next::TermOver(command) => return Ended::TermOver(command),
                    Next::Now => true,
                    // The waits are boxed: the task of a service that never
                    // restarts stays small. A zero backoff needs no timer, but
                    // still gives the other tasks a turn: a service that fails at
                    // once must not keep its worker to itself.
                    Next::After(delay) if delay.is_zero() => {
                        tokio::task::yield_now().await;
                        Box::pin(wait(record, None, revoked(term))).await
                    }
                    Next::After(delay) => Box::pin(wait(record, Some(delay), revoked(term))).await,
                    Next::Paused => Box::pin(wait(record, None, revoked(term))).await,
                };
                if !resumed {
                    return Ended::Done;
                }
                if record.shared.winding_down() {
                    // The stop was asked for while it waited: no restart begins;
                    // the stop settles it.
                    return Ended::Done;
                }
                record.advance(
                    |state| {
                        matches!(
                            state,
                            ServiceState::Restarting { .. }
                                | ServiceState::Paused
                                | ServiceState::Hung
                        )
                    },
                    ServiceState::Running,
                );
            }
        }
    }
}

impl Runs {
    /// The run of `execute` that begins, on the fresh instance if there is
    /// one, as the supervisor awaits it: a panic caught, and ended at once
    /// by the record's interrupt.
    fn execute<'a>(
        &'a self,
        record: &'a Arc<ServiceRecord>,
        token: CancellationToken,
        lifetime: &ApplicationLifetime,
    ) -> Option<Interruptible<'a, CatchUnwind<AssertUnwindSafe<ExecuteFuture<'a>>>>> {
        let service = match &self.fresh {
            Some(fresh) => &fresh.instance,
            None => record.target()?,
        };
        let context = ServiceContext::supervised(record.clone(), token, lifetime.clone());
        let run = AssertUnwindSafe(service.execute(context)).catch_unwind();
        Some(record.interrupt.guard(run))
    }
}

/// A singleton's term's revocation, looked up where used rather than kept:
/// what lives across the run's await makes every task bigger.
fn revoked(term: Option<&Term>) -> Option<&CancellationToken> {
    term.map(|term| &term.revoked)
}

/// The future of one call of `execute`.
type ExecuteFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ServiceError>> + Send + 'a>>;

/// The fresh instance of the current run, when the registration asks for
/// one per restart, with what disposes of it.
struct Fresh {
    instance: Arc<dyn BackgroundService>,
    disposer: Option<host_di::Disposer>,
}

impl Fresh {
    /// A new instance for the next run into `fresh`, if the registration
    /// asks for one; the previous fresh one is disposed first.
    async fn next(
        fresh: &mut Option<Box<Fresh>>,
        record: &Arc<ServiceRecord>,
    ) -> Result<(), ServiceFailure> {
        let Some(make) = &record.settings.fresh else {
            return Ok(());
        };
        if let Some(previous) = fresh.take() {
            previous.dispose(record).await;
        }
        let Some(provider) = record.shared.provider() else {
            return Ok(());
        };
        let (instance, disposer) = make(&provider).map_err(|error| {
            ServiceFailure::error(
                record.name.clone(),
                Phase::Execute,
                anyhow::anyhow!("a fresh instance for its restart could not be built: {error}"),
            )
        })?;
        *fresh = Some(Box::new(Fresh { instance, disposer }));
        Ok(())
    }

    async fn dispose(self: Box<Self>, record: &ServiceRecord) {
        if let Some(disposer) = self.disposer
            && let Err(message) = disposer.dispose().await
        {
            tracing::error!(target: LIFETIME_TARGET, service = %record.name,
                "disposing the instance of a previous run panicked: {message}");
        }
    }
}

/// What the supervisor does after a run.
enum Next {
    /// No further run: the service completed, failed for good, or is
    /// stopping.
    End,
    /// Run again at once.
    Now,
    /// Run again after a backoff.
    After(Duration),
    /// Wait until resumed.
    Paused,
    /// A cluster singleton's term is over: no run until it leads again.
    TermOver(Command),
}

fn decide(
    record: &Arc<ServiceRecord>,
    restarts: &mut Option<Box<Restarts>>,
    outcome: RunOutcome,
    command: Option<Command>,
    stopping: bool,
) -> Next {
    let ended = outcome.map(|outcome| {
        ServiceFailure::from_outcome(|| record.name.clone(), Phase::Execute, outcome)
    });
    if stopping {
        // The host's stop: what ended now is settled as before restarts
        // existed; an interrupted run has nothing to report.
        if let Some(ended) = ended {
            settle(record, ended, true);
        }
        return Next::End;
    }
    if let Some(command @ (Command::Revoked | Command::StepDown)) = command {
        // Ended because its term is over: not a failure of the service.
        if let Some(Err(failure)) = ended {
            record.note_failure(failure);
        }
        return Next::TermOver(command);
    }
    if command == Some(Command::Restart) && record.shared.winding_down() {
        // Asked to restart as the host began to stop: no restart begins.
        if let Some(ended) = ended {
            settle(record, ended, false);
        }
        return Next::End;
    }
    if let Some(Command::Pause | Command::Restart) = command {
        if let Some(Err(failure)) = ended {
            record.note_failure(failure);
        }
        if command == Some(Command::Pause) {
            tracing::info!(target: LIFETIME_TARGET, service = %record.name,
                "`{}` paused", record.name);
            record.set_state(ServiceState::Paused);
            return Next::Paused;
        }
        tracing::info!(target: LIFETIME_TARGET, service = %record.name,
            "`{}` restarted on request", record.name);
        record.count_restart();
        record.set_state(ServiceState::Restarting {
            attempt: 0,
            at: SystemTime::now(),
        });
        return Next::Now;
    }
    let hung = command == Some(Command::Hung);
    // `cause` completes "`name` ..." in a log line; a failure reads as its
    // own message.
    let (ending, cause) = match (&ended, hung) {
        (_, true) => (
            Ending::Failed(None),
            format!(
                "`{}` missed its heartbeat deadline ({:?})",
                record.name,
                record.settings.heartbeat.unwrap_or_default()
            ),
        ),
        (Some(Ok(())), false) => (Ending::Completed, format!("`{}` completed", record.name)),
        (Some(Err(failure)), false) => {
            (Ending::Failed(failure.service_error()), failure.to_string())
        }
        (None, false) => (
            Ending::Failed(None),
            format!("`{}` was interrupted", record.name),
        ),
    };
    let policy = &record.settings.restart;
    if !policy.restarts_after(ending) || record.shared.winding_down() {
        return end(record, ended, hung);
    }
    let restarts = restarts.get_or_insert_with(Box::default);
    // A policy that may restart noted when the run began.
    let now = Instant::now();
    let began = restarts.began.unwrap_or(now);
    match restarts.history.next(policy, began, now, fastrand::f64()) {
        Decision::Restart { attempt, delay } => {
            if let Some(Err(failure)) = ended {
                record.note_failure(failure);
            }
            tracing::warn!(target: LIFETIME_TARGET, service = %record.name, attempt,
                delay = ?delay, "{cause}; restarting in {delay:?} (attempt {attempt})");
            record.count_restart();
            record.set_state(ServiceState::Restarting {
                attempt,
                at: SystemTime::now() + delay,
            });
            Next::After(delay)
        }
        Decision::GiveUp => {
            tracing::error!(target: LIFETIME_TARGET, service = %record.name,
                "{cause}; giving up after {} restarts within {:?}",
                policy.max_restarts(), policy.period());
            end(record, ended, hung)
        }
    }
}

/// No further run: settles the last one.
fn end(record: &Arc<ServiceRecord>, ended: Option<Result<(), ServiceFailure>>, hung: bool) -> Next {
    match ended {
        Some(ended) if !hung => settle(record, ended, false),
        _ => {
            let reason = if hung {
                format!(
                    "it missed its heartbeat deadline ({:?})",
                    record.settings.heartbeat.unwrap_or_default()
                )
            } else {
                "its run was interrupted".to_owned()
            };
            report(
                record,
                ServiceFailure::error(record.name.clone(), Phase::Execute, anyhow::anyhow!(reason)),
            );
        }
    }
    Next::End
}

/// Settles a run's ending that no restart follows: completed (unless the
/// host is `stopping` the service), or a failure that goes to the host's
/// failure behaviour.
fn settle(record: &Arc<ServiceRecord>, ended: Result<(), ServiceFailure>, stopping: bool) {
    let Err(failure) = ended else {
        if !stopping {
            tracing::debug!(target: LIFETIME_TARGET, service = %record.name,
                "background service completed");
            record.advance(
                |state| {
                    matches!(
                        state,
                        ServiceState::Starting | ServiceState::Running | ServiceState::Ready
                    )
                },
                ServiceState::Completed,
            );
            record.notify_ready_changed();
        }
        return;
    };
    report(record, failure);
}

/// A failure for the host's failure behaviour.
fn report(record: &Arc<ServiceRecord>, failure: ServiceFailure) {
    // Act before logging: a subscriber that panics must not lose the stop.
    record.fail(failure.clone());
    record.notify_ready_changed();
    match record.shared.on_failure {
        BackgroundServiceFailure::StopHost => {
            record.shared.record_failure(failure.clone());
            record.shared.lifetime.stop_application();
            tracing::error!(target: LIFETIME_TARGET, service = %record.name,
                "{failure}; stopping the host");
        }
        BackgroundServiceFailure::Ignore => {
            tracing::error!(target: LIFETIME_TARGET, service = %record.name,
                "{failure}; the host keeps running (BackgroundServiceFailure::Ignore)");
        }
    }
}

/// Restarts the background services that depend on `record`, which has
/// just begun a new run: once it is ready, for those that wait for that.
/// They cascade further through their own restarts.
fn cascade(record: &Arc<ServiceRecord>) {
    if record.shared.winding_down() {
        return;
    }
    let dependents: Vec<(Arc<ServiceRecord>, bool)> = record
        .dependents()
        .into_iter()
        .filter(|dependent| dependent.service.is_background() && dependent.start_completed())
        .map(|dependent| {
            let ready = dependent
                .dependencies()
                .iter()
                .any(|edge| Arc::ptr_eq(&edge.on, record) && edge.ready);
            (dependent, ready)
        })
        .collect();
    if dependents.is_empty() {
        return;
    }
    let record = record.clone();
    tokio::spawn(async move {
        let mut waited_ready = false;
        for (dependent, ready) in dependents {
            if ready && !waited_ready {
                // Its run going (or hung): keep waiting; ended: no cascade.
                let running = |state: &ServiceState| {
                    matches!(
                        state,
                        ServiceState::Running | ServiceState::Starting | ServiceState::Hung
                    )
                };
                if record.until_ready(running).await.is_err() {
                    return;
                }
                waited_ready = true;
            }
            if dependent.end_run(Command::Restart, dependent.stop_timeout()) {
                tracing::info!(target: LIFETIME_TARGET, service = %dependent.name,
                    "restarting `{}` after `{}`, which it depends on", dependent.name,
                    record.name);
            }
        }
    });
}

/// Waits out a backoff (`Some`) or a pause (`None`), and then while the
/// service is paused; `false` if the host asked the service to stop
/// meanwhile. A singleton's wait also ends when its term is `revoked`.
pub(super) async fn wait(
    record: &ServiceRecord,
    delay: Option<Duration>,
    revoked: Option<&CancellationToken>,
) -> bool {
    // A delay too long for an instant never ends: only the stop does.
    let deadline = delay.map(|delay| Instant::now().checked_add(delay));
    let mut waited = deadline.is_none();
    loop {
        let mut woken = pin!(record.wake().notified());
        woken.as_mut().enable();
        let paused = {
            let run = lock(&record.run);
            if run.stop_begun {
                return false;
            }
            run.paused
        };
        if (waited && !paused) || revoked.is_some_and(CancellationToken::is_cancelled) {
            return true;
        }
        let revoked = async {
            match revoked {
                Some(revoked) => revoked.cancelled().await,
                None => std::future::pending().await,
            }
        };
        match deadline.flatten().filter(|_| !waited) {
            Some(deadline) => tokio::select! {
                () = tokio::time::sleep_until(deadline) => waited = true,
                () = woken => {}
                () = revoked => {}
            },
            None => tokio::select! {
                () = woken => {}
                () = revoked => {}
            },
        }
    }
}
