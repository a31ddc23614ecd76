//! Fault injection: hosts of 100 services, drawn at random from a seed,
//! where random ones panic, hang past their stop timeout, fail to start,
//! miss heartbeats or fail again and again, under random restart policies,
//! timeouts, dependencies and host options. Each host starts, runs a while
//! and stops on tokio's paused clock, and every run must keep the host's
//! promises:
//!
//! 1. the start and the stop end within their timeouts and the documented
//!    time past them, with the documented exit code, naming what timed out
//!    and what failed;
//! 2. every service that started is stopped exactly once;
//! 3. no service that never started is stopped;
//! 4. no service restarts more often than its policy's limit;
//! 5. no restart begins once the stop was requested.
//!
//! `HOST_FAULT_SEEDS` sets the seeds (a count, `100..200`, or `3,17,42`;
//! default 20), `HOST_FAULT_SEED=17` reruns one, `HOST_FAULT_LOG=debug`
//! shows the host's log lines and `HOST_FAULT_PLAN=1` the host a seed
//! draws (with `--nocapture`). A failure names its seed and the command
//! that replays it. The bugs the suite found (fixed) are tested in
//! `faults/found.rs`; `faults/known.rs` recognises their patterns, so that a
//! failure says when one is back. `faults_process.rs` covers
//! what needs a thread that really blocks. See docs/testing.md.

#[path = "faults/check.rs"]
mod check;
#[path = "faults/draw.rs"]
mod draw;
#[path = "faults/exit_code.rs"]
mod exit_code;
#[path = "faults/found.rs"]
mod found;
#[path = "faults/known.rs"]
mod known;
#[path = "faults/ledger.rs"]
mod ledger;
#[path = "faults/plan.rs"]
mod plan;
#[path = "faults/restarts.rs"]
mod restarts;
#[path = "faults/seeds.rs"]
mod seeds;
#[path = "faults/services.rs"]
mod services;
#[path = "faults/stops.rs"]
mod stops;

use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use check::{Observed, Problem, Stopped, check};
use host_testing::TestHost;
use ledger::{End, Ledger};
use plan::Plan;
use tokio::time::Instant;
use tracing::level_filters::LevelFilter;

/// How many services each host has.
const SERVICES: usize = 100;

/// How long the test waits, once the host has stopped, for anything of it
/// that still runs to show itself (on the paused clock: at once).
const AFTERWARDS: Duration = Duration::from_secs(3600);

/// Every seed's host keeps the promises, or the failure lists the seeds
/// that broke one and the first one's report.
#[test]
fn random_faults_never_break_the_hosts_promises() {
    quiet_deliberate_panics();
    let seeds = seeds::seeds("HOST_FAULT_SEEDS", 20);
    let mut failed = Vec::new();
    for &seed in &seeds {
        if let Some(report) = run_seed(seed) {
            eprintln!("{report}");
            failed.push((seed, report));
        }
    }
    if let Some((_, first)) = failed.first() {
        let names: Vec<String> = failed.iter().map(|(seed, _)| seed.to_string()).collect();
        panic!(
            "{} of {} seeds broke a promise: {}\nthe first:\n{first}",
            failed.len(),
            seeds.len(),
            names.join(", ")
        );
    }
}

/// Runs the host of `seed` on a paused clock of its own and checks it: the
/// report of every broken promise, each line naming the seed (and the bug
/// found before, when it is that one come back).
fn run_seed(seed: u64) -> Option<String> {
    let plan = Plan::draw(seed, SERVICES);
    if std::env::var_os("HOST_FAULT_PLAN").is_some() {
        println!("the host of seed {seed}:\n{plan}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime for the test");
    // The host draws its restarts' jitter from this thread's generator (the
    // runtime runs every task here): seeded too, a seed replays exactly.
    fastrand::seed(seed);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(drive(&plan))));
    drop(runtime);
    let problems = match outcome {
        Ok(seen) => {
            println!("seed {seed}: {}", summary(&plan, &seen));
            check(&plan, &seen)
        }
        Err(panic) => vec![Problem {
            text: format!("panicked: {}", panic_message(&*panic)),
            known: None,
        }],
    };
    let failing: Vec<String> = problems
        .iter()
        .map(|problem| match problem.known {
            Some(bug) => format!(
                "seed {seed}: {} (the return of a fixed bug: {bug})",
                problem.text
            ),
            None => format!("seed {seed}: {}", problem.text),
        })
        .collect();
    if failing.is_empty() {
        return None;
    }
    let report = format!(
        "{}\nreplay it: HOST_FAULT_SEED={seed} HOST_FAULT_LOG=debug cargo test -p host-core \
         --test faults -- --nocapture\nthe host of seed {seed}:\n{plan}",
        failing.join("\n")
    );
    Some(report)
}

/// Builds, starts, runs and stops the host of `plan`; what it saw.
async fn drive(plan: &Plan) -> Observed {
    let seed = plan.seed;
    let ledger = Ledger::new(plan.services.len());
    let mut builder = TestHost::builder();
    let level = log_level();
    builder.default_log_level(level).log_level("host::", level);
    let options = plan.clone();
    builder.configure_host_options(move |o| {
        o.shutdown_timeout = options.shutdown_timeout;
        o.startup_timeout = Some(options.startup_timeout);
        o.services_start_concurrently = options.start_concurrently;
        o.services_stop_concurrently = options.stop_concurrently;
        o.background_service_failure = options.on_failure;
    });
    services::register(&mut builder, plan, &ledger);
    let mut host = builder
        .build()
        .unwrap_or_else(|error| panic!("seed {seed}: the host does not build: {error}"));
    let lifetime = host.host().lifetime().clone();

    let origin = Instant::now();
    let start = host.start().await;
    let start_took = origin.elapsed();
    let mut stop = None;
    let mut events_before_stop = host.events().len();
    if start.is_ok() {
        let running = Instant::now();
        let by_the_host = tokio::select! {
            biased;
            () = lifetime.stop_requested() => true,
            () = tokio::time::sleep(plan.run_for) => false,
        };
        let after = running.elapsed();
        // As `run()` does: a stop request, then the stop.
        ledger.stop_requested();
        events_before_stop = host.events().len();
        lifetime.stop_application();
        let stopping = Instant::now();
        let result = host.host_mut().stop().await;
        stop = Some(Stopped {
            result,
            took: stopping.elapsed(),
            by_the_host,
            after,
        });
    }
    ledger.over();
    tokio::time::sleep(AFTERWARDS).await;
    Observed {
        origin,
        start,
        start_took,
        stop,
        events: host.events(),
        events_before_stop,
        entries: ledger.snapshot(),
    }
}

/// One line on how a run went, for `--nocapture`.
fn summary(plan: &Plan, seen: &Observed) -> String {
    let runs: usize = seen.entries.iter().map(|entry| entry.runs.len()).sum();
    let failed = seen
        .entries
        .iter()
        .flat_map(|entry| &entry.runs)
        .filter(|run| matches!(run.ended, Some((_, End::Failed))))
        .count();
    let restarts = seen
        .events
        .iter()
        .filter(|event| matches!(event.to, host_core::ServiceState::Restarting { .. }))
        .count();
    let outcome = match (&seen.start, &seen.stop) {
        (Err(error), _) => format!(
            "start failed after {:?}: {}",
            seen.start_took,
            first_line(error)
        ),
        (Ok(()), Some(stop)) => format!(
            "stop {} after {:?}, took {:?} (shutdown timeout {:?}), exit {}",
            if stop.by_the_host {
                "asked by a failure"
            } else {
                "asked by the test"
            },
            stop.after,
            stop.took,
            plan.shutdown_timeout,
            stop.result
                .as_ref()
                .err()
                .map_or(0, host_core::HostError::exit_code)
        ),
        (Ok(()), None) => "never stopped".to_owned(),
    };
    format!("{outcome}; {runs} runs, {failed} failed, {restarts} restarts")
}

/// The first line of an error, for the summary.
fn first_line(error: &host_core::HostError) -> String {
    error.to_string().lines().next().unwrap_or("").to_owned()
}

/// `HOST_FAULT_LOG` (`debug`, `warn`, ...), or nothing: a hundred
/// services log thousands of lines, worth reading for one seed only.
fn log_level() -> LevelFilter {
    std::env::var("HOST_FAULT_LOG")
        .ok()
        .and_then(|level| LevelFilter::from_str(&level).ok())
        .unwrap_or(LevelFilter::OFF)
}

/// What a panic said.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(not a string)".to_owned())
}

/// Leaves out the panic messages of the services' deliberate panics (the
/// host catches them; hundreds would bury a real one).
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !panic_message(info.payload()).contains("on purpose") {
                default(info);
            }
        }));
    });
}
