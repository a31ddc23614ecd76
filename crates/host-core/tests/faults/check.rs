//! The promises every run must keep, checked against what the services
//! noted in the ledger and what the host reported (its result, its events):
//! what a run saw, the broken promises, and what the checks of each promise
//! (`exit_code.rs`, `stops.rs`, `restarts.rs`) share. Each broken promise is
//! a line naming the service and what happened.

use std::time::Duration;

use host_core::{HostError, ServiceEvent, ServiceState};
use tokio::time::Instant;

use crate::known::Known;
use crate::ledger::{Call, End, Entry};
use crate::plan::{Kind, Plan};

/// A broken promise: what happened, and the bug found before that it is
/// the return of, if it matches one.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) text: String,
    pub(crate) known: Option<Known>,
}

/// The broken promises found so far.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    /// A broken promise no bug found before matches.
    pub(crate) fn push(&mut self, text: String) {
        self.0.push(Problem { text, known: None });
    }

    /// A broken promise that is the return of the bug `known`, when `Some`.
    pub(crate) fn explained(&mut self, text: String, known: Option<Known>) {
        self.0.push(Problem { text, known });
    }
}

/// What a fault run saw.
#[derive(Debug)]
pub(crate) struct Observed {
    /// When the test began to start the host: the origin of the times shown.
    pub(crate) origin: Instant,
    pub(crate) start: Result<(), HostError>,
    pub(crate) start_took: Duration,
    /// When the start succeeded: how the host was stopped.
    pub(crate) stop: Option<Stopped>,
    pub(crate) events: Vec<ServiceEvent>,
    /// How many of the events came before the stop was requested, as far as
    /// the test could tell (no fewer than did).
    pub(crate) events_before_stop: usize,
    pub(crate) entries: Vec<Entry>,
}

/// How the stop of a host that started went.
#[derive(Debug)]
pub(crate) struct Stopped {
    pub(crate) result: Result<(), HostError>,
    pub(crate) took: Duration,
    /// A failure asked for the stop (`StopHost`), before the test would have.
    pub(crate) by_the_host: bool,
    /// How long after the start the stop was requested.
    pub(crate) after: Duration,
}

/// Every promise `seen` breaks.
pub(crate) fn check(plan: &Plan, seen: &Observed) -> Vec<Problem> {
    let mut problems = Problems::default();
    crate::exit_code::check(plan, seen, &mut problems);
    crate::stops::check(plan, seen, &mut problems);
    crate::restarts::check(plan, seen, &mut problems);
    problems.0
}

/// Whether the host abandoned the stop of service `index`: it dropped one
/// of its calls or runs once its stop had begun, or (a worker) the stop
/// told its run to return and never reached `after_stop`, because the run
/// took longer than the stop timeout (and ended on its own later).
pub(crate) fn stop_abandoned(plan: &Plan, entry: &Entry, index: usize) -> bool {
    !entry.abandoned.is_empty()
        || (matches!(plan.services[index].kind, Kind::Worker(_))
            && entry.told_to_stop
            && entry.count(Call::Stopping).entered == 1
            && entry.count(Call::AfterStop).entered == 0)
}

/// The `restarting` events of `service`, in order: the attempt and the
/// event's place among all events.
pub(crate) fn restarting(seen: &Observed, service: &str) -> Vec<(u32, usize)> {
    seen.events
        .iter()
        .enumerate()
        .filter(|(_, event)| &*event.service == service)
        .filter_map(|(at, event)| match event.to {
            ServiceState::Restarting { attempt, .. } => Some((attempt, at)),
            _ => None,
        })
        .collect()
}

/// When each failed run of a job ended.
pub(crate) fn failed_runs(entry: &Entry) -> impl Iterator<Item = Instant> + '_ {
    entry.runs.iter().filter_map(|run| match run.ended {
        Some((at, End::Failed)) => Some(at),
        _ => None,
    })
}
