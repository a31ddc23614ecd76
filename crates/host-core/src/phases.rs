//! Running one lifecycle phase over the hosted services, in order or all at
//! once, within a bound.

use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use tracing::Instrument;

use crate::bound::{Bound, poll_once};
use crate::failure::ServiceFailure;
use crate::record::ServiceRecord;
use crate::state::ServiceState;
use crate::{ApplicationLifetime, LifecycleContext, Phase};

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

pub(crate) struct PhaseRunner<'a> {
    pub(crate) lifetime: &'a ApplicationLifetime,
    pub(crate) concurrent: bool,
    pub(crate) mode: Mode,
}

impl PhaseRunner<'_> {
    /// Calls `phase` on each of `records`, in the order given (or all at
    /// once), within `bound`.
    pub(crate) async fn run(
        &self,
        records: &[Arc<ServiceRecord>],
        phase: Phase,
        bound: &mut Bound,
    ) -> PhaseOutcome {
        let mut outcome = PhaseOutcome::default();
        if self.concurrent || (self.mode == Mode::Stop && bound.past_deadline()) {
            let calls = records
                .iter()
                .enumerate()
                .map(|(index, record)| indexed(index, self.call(record, phase, bound)));
            self.run_at_once(records, calls.collect(), phase, bound, &mut outcome)
                .await;
        } else {
            match self.mode {
                Mode::Start => {
                    self.start_in_order(records, phase, bound, &mut outcome)
                        .await
                }
                Mode::Stop => {
                    self.stop_in_order(records, phase, bound, &mut outcome)
                        .await
                }
            }
        }
        outcome
    }

    async fn start_in_order(
        &self,
        records: &[Arc<ServiceRecord>],
        phase: Phase,
        bound: &mut Bound,
        outcome: &mut PhaseOutcome,
    ) {
        for record in records {
            if bound.has_ended() {
                break;
            }
            let mut call = pin!(self.call(record, phase, bound));
            let result = match bound.run(call.as_mut()).await {
                Some(result) => Some(result),
                None => poll_once(call).await,
            };
            match result {
                Some(result) => {
                    let failed = result.is_err();
                    self.settle(record, phase, result, outcome);
                    if failed {
                        break;
                    }
                }
                None => outcome.unfinished.push(record.clone()),
            }
        }
    }

    async fn stop_in_order(
        &self,
        records: &[Arc<ServiceRecord>],
        phase: Phase,
        bound: &mut Bound,
        outcome: &mut PhaseOutcome,
    ) {
        for (position, record) in records.iter().enumerate() {
            let mut call = Box::pin(self.call(record, phase, bound));
            if let Some(result) = bound.run(call.as_mut()).await {
                self.settle(record, phase, result, outcome);
                continue;
            }
            // The deadline passed during this call: it and every later call
            // run at once, so that one hanging service cannot keep the
            // others from stopping.
            let rest = records[position + 1..]
                .iter()
                .map(|record| Box::pin(self.call(record, phase, bound)));
            let calls = std::iter::once(call)
                .chain(rest)
                .enumerate()
                .map(|(index, call)| indexed(index, call))
                .collect();
            let remaining = &records[position..];
            return self
                .run_at_once(remaining, calls, phase, bound, outcome)
                .await;
        }
    }

    /// Polls `calls` (each tagged with its index in `records`) together until
    /// they finish or the bound ends; a failure in a start phase ends it.
    async fn run_at_once<F>(
        &self,
        records: &[Arc<ServiceRecord>],
        mut calls: FuturesUnordered<F>,
        phase: Phase,
        bound: &mut Bound,
        outcome: &mut PhaseOutcome,
    ) where
        F: Future<Output = (usize, CallResult)>,
    {
        let mut finished = vec![false; records.len()];
        let mut settle = |(index, result): (usize, CallResult), outcome: &mut PhaseOutcome| {
            finished[index] = true;
            let failed = result.is_err();
            self.settle(&records[index], phase, result, outcome);
            failed
        };
        loop {
            match bound.run(Pin::new(&mut calls.next())).await {
                Some(Some(done)) => {
                    let failed = settle(done, outcome);
                    if failed && self.mode == Mode::Start {
                        // Tell the others their start is abandoned.
                        bound.cancel();
                    }
                }
                Some(None) => break,
                None if bound.has_ended() => {
                    // One more poll each, with the token fired.
                    while let Some(Some(done)) = poll_once(Pin::new(&mut calls.next())).await {
                        settle(done, outcome);
                    }
                    break;
                }
                None => {} // into overtime: keep polling
            }
        }
        drop(calls);
        outcome.unfinished.extend(
            records
                .iter()
                .zip(finished)
                .filter(|(_, finished)| !finished)
                .map(|(record, _)| record.clone()),
        );
    }

    /// One call of `phase` on one service, with its panics caught, inside the
    /// service's span.
    fn call(
        &self,
        record: &Arc<ServiceRecord>,
        phase: Phase,
        bound: &Bound,
    ) -> impl Future<Output = CallResult> + Send + 'static {
        match phase {
            Phase::Starting => record.set_state(ServiceState::Starting),
            Phase::Stopping => record.set_state(ServiceState::Stopping),
            _ => {}
        }
        let context = LifecycleContext::new(
            record.clone(),
            phase,
            bound.token().clone(),
            self.lifetime.clone(),
        );
        let record = record.clone();
        let span = record.span.clone();
        async move {
            let service = &record.service;
            let call = match phase {
                Phase::Starting => service.starting(&context),
                Phase::Start => service.start(&context),
                Phase::Started => service.started(&context),
                Phase::Stopping => service.stopping(&context),
                Phase::Stop => service.stop(&context),
                Phase::Stopped | Phase::Execute => service.stopped(&context),
            };
            match AssertUnwindSafe(call).catch_unwind().await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(ServiceFailure::error(record.name.clone(), phase, error)),
                Err(payload) => Err(ServiceFailure::panic(record.name.clone(), phase, payload)),
            }
        }
        .instrument(span)
    }

    fn settle(
        &self,
        record: &Arc<ServiceRecord>,
        phase: Phase,
        result: CallResult,
        outcome: &mut PhaseOutcome,
    ) {
        match result {
            Ok(()) => {
                match phase {
                    Phase::Start => {
                        record.mark_start_completed();
                        record.advance(
                            |state| matches!(state, ServiceState::Starting),
                            ServiceState::Running,
                        );
                    }
                    Phase::Stop => record.advance(
                        |state| !matches!(state, ServiceState::Failed(_)),
                        ServiceState::Stopped,
                    ),
                    _ => {}
                }
                outcome.succeeded.push(record.clone());
            }
            Err(failure) => {
                record.fail(failure.clone());
                outcome.failures.push(failure.clone());
                tracing::error!(target: "host::lifetime", service = %record.name, "{failure}");
            }
        }
    }
}

/// Tags a call with its index, so calls run at once can be matched to their
/// services.
fn indexed<F: Future<Output = CallResult>>(
    index: usize,
    call: F,
) -> impl Future<Output = (usize, CallResult)> {
    call.map(move |result| (index, result))
}
