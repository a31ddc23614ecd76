//! Promises 4 and 5: no service restarts more often than its policy's
//! limit, and no restart begins once the stop was requested.

use std::time::Duration;

use host_core::ServiceState;
use tokio::time::Instant;

use crate::check::{Observed, Problems, failed_runs, restarting};
use crate::known::{self, Known};
use crate::plan::{Kind, Mode, Plan, Policy};

/// Promises 4 and 5: no service restarts more often than its policy's
/// limit, and no restart begins once the stop was requested.
pub(crate) fn check(plan: &Plan, seen: &Observed, problems: &mut Problems) {
    // A restart begins when its service leaves `restarting` for `running`.
    if seen.stop.is_some() {
        for (at, event) in seen.events.iter().enumerate().skip(seen.events_before_stop) {
            if matches!(event.from, ServiceState::Restarting { .. })
                && matches!(event.to, ServiceState::Running)
            {
                let known = known::backoff_under_way(seen, &event.service, at)
                    .then_some(Known::RestartAfterTheStopRequest);
                problems.explained(
                    format!(
                        "`{}`: a restart began after the stop was requested (event {})",
                        event.service,
                        at + 1
                    ),
                    known,
                );
            }
        }
    }
    for (service, entry) in plan.services.iter().zip(&seen.entries) {
        let name = &service.name;
        let events = restarting(seen, name);
        // When the supervisor decided on each restart its policy counts
        // (attempt 1 and on; a restart on request, attempt 0, does not
        // count): the end of the run before it, on the paused clock. The
        // policy counts decisions, not the runs' start times: a backoff
        // shortened after a stable run brings two starts closer than
        // their decisions were.
        let (policy, decided): (&Policy, Vec<Instant>) = match &service.kind {
            Kind::Plain(_) => {
                if !events.is_empty() {
                    problems.push(format!("`{name}`: a plain hosted service restarted"));
                }
                continue;
            }
            Kind::Worker(worker) => {
                if entry.runs.len() > events.len() + 1 {
                    problems.push(format!(
                        "`{name}`: {} runs, but only {} restarts",
                        entry.runs.len(),
                        events.len()
                    ));
                }
                let mut decided = Vec::new();
                for (nth, (attempt, _)) in events.iter().enumerate() {
                    match entry.runs.get(nth).and_then(|run| run.ended) {
                        Some((at, _)) if *attempt > 0 => decided.push(at),
                        Some(_) => {}
                        None => problems.push(format!(
                            "`{name}`: restart {} has no run that ended before it",
                            nth + 1
                        )),
                    }
                }
                (&worker.restart, decided)
            }
            Kind::Job(job) => {
                let failed: Vec<Instant> = failed_runs(entry).collect();
                let policy = events.iter().filter(|(attempt, _)| *attempt > 0).count();
                if policy > failed.len() {
                    problems.push(format!(
                        "`{name}`: restarted {policy} times by its policy, but only {} runs failed",
                        failed.len()
                    ));
                }
                (&job.restart, failed.into_iter().take(policy).collect())
            }
        };
        if policy.mode == Mode::Never && !decided.is_empty() {
            problems.push(format!(
                "`{name}`: restarted {} times, but its policy never restarts",
                decided.len()
            ));
        }
        for (nth, &at) in decided.iter().enumerate() {
            let within: Vec<Duration> = decided[..=nth]
                .iter()
                .filter(|&&earlier| at - earlier < policy.within)
                .map(|&earlier| earlier - seen.origin)
                .collect();
            if within.len() > policy.max_restarts as usize {
                problems.push(format!(
                    "`{name}`: {} restarts within {:?} (decided at {within:?} after the start), \
                     more than its limit of {}",
                    within.len(),
                    policy.within,
                    policy.max_restarts
                ));
                break;
            }
        }
    }
}
