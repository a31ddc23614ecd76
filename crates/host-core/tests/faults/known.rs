//! The host-core bugs the suite found (all fixed), each kept as a test in
//! `found.rs`, and the exact patterns of broken promises each made: a
//! broken promise that matches one fails the suite all the same, its report
//! naming the bug come back.

use std::collections::BTreeSet;
use std::fmt;

use host_core::ServiceState;

use crate::check::Observed;
use crate::plan::Plan;

/// A bug the suite found, fixed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Known {
    /// `found::a_concurrent_stop_still_stops_a_service_whose_dependent_hangs`
    StopWaitsPastTheTimeout,
    /// `found::a_failed_start_leaves_no_execute_running`
    ExecuteOutlivesTheStart,
    /// `found::no_restart_begins_after_the_stop_was_requested`
    RestartAfterTheStopRequest,
}

impl fmt::Display for Known {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Known::StopWaitsPastTheTimeout => {
                "a concurrent stop never stops a service whose dependent outlived the shutdown \
                 timeout (found::a_concurrent_stop_still_stops_a_service_whose_dependent_hangs)"
            }
            Known::ExecuteOutlivesTheStart => {
                "an execute awaited for its readiness outlives a start cut short \
                 (found::a_failed_start_leaves_no_execute_running)"
            }
            Known::RestartAfterTheStopRequest => {
                "a backoff that ends after the stop was requested still restarts \
                 (found::no_restart_begins_after_the_stop_was_requested)"
            }
        })
    }
}

/// The services the host names as timed out.
fn timed_out(seen: &Observed) -> BTreeSet<&str> {
    let error = match (&seen.start, &seen.stop) {
        (Err(error), _) => Some(error),
        (Ok(()), Some(stop)) => stop.result.as_ref().err(),
        (Ok(()), None) => None,
    };
    error.map(|e| e.timed_out().collect()).unwrap_or_default()
}

/// Whether the stop of service `index` may never have been called because
/// it waited, in a concurrent stop, for a dependent that outlived the
/// shutdown timeout (one the stop reached and named as timed out).
pub(crate) fn stop_waited(plan: &Plan, seen: &Observed, index: usize) -> bool {
    if !plan.stop_concurrently {
        return false;
    }
    let timed_out = timed_out(seen);
    dependents(plan, index).into_iter().any(|dependent| {
        let name = plan.services[dependent].name.as_str();
        timed_out.contains(name)
            && seen
                .events
                .iter()
                .any(|event| &*event.service == name && matches!(event.to, ServiceState::Stopping))
    })
}

/// Every service that depends on service `index`, directly or through
/// others.
fn dependents(plan: &Plan, index: usize) -> BTreeSet<usize> {
    let mut found = BTreeSet::new();
    let mut next = vec![index];
    while let Some(on) = next.pop() {
        for (dependent, service) in plan.services.iter().enumerate() {
            if service.after.iter().any(|(target, _)| *target == on) && found.insert(dependent) {
                next.push(dependent);
            }
        }
    }
    found
}

/// Whether service `index`'s `execute` may have been left running by a
/// start cut short while it waited for its readiness: something waits for
/// it, and the host never stopped it.
pub(crate) fn leaked(plan: &Plan, seen: &Observed, index: usize) -> bool {
    seen.start.is_err()
        && plan.awaited(index)
        && seen.entries[index]
            .count(crate::ledger::Call::Stopping)
            .entered
            == 0
}

/// Whether the restart of service `name` that left `restarting` at event
/// `began` was decided before the stop was requested: its backoff was
/// under way then.
pub(crate) fn backoff_under_way(seen: &Observed, name: &str, began: usize) -> bool {
    seen.events[..began]
        .iter()
        .rposition(|event| {
            &*event.service == name && matches!(event.to, ServiceState::Restarting { .. })
        })
        .is_some_and(|decided| decided < seen.events_before_stop)
}

/// Whether run `run` (by index) of service `name`, a restart, was decided
/// before the stop was requested.
pub(crate) fn run_decided_before_the_stop(seen: &Observed, name: &str, run: usize) -> bool {
    let restarting: Vec<usize> = seen
        .events
        .iter()
        .enumerate()
        .filter(|(_, event)| {
            &*event.service == name && matches!(event.to, ServiceState::Restarting { .. })
        })
        .map(|(at, _)| at)
        .collect();
    // Run `run` follows the `run`-th restart (the first run follows none).
    run.checked_sub(1)
        .and_then(|nth| restarting.get(nth))
        .is_some_and(|&decided| decided < seen.events_before_stop)
}

/// Whether service `index` depends on a service that restarted after the
/// stop was requested: that restart cascades to it, ending its run.
pub(crate) fn cascaded_late(plan: &Plan, seen: &Observed, index: usize) -> bool {
    plan.services[index]
        .after
        .iter()
        .any(|&(on, _)| restarted_late(plan, seen, on))
}

/// Whether service `index` began a restart after the stop was requested.
fn restarted_late(plan: &Plan, seen: &Observed, index: usize) -> bool {
    let name = plan.services[index].name.as_str();
    !seen.entries[index].late_restarts.is_empty()
        || seen.events[seen.events_before_stop.min(seen.events.len())..]
            .iter()
            .any(|event| {
                &*event.service == name
                    && matches!(event.from, ServiceState::Restarting { .. })
                    && matches!(event.to, ServiceState::Running)
            })
}
