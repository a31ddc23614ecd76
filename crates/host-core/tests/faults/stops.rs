//! Promises 2 and 3: every service that started is stopped exactly once;
//! one that never started is never stopped; nothing of the host runs once
//! it has stopped.

use std::collections::BTreeSet;

use host_core::ServiceState;

use crate::check::{Observed, Problems, stop_abandoned};
use crate::known::{self, Known};
use crate::ledger::Call;
use crate::plan::{Kind, Plan};

/// Promises 2 and 3: every service that started is stopped exactly once
/// (its `stopping` hook, `stop` or `after_stop`, `stopped` hook); one that
/// never started is never stopped; nothing of the host runs once it has
/// stopped.
pub(crate) fn check(plan: &Plan, seen: &Observed, problems: &mut Problems) {
    let rolled_back: BTreeSet<&str> = match &seen.start {
        Err(error) => error.rolled_back().collect(),
        Ok(()) => BTreeSet::new(),
    };
    for (index, (service, entry)) in plan.services.iter().zip(&seen.entries).enumerate() {
        let name = &service.name;
        let leaked = known::leaked(plan, seen, index).then_some(Known::ExecuteOutlivesTheStart);
        let waited =
            known::stop_waited(plan, seen, index).then_some(Known::StopWaitsPastTheTimeout);
        let mut say =
            |problem: String, known| problems.explained(format!("`{name}`: {problem}"), known);
        for problem in &entry.violations {
            say(problem.clone(), None);
        }
        let open = entry.in_flight();
        if !open.is_empty() {
            say(
                format!("still running after the host stopped: {open:?}"),
                leaked,
            );
        }
        for run in &entry.runs_after_the_end {
            say(
                format!("run {} began after the host had stopped", run + 1),
                leaked,
            );
        }
        for &run in &entry.late_restarts {
            let known = if leaked.is_some() {
                leaked
            } else {
                known::run_decided_before_the_stop(seen, name, run)
                    .then_some(Known::RestartAfterTheStopRequest)
            };
            say(
                format!(
                    "run {} (a restart) began after the stop was requested",
                    run + 1
                ),
                known,
            );
        }
        for call in [
            Call::Starting,
            Call::Start,
            Call::Started,
            Call::Stopping,
            Call::Stop,
            Call::Stopped,
            Call::BeforeStart,
            Call::AfterStop,
        ] {
            let made = entry.count(call).entered;
            if made > 1 {
                say(format!("{call:?} was called {made} times"), None);
            }
        }
        let stopping = entry.count(Call::Stopping).entered;
        let stop = entry.count(Call::Stop).entered;
        let after_stop = entry.count(Call::AfterStop).entered;
        let stopped = entry.count(Call::Stopped).entered;
        let host_started = seen.events.iter().any(|event| {
            &*event.service == name
                && matches!(event.from, ServiceState::Starting)
                && matches!(event.to, ServiceState::Running)
        });
        let stopping_events = seen
            .events
            .iter()
            .filter(|event| &*event.service == name && matches!(event.to, ServiceState::Stopping))
            .count();
        // Whether it started, as far as its own calls tell.
        let started = match &service.kind {
            Kind::Plain(_) => Some(entry.count(Call::Start).ok == 1),
            Kind::Worker(_) if entry.count(Call::BeforeStart).ok == 0 => Some(false),
            Kind::Worker(_) if !plan.awaited(index) => Some(true),
            // Its start lasts until it reports ready; one that never did
            // never started. One that did may still have been cut short.
            Kind::Worker(_) if !entry.readied => Some(false),
            Kind::Worker(_) => None,
            // A periodic service's start only spawns its schedule: it has
            // started when the host says so, and not before it ran.
            Kind::Job(_) => {
                if !entry.runs.is_empty() && !host_started {
                    say(
                        format!(
                            "ran {} times, but the host never said it started",
                            entry.runs.len()
                        ),
                        None,
                    );
                }
                if stopping_events != usize::from(host_started) {
                    say(
                        format!(
                            "entered `stopping` {stopping_events} times; it started: \
                             {host_started}"
                        ),
                        None,
                    );
                }
                continue;
            }
        };
        if stopping != stopped {
            say(
                format!(
                    "its stopping hook was called {stopping} times, its stopped hook {stopped}"
                ),
                None,
            );
        }
        let is_worker = matches!(service.kind, Kind::Worker(_));
        // A worker whose stop was abandoned (its run outlived the stop
        // timeout) never reaches `after_stop`.
        let run_abandoned = stop_abandoned(plan, entry, index);
        let stop_calls = if is_worker { after_stop } else { stop };
        match started {
            Some(true) => {
                if stopping != 1 || stopped != 1 {
                    say(
                        format!(
                            "started, but its stopping hook was called {stopping} times and its \
                             stopped hook {stopped}"
                        ),
                        None,
                    );
                }
                if stop_calls != 1 && !(is_worker && run_abandoned) {
                    say(
                        format!(
                            "started, but stopped {stop_calls} times (its {})",
                            if is_worker { "after_stop" } else { "stop" }
                        ),
                        waited.filter(|_| stop_calls == 0),
                    );
                }
            }
            Some(false) => {
                if stopping + stop + after_stop + stopped > 0 {
                    say(
                        format!(
                            "never started, but stopped: stopping hook {stopping}, stop {stop}, \
                             after_stop {after_stop}, stopped hook {stopped}"
                        ),
                        None,
                    );
                }
                if rolled_back.contains(name.as_str()) {
                    say(
                        "never started, but the failed start's error says it was rolled back"
                            .to_owned(),
                        None,
                    );
                }
            }
            None => {
                if stopping == 1 && after_stop != 1 && !run_abandoned {
                    say(
                        format!(
                            "stopped (its stopping hook ran), but its after_stop ran \
                             {after_stop} times"
                        ),
                        waited.filter(|_| after_stop == 0),
                    );
                }
                if stopping == 0 && after_stop > 0 {
                    say(
                        "after_stop ran although it was never stopped".to_owned(),
                        None,
                    );
                }
            }
        }
        if stopping_events != stopping as usize {
            say(
                format!(
                    "entered `stopping` {stopping_events} times; its stopping hook ran \
                     {stopping} times"
                ),
                None,
            );
        }
    }
}
