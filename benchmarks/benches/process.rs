//! A whole process (issue 2, section 5; method of issue 11): from `exec` to
//! exit, a host with one background service beside the same work on bare
//! tokio, timed from spawn to exit (wall clock).
//!
//! Two binaries of this package (`[[bin]]` targets with `test = false`, so
//! `cargo test --workspace` never builds them; cargo builds them for the
//! benches and gives their paths as `CARGO_BIN_EXE_<name>`):
//!
//! - `bare-tokio` (`src/bin/bare-tokio.rs`): the minimal binary, tokio and
//!   tokio-util only. `#[tokio::main]`'s multi-thread runtime spawns one
//!   task that asks the program to stop on its first poll and then idles on
//!   its token; `main` sees the request, cancels the task, awaits it and
//!   returns.
//! - `host-process` (`src/bin/host-process.rs`), a user's host binary:
//!   - `host`: `#[tokio::main]`, `Host::builder()` with its defaults (the
//!     default log subscriber on standard error, signal handlers, the
//!     environment read), one background service that calls
//!     `ctx.lifetime().stop_application()` on its first poll and then idles
//!     on its stopping token, and `builder.run().await` as the exit code;
//!   - `tokio`: the bare tokio work of `bare-tokio`, inside this binary;
//!   - `blocking`: the host through `HostBuilder::run_blocking` from a plain
//!     `fn main` (for reference; no target);
//!   - `quiet`: `host` with `default_logging(false)` and
//!     `handle_signals(false)` (for reference; no target): what those two
//!     defaults cost a process.
//!
//! The children's standard error goes to /dev/null (the host's log lines
//! are still formatted and written). After a warm-up, the modes alternate,
//! the order reversed every other round, so that any drift of the machine
//! hits them alike.

mod common;
#[path = "common/process.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "this bench only times binaries; configuration.rs uses the rest"
)]
mod contenders;

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use common::{RunKind, median, ratio, verdict};
use contenders::time_exe;

/// The minimal bare tokio binary.
const BARE_TOKIO: &str = env!("CARGO_BIN_EXE_bare-tokio");

/// The user's host binary, with its modes.
const HOST_PROCESS: &str = env!("CARGO_BIN_EXE_host-process");

/// One contender: its binary, its argument, its label.
struct Mode {
    exe: &'static str,
    arg: Option<&'static str>,
    label: &'static str,
}

const MODES: [Mode; 5] = [
    Mode {
        exe: BARE_TOKIO,
        arg: None,
        label: "bare tokio, minimal binary (`bare-tokio`)",
    },
    Mode {
        exe: HOST_PROCESS,
        arg: Some("tokio"),
        label: "bare tokio inside the host's binary (`host-process tokio`)",
    },
    Mode {
        exe: HOST_PROCESS,
        arg: Some("host"),
        label: "host, `#[tokio::main]` + `builder.run()` (`host-process host`)",
    },
    Mode {
        exe: HOST_PROCESS,
        arg: Some("blocking"),
        label: "host, `run_blocking()` from `fn main` (`host-process blocking`, reference)",
    },
    Mode {
        exe: HOST_PROCESS,
        arg: Some("quiet"),
        label: "host, logging and signals off (`host-process quiet`, reference)",
    },
];

/// Warm-up runs of each mode, then timed runs of each: full, quick, smoke.
/// A run takes a few ms, so even quick mode affords many: the medians of a
/// noisy machine need them.
const PLANS: [(usize, usize); 3] = [(10, 100), (3, 30), (0, 2)];

impl Mode {
    fn time_ms(&self) -> f64 {
        let args: Vec<&str> = self.arg.into_iter().collect();
        time_exe(Path::new(self.exe), &args, None).as_secs_f64() * 1e3
    }
}

/// Bytes of `path`'s file, for the table (`None` if it cannot be read).
fn file_size(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|metadata| metadata.len())
}

fn main() -> ExitCode {
    if common::child_args().is_some() {
        // The children are the package's binaries, not this one.
        eprintln!("process: no `--child` modes; it times `bare-tokio` and `host-process`");
        return ExitCode::from(2);
    }
    let (warmup, runs) = match common::run_kind() {
        RunKind::Full => PLANS[0],
        RunKind::Quick => PLANS[1],
        RunKind::Smoke => PLANS[2],
    };

    let mut out = common::header("A whole process: start, stop, exit (benches/process.rs)");
    let began = Instant::now();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    // The very first run of each mode, before any warm-up: the cold one.
    let cold: Vec<f64> = MODES.iter().map(Mode::time_ms).collect();
    for _ in 0..warmup {
        for mode in &MODES {
            mode.time_ms();
        }
    }
    let mut order: Vec<usize> = (0..MODES.len()).collect();
    for _ in 0..runs {
        for &index in &order {
            times[index].push(MODES[index].time_ms());
        }
        order.reverse();
    }

    let _ = writeln!(
        out,
        "\n{runs} timed runs of each mode, alternating (the order reversed every round), after \
         {warmup} warm-up runs each; wall clock from spawn to exit; the children's standard \
         error to /dev/null (the host's log lines are still formatted and written).\n"
    );
    let _ = writeln!(
        out,
        "| process | binary size | cold (ms) | warm median (ms) | warm min (ms) | warm max (ms) | vs minimal bare tokio | vs bare tokio in the host's binary |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let minimal = median(&times[0]);
    let same_binary = median(&times[1]);
    for (index, mode) in MODES.iter().enumerate() {
        let warm = &times[index];
        let min = warm.iter().copied().fold(f64::INFINITY, f64::min);
        let max = warm.iter().copied().fold(0.0, f64::max);
        let size = file_size(mode.exe).map_or_else(
            || "?".to_owned(),
            |bytes| format!("{:.1} MB", bytes as f64 / 1e6),
        );
        let _ = writeln!(
            out,
            "| {} | {size} | {:.2} | {:.2} | {min:.2} | {max:.2} | {} | {} |",
            mode.label,
            cold[index],
            median(warm),
            ratio(median(warm) / minimal),
            ratio(median(warm) / same_binary),
        );
    }
    let host = median(&times[2]);
    let _ = writeln!(out, "\n| target (warm medians) | measured | verdict |");
    let _ = writeln!(out, "|---|---:|---|");
    let mut target = |name: &str, value: f64, pass: bool| {
        let _ = writeln!(out, "| {name} | {} | {} |", ratio(value), verdict(pass));
    };
    let value = host / same_binary;
    target(
        "host ≤ 1.2x the same work on bare tokio in the same binary",
        value,
        value <= 1.2,
    );
    let value = host / minimal;
    target(
        "host ≤ 1.3x the minimal bare tokio binary",
        value,
        value <= 1.3,
    );
    let _ = writeln!(out, "\n{}", common::footer(began));
    println!("{out}");
    ExitCode::SUCCESS
}
