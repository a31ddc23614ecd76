//! Promise 1: the host's start and stop end within their timeouts and the
//! documented time past them, with the documented exit code, the error
//! naming what timed out and what failed.

use std::collections::BTreeSet;
use std::time::Duration;

use host_core::{BackgroundServiceFailure, HostError, Phase};

use crate::check::{Observed, Problems, failed_runs, restarting, stop_abandoned};
use crate::known::{self, Known};
use crate::ledger::{Call, End, Entry};
use crate::plan::{Kind, Plan};

/// Past its shutdown timeout, how long a stop may still take: the overtime
/// (200 ms), the wait for aborted tasks (150 ms) and the disposal's least
/// time (100 ms), as docs/lifecycle.md documents them ("Timeouts",
/// "Disposal"). On the paused clock nothing blocks a thread, so the 600 ms
/// after which `Host::stop` gives up on a blocked stop never comes into it.
pub(crate) const PAST_THE_TIMEOUT: Duration = Duration::from_millis(450);

/// The calls at the stop whose failure fails the stop, with the phase the
/// host names (`after_stop` runs inside `stop`).
const STOP_CALLS: [(Call, Phase); 4] = [
    (Call::Stopping, Phase::Stopping),
    (Call::Stop, Phase::Stop),
    (Call::AfterStop, Phase::Stop),
    (Call::Stopped, Phase::Stopped),
];

/// Checks promise 1.
pub(crate) fn check(plan: &Plan, seen: &Observed, problems: &mut Problems) {
    let start_bound = plan.startup_timeout + plan.shutdown_timeout + PAST_THE_TIMEOUT;
    if seen.start_took > start_bound {
        problems.push(format!(
            "the start took {:?}, more than the startup timeout, the shutdown timeout (for its \
             rollback) and {PAST_THE_TIMEOUT:?} ({start_bound:?})",
            seen.start_took
        ));
    }
    let stop = match (&seen.start, &seen.stop) {
        (Err(error), _) => {
            if error.exit_code() != 1 || !error.is_start() {
                problems.push(format!(
                    "a failed start exits {} (is_start: {}), not 1: {error}",
                    error.exit_code(),
                    error.is_start()
                ));
            }
            return;
        }
        (Ok(()), Some(stop)) => stop,
        (Ok(()), None) => {
            problems.push("the host started but was never stopped".to_owned());
            return;
        }
    };
    let stop_bound = plan.shutdown_timeout + PAST_THE_TIMEOUT;
    if stop.took > stop_bound {
        problems.push(format!(
            "the stop took {:?}, more than the shutdown timeout and {PAST_THE_TIMEOUT:?} \
             ({stop_bound:?})",
            stop.took
        ));
    }
    let error = stop.result.as_ref().err();
    let code = error.map_or(0, HostError::exit_code);
    let name = |index: usize| plan.services[index].name.as_str();

    // A shutdown timeout (3) exactly when the host abandoned a stop, naming
    // those services.
    let index_of = |service: &str| plan.services.iter().position(|s| s.name == service);
    let mut abandoned: BTreeSet<&str> = (0..plan.services.len())
        .filter(|&index| stop_abandoned(plan, &seen.entries[index], index))
        .map(name)
        .collect();
    let timed_out: BTreeSet<&str> = error.map(|e| e.timed_out().collect()).unwrap_or_default();
    for service in timed_out.difference(&abandoned) {
        // Named without being abandoned: never told to stop, as the known
        // bug does it.
        let waited = index_of(service).is_some_and(|index| known::stop_waited(plan, seen, index));
        problems.explained(
            format!("the stop names `{service}` as timed out, but abandoned none of its calls"),
            waited.then_some(Known::StopWaitsPastTheTimeout),
        );
    }
    let mut cascaded = Vec::new();
    for service in abandoned.difference(&timed_out) {
        // A run ended for a restart cascading from a late one, aborted past
        // its stop timeout: not the stop's doing.
        let late = index_of(service).is_some_and(|index| known::cascaded_late(plan, seen, index));
        if late {
            cascaded.push(*service);
        }
        problems.explained(
            format!(
                "a run or call of `{service}` was abandoned once the stop had begun, but the stop \
                 does not name it as timed out"
            ),
            late.then_some(Known::RestartAfterTheStopRequest),
        );
    }
    for service in cascaded {
        abandoned.remove(service);
    }

    // Every failure at the stop is in the error, under the phase it
    // happened in; every failure the error names happened.
    let failures: Vec<(&str, Phase)> = error
        .map(|e| {
            e.failures()
                .iter()
                .map(|f| (f.service(), f.phase()))
                .collect()
        })
        .unwrap_or_default();
    let mut failed_at_stop = false;
    for (index, entry) in seen.entries.iter().enumerate() {
        for (call, phase) in STOP_CALLS {
            if entry.count(call).failed > 0 {
                failed_at_stop = true;
                if !failures.contains(&(name(index), phase)) {
                    problems.push(format!(
                        "`{}` failed in {call:?}, but the stop's error does not name it: {}",
                        name(index),
                        describe(error)
                    ));
                }
            }
        }
    }
    let mut unmended = Vec::new();
    for (service, phase) in &failures {
        let Some(index) = plan.services.iter().position(|s| s.name == *service) else {
            problems.push(format!(
                "the stop's error names `{service}` ({phase:?}), which is no service"
            ));
            continue;
        };
        let entry = &seen.entries[index];
        let happened = match phase {
            Phase::Execute => {
                plan.on_failure == BackgroundServiceFailure::StopHost
                    && (entry
                        .runs
                        .iter()
                        .any(|run| matches!(run.ended, Some((_, End::Failed | End::Dropped))))
                        || matches!(&plan.services[index].kind,
                        Kind::Worker(worker) if worker.heartbeat.is_some()))
            }
            _ => STOP_CALLS
                .iter()
                .any(|(call, p)| p == phase && entry.count(*call).failed > 0),
        };
        if !happened {
            problems.push(format!(
                "the stop's error names a failure of `{service}` in {phase:?} that its service \
                 did not have (under {:?})",
                plan.on_failure
            ));
        }
    }
    // Under `StopHost`, a failed run that no restart followed stops the
    // host with its failure.
    if plan.on_failure == BackgroundServiceFailure::StopHost {
        for (index, entry) in seen.entries.iter().enumerate() {
            if unmended_failure(plan, seen, index, entry) {
                unmended.push(name(index));
                if !failures.contains(&(name(index), Phase::Execute)) {
                    problems.push(format!(
                        "`{}`'s last run failed and was not restarted, but the stop's error does \
                         not name it: {}",
                        name(index),
                        describe(error)
                    ));
                }
            }
        }
    }
    let expected = if !abandoned.is_empty() {
        Some(3)
    } else if failed_at_stop || !unmended.is_empty() {
        Some(1)
    } else if plan.on_failure == BackgroundServiceFailure::Ignore {
        Some(0)
    } else {
        // A hang given up on fails the host too; the ledger cannot see it.
        None
    };
    match expected {
        Some(expected) if expected != code => problems.push(format!(
            "the stop exits {code}, not {expected}: {}",
            describe(error)
        )),
        None if !matches!(code, 0 | 1) => problems.push(format!(
            "the stop exits {code}, not 0 or 1: {}",
            describe(error)
        )),
        _ => {}
    }
}

/// Whether service `index`'s last run failed and no restart followed it.
fn unmended_failure(plan: &Plan, seen: &Observed, index: usize, entry: &Entry) -> bool {
    let restarts = restarting(seen, &plan.services[index].name);
    match &plan.services[index].kind {
        Kind::Plain(_) => false,
        Kind::Worker(_) => {
            matches!(
                entry.runs.last().and_then(|run| run.ended),
                Some((_, End::Failed))
            ) && restarts.len() < entry.runs.len()
        }
        Kind::Job(_) => {
            let failed = failed_runs(entry).count();
            let policy = restarts.iter().filter(|(attempt, _)| *attempt > 0).count();
            failed > policy
        }
    }
}

/// The stop's outcome, for a message.
fn describe(error: Option<&HostError>) -> String {
    error.map_or_else(|| "it returned Ok".to_owned(), |error| format!("{error}"))
}
