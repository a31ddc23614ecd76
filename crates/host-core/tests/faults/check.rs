//! The promises every run must keep, checked against what the services
//! noted in the ledger and what the host reported (its result, its events).
//! Each broken one is a line naming the service and what happened.

use std::collections::BTreeSet;
use std::time::Duration;

use host_core::{BackgroundServiceFailure, HostError, Phase, ServiceEvent, ServiceState};
use tokio::time::Instant;

use crate::known::{self, Known};
use crate::ledger::{Call, End, Entry};
use crate::plan::{Kind, Mode, Plan, Policy};

/// A broken promise: what happened, and the known bug that explains it, if
/// one does.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) text: String,
    pub(crate) known: Option<Known>,
}

/// The broken promises found so far.
#[derive(Debug, Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, text: String) {
        self.0.push(Problem { text, known: None });
    }

    /// A broken promise that `known`, when `Some`, explains.
    fn explained(&mut self, text: String, known: Option<Known>) {
        self.0.push(Problem { text, known });
    }
}

/// Past its shutdown timeout, how long a stop may still take: the overtime
/// (200 ms), the wait for aborted tasks (150 ms) and the disposal's least
/// time (100 ms), as docs/lifecycle.md documents them ("Timeouts",
/// "Disposal"). On the paused clock nothing blocks a thread, so the 600 ms
/// after which `Host::stop` gives up on a blocked stop never comes into it.
pub(crate) const PAST_THE_TIMEOUT: Duration = Duration::from_millis(450);

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
    timing_and_exit_code(plan, seen, &mut problems);
    stopped_once(plan, seen, &mut problems);
    restarts(plan, seen, &mut problems);
    problems.0
}

/// The calls at the stop whose failure fails the stop, with the phase the
/// host names (`after_stop` runs inside `stop`).
const STOP_CALLS: [(Call, Phase); 4] = [
    (Call::Stopping, Phase::Stopping),
    (Call::Stop, Phase::Stop),
    (Call::AfterStop, Phase::Stop),
    (Call::Stopped, Phase::Stopped),
];

/// Promise 1: the host's start and stop end within their timeouts and the
/// documented time past them, with the documented exit code, naming what
/// timed out and what failed.
fn timing_and_exit_code(plan: &Plan, seen: &Observed, problems: &mut Problems) {
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

/// Whether the host abandoned the stop of service `index`: it dropped one
/// of its calls or runs once its stop had begun, or (a worker) the stop
/// told its run to return and never reached `after_stop`, because the run
/// took longer than the stop timeout (and ended on its own later).
fn stop_abandoned(plan: &Plan, entry: &Entry, index: usize) -> bool {
    !entry.abandoned.is_empty()
        || (matches!(plan.services[index].kind, Kind::Worker(_))
            && entry.told_to_stop
            && entry.count(Call::Stopping).entered == 1
            && entry.count(Call::AfterStop).entered == 0)
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

/// Promises 2 and 3: every service that started is stopped exactly once
/// (its `stopping` hook, `stop` or `after_stop`, `stopped` hook); one that
/// never started is never stopped; nothing of the host runs once it has
/// stopped.
fn stopped_once(plan: &Plan, seen: &Observed, problems: &mut Problems) {
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

/// The `restarting` events of `service`, in order: the attempt and the
/// event's place among all events.
fn restarting(seen: &Observed, service: &str) -> Vec<(u32, usize)> {
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
fn failed_runs(entry: &Entry) -> impl Iterator<Item = Instant> + '_ {
    entry.runs.iter().filter_map(|run| match run.ended {
        Some((at, End::Failed)) => Some(at),
        _ => None,
    })
}

/// Promises 4 and 5: no service restarts more often than its policy's
/// limit, and no restart begins once the stop was requested.
fn restarts(plan: &Plan, seen: &Observed, problems: &mut Problems) {
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
