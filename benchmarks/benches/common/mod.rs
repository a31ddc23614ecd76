//! What every bench shares: the machine header, medians, formatting, and the
//! switch between a real run (`cargo bench`) and a smoke run (`cargo test
//! --benches`, clippy's build).

use std::process::Command;

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
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|line| {
            let fields: Vec<&str> = line.split_whitespace().take(3).collect();
            (fields.len() == 3).then(|| fields.join(" "))
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let profile = if is_bench_run() {
        "cargo bench (release)"
    } else {
        "SMOKE RUN (not a measurement)"
    };
    format!(
        "### {title}\n\n\
         - date: {date}\n\
         - machine: {cpus} CPUs (nproc), {cpu}\n\
         - compiler: {rustc}\n\
         - load average when the bench began (1, 5, 15 min): {load}\n\
         - run: {profile}\n"
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
