//! What supervision costs (supervision issue, item 11): every background
//! service's `execute` runs under a supervisor, and periodic services run a
//! schedule loop. Three measurements, each with a target:
//!
//! 1. **A service that never restarts** ([`idle`]): N = 1 000 and 10 000
//!    idle services built, started and stopped by a host with the defaults,
//!    in this checkout against an earlier commit (`HOST_BENCH_BASELINE`, a
//!    checkout of the commit before supervision): the same timing binary
//!    (`src/bin/supervision-process.rs`) built against each, whole processes
//!    alternated, instructions counted with callgrind beside the times.
//!    Target: start, stop and memory per service within 1.2x of the
//!    baseline.
//! 2. **A restart** ([`restart`]): a service that fails at once, restarted
//!    with a zero backoff and no limit, against a raw tokio loop that
//!    respawns a failing task. Target: at most 2x the raw respawn.
//! 3. **A periodic service's lateness** ([`lateness`]): every 10 ms, each
//!    run's start minus its scheduled time, against a plain
//!    `tokio::time::interval`'s, alternated. Target: p50 and p99 within
//!    1.2x.
//!
//! The restart and lateness measurements run in child processes (this
//! binary re-executed with `--child`), because the host's default
//! subscriber is installed once per process.

#[path = "supervision/baseline.rs"]
mod baseline;
#[path = "supervision/callgrind.rs"]
mod callgrind;
#[path = "common/child.rs"]
mod child;
mod common;
#[path = "supervision/idle.rs"]
mod idle;
#[path = "supervision/lateness.rs"]
mod lateness;
#[path = "supervision/restart.rs"]
mod restart;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use child::run_child;
use common::verdict;

/// One target's line for the summary at the end: what, measured, verdict.
pub(crate) struct Verdict {
    /// What the target asks.
    pub(crate) target: String,
    /// The measured figure, as printed.
    pub(crate) measured: String,
    /// Whether it was met.
    pub(crate) pass: bool,
}

/// `10 000`, with a narrow no-break space between thousands.
pub(crate) fn thousands(n: impl std::fmt::Display) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(digit);
    }
    out
}

/// `#[tokio::main]`, written out: the child's thread drives everything from
/// `block_on` on a multi-thread runtime.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A child process: `--child restart ...` or `--child lateness ...`.
fn child(args: &[String]) -> ExitCode {
    match args.first().map(String::as_str) {
        Some("restart") => restart::child(&args[1..]),
        Some("lateness") => lateness::child(&args[1..]),
        _ => {
            eprintln!(
                "usage: supervision --child restart defaults|logging-off <restarts> <reps>\n       \
                 supervision --child lateness <ticks> <block>"
            );
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    if let Some(args) = common::child_args() {
        return child(&args);
    }
    let kind = common::run_kind();
    let began = Instant::now();
    let mut out = common::header("What supervision costs (benches/supervision.rs)");
    let mut verdicts = Vec::new();
    for section in [idle::run, restart::run, lateness::run] {
        let _ = writeln!(out);
        section(kind, &mut out, &mut verdicts);
    }
    let _ = writeln!(out, "\n#### Targets\n");
    let _ = writeln!(out, "| target | measured | verdict |");
    let _ = writeln!(out, "|---|---:|---|");
    for line in &verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            line.target,
            line.measured,
            verdict(line.pass)
        );
    }
    let _ = writeln!(out, "\n{}", common::footer(began));
    println!("{out}");
    ExitCode::SUCCESS
}
