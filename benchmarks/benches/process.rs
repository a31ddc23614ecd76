//! A whole process (issue 2, section 5): from `exec` to exit, a host with one
//! background service beside a bare tokio program doing the same.
//!
//! The bench re-executes its own binary with `--child <mode>` and times each
//! child from spawn to exit (wall clock). The modes:
//!
//! - `tokio`: `#[tokio::main]`'s multi-thread runtime spawns one task that
//!   asks the program to stop on its first poll and then idles on its token;
//!   `main` sees the request, cancels the task, awaits it and returns.
//! - `host`: the same as a user writes it with the host: `#[tokio::main]`,
//!   `Host::builder()` with its defaults (the default log subscriber on
//!   standard error, signal handlers, the environment read), one background
//!   service that calls `ctx.lifetime().stop_application()` on its first
//!   poll and then idles on its stopping token, and `builder.run().await`
//!   returned as the exit code.
//! - `host-blocking`: the same through `HostBuilder::run_blocking` from a
//!   plain `fn main` (for reference; no target).
//!
//! The children's standard error goes to /dev/null (the host's log lines
//! are still formatted and written). After a warm-up, the modes alternate so
//! that any drift of the machine hits them alike.

mod common;
#[path = "common/process.rs"]
mod contenders;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use host_core::Host;

use common::{median, ratio, verdict};
use contenders::{StopAtOnce, bare_tokio, time_child, tokio_main};

const MODES: [&str; 3] = ["tokio", "host", "host-blocking"];

/// Untimed runs of each mode before the timed ones.
const WARMUP: usize = 5;

/// Timed runs of each mode (the first of which is also reported as cold).
const RUNS: usize = 30;

fn child_host() -> ExitCode {
    tokio_main(async {
        let mut builder = Host::builder();
        builder.add_hosted_service_instance(StopAtOnce);
        builder.run().await
    })
}

fn child_host_blocking() -> ExitCode {
    let mut builder = Host::builder();
    builder.add_hosted_service_instance(StopAtOnce);
    builder.run_blocking()
}

fn main() -> ExitCode {
    if let Some(args) = common::child_args() {
        return match args.first().map(String::as_str) {
            Some("tokio") => bare_tokio(),
            Some("host") => child_host(),
            Some("host-blocking") => child_host_blocking(),
            _ => {
                eprintln!("usage: process --child tokio|host|host-blocking");
                ExitCode::from(2)
            }
        };
    }
    let (warmup, runs) = if common::is_bench_run() {
        (WARMUP, RUNS)
    } else {
        (0, 2)
    };

    let mut out = common::header("A whole process: start, stop, exit (benches/process.rs)");
    let began = Instant::now();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    // The very first run of each mode, before any warm-up: the cold one.
    let cold: Vec<f64> = MODES
        .iter()
        .map(|mode| time_child(mode, None).as_secs_f64() * 1e3)
        .collect();
    for _ in 0..warmup {
        for mode in MODES {
            time_child(mode, None);
        }
    }
    for _ in 0..runs {
        for (index, mode) in MODES.iter().enumerate() {
            times[index].push(time_child(mode, None).as_secs_f64() * 1e3);
        }
    }

    let _ = writeln!(
        out,
        "\n{runs} timed runs of each mode, alternating, after {warmup} warm-up runs each; \
         wall clock from spawn to exit.\n"
    );
    let _ = writeln!(
        out,
        "| process | cold (ms) | warm median (ms) | warm min (ms) | warm max (ms) | vs bare tokio |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let tokio_median = median(&times[0]);
    for (index, mode) in MODES.iter().enumerate() {
        let label = match *mode {
            "tokio" => "bare tokio (one task, cancelled)",
            "host" => "host, `#[tokio::main]` + `builder.run()`",
            _ => "host, `run_blocking()` from `fn main`",
        };
        let warm = &times[index];
        let min = warm.iter().copied().fold(f64::INFINITY, f64::min);
        let max = warm.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "| {label} | {:.2} | {:.2} | {min:.2} | {max:.2} | {} |",
            cold[index],
            median(warm),
            ratio(median(warm) / tokio_median),
        );
    }
    let host = median(&times[1]) / tokio_median;
    let _ = writeln!(out, "\n| target (warm medians) | measured | verdict |");
    let _ = writeln!(out, "|---|---:|---|");
    let _ = writeln!(
        out,
        "| host process ≤ 1.5x the bare tokio process | {} | {} |",
        ratio(host),
        verdict(host <= 1.5)
    );
    let _ = writeln!(
        out,
        "\nTotal time of this bench: {:.1} s.",
        began.elapsed().as_secs_f64()
    );
    println!("{out}");
    ExitCode::SUCCESS
}
