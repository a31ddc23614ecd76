//! What every bench shares: the machine header, medians, formatting, and the
//! switch between a full run (`cargo bench`), a quick run (`cargo bench`
//! with `HOST_BENCH_QUICK=1`, what `just bench-quick` does) and a smoke run
//! (`cargo test --benches`, clippy's build).

use std::process::Command;

/// What kind of run this is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RunKind {
    /// Not `cargo bench`: one small case each, to check that every case works.
    Smoke,
    /// `cargo bench` with `HOST_BENCH_QUICK` set: seconds per bench, fewer
    /// and shorter repetitions, the same ratios printed. Indicative only.
    Quick,
    /// `cargo bench`: the figures for `docs/benchmarks.md`.
    Full,
}

/// The kind of this run: see [`RunKind`].
pub(crate) fn run_kind() -> RunKind {
    if !is_bench_run() {
        RunKind::Smoke
    } else if std::env::var_os("HOST_BENCH_QUICK").is_some_and(|value| !value.is_empty()) {
        RunKind::Quick
    } else {
        RunKind::Full
    }
}

/// The workspace's profile settings for benches, as compiled in (the
/// `[profile.*]` sections of the top-level `Cargo.toml`), on one line.
pub(crate) fn profile() -> String {
    let manifest = include_str!("../../../Cargo.toml");
    let mut settings = Vec::new();
    let mut section: Option<&str> = None;
    for line in manifest.lines() {
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix("[profile.")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = Some(name);
        } else if line.starts_with('[') {
            section = None;
        } else if let Some(name) = section
            && !line.is_empty()
            && !line.starts_with('#')
        {
            settings.push(format!("{name}.{line}"));
        }
    }
    let optimized = if cfg!(debug_assertions) {
        "debug assertions ON (not a release build)"
    } else {
        "release (opt-level 3, no debug assertions)"
    };
    if settings.is_empty() {
        format!("{optimized}; no `[profile.*]` overrides")
    } else {
        format!("{optimized}; Cargo.toml: `{}`", settings.join("`, `"))
    }
}

/// The load average now (1, 5, 15 min), as `/proc/loadavg` gives it.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|line| {
            let fields: Vec<&str> = line.split_whitespace().take(3).collect();
            (fields.len() == 3).then(|| fields.join(" "))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The line that closes a bench's output: its time and the load average at
/// its end (the header has the one at its beginning).
pub(crate) fn footer(began: std::time::Instant) -> String {
    format!(
        "Total time of this bench: {:.1} s; load average at its end (1, 5, 15 min): {}.",
        began.elapsed().as_secs_f64(),
        load_average()
    )
}

/// `cargo bench` passes `--bench` to a `harness = false` target; any other
/// way of running it (`cargo test --benches`, by hand) gets a quick smoke
/// run that only checks that every case works.
pub(crate) fn is_bench_run() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// The arguments after `--child`, when this process is a child started by
/// the bench itself (`current_exe() --child ...`).
pub(crate) fn child_args() -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|arg| arg == "--child")?;
    Some(args[at + 1..].to_vec())
}

/// The lines that head every table: the date, the machine, the compiler.
pub(crate) fn header(title: &str) -> String {
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]);
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let rustc = command_output("rustc", &["--version"]);
    let load = load_average();
    let run = match run_kind() {
        RunKind::Full => "cargo bench (full)",
        RunKind::Quick => {
            "cargo bench, QUICK mode (`HOST_BENCH_QUICK`): indicative, not for the docs"
        }
        RunKind::Smoke => "SMOKE RUN (not a measurement)",
    };
    let profile = profile();
    format!(
        "### {title}\n\n\
         - date: {date}\n\
         - machine: {cpus} CPUs (nproc), {cpu}\n\
         - compiler: {rustc}\n\
         - profile: {profile}\n\
         - load average when the bench began (1, 5, 15 min): {load}\n\
         - run: {run}\n"
    )
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

/// `pass` or `FAIL`, for the targets column.
pub(crate) fn verdict(pass: bool) -> &'static str {
    if pass { "pass" } else { "**FAIL**" }
}

/// A ratio as `1.23x`.
pub(crate) fn ratio(value: f64) -> String {
    format!("{value:.2}x")
}
