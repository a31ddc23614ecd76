//! What supervision adds to a service that never restarts: N idle services
//! built, started and stopped by a host with the defaults, in this checkout
//! against a baseline checkout (`HOST_BENCH_BASELINE`; see `baseline.rs`
//! for how the two binaries are built alike).
//!
//! Timings: whole processes of the two binaries alternated (baseline, this
//! checkout; then the other way round), several repetitions in each.
//! Instructions: one process of each under callgrind (`callgrind.rs`), a
//! count per phase. On a machine shared with other work the instruction
//! counts are the figure to judge; the times are indicative.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::baseline::{self, Binaries};
use super::callgrind::{self, Counted, Instructions};
use crate::common::{RunKind, median, ratio, verdict};
use crate::{Verdict, thousands};

/// The target of every ratio: this checkout / the baseline.
const TARGET: f64 = 1.2;

/// One N: how many processes of each binary, and repetitions in each (the
/// first is the cold one).
#[derive(Clone, Copy, Debug)]
struct Size {
    n: usize,
    processes: usize,
    reps: usize,
}

/// A full run: enough processes for stable medians of the times.
const FULL: [Size; 2] = [
    Size {
        n: 1_000,
        processes: 10,
        reps: 6,
    },
    Size {
        n: 10_000,
        processes: 8,
        reps: 4,
    },
];

/// Quick mode: seconds.
const QUICK: [Size; 2] = [
    Size {
        n: 1_000,
        processes: 3,
        reps: 3,
    },
    Size {
        n: 10_000,
        processes: 2,
        reps: 3,
    },
];

/// A smoke run: that every part works.
const SMOKE: [Size; 1] = [Size {
    n: 100,
    processes: 1,
    reps: 2,
}];

/// A timed phase of one repetition.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Build,
    Start,
    Stop,
    /// What a process pays to start: registering, `build()`, `start()`.
    BuildAndStart,
}

/// What one repetition measured.
#[derive(Clone, Copy, Debug)]
struct Run {
    build: Duration,
    start: Duration,
    stop: Duration,
}

impl Run {
    /// The time of `phase`, in ms.
    fn ms(&self, phase: Phase) -> f64 {
        let value = match phase {
            Phase::Build => self.build,
            Phase::Start => self.start,
            Phase::Stop => self.stop,
            Phase::BuildAndStart => self.build + self.start,
        };
        value.as_secs_f64() * 1e3
    }
}

/// What one process of the timing binary reported.
#[derive(Debug)]
struct Process {
    /// In repetition order: the first is the cold one.
    runs: Vec<Run>,
    /// Peak RSS growth per service, bytes (first repetition).
    memory: f64,
}

impl Process {
    /// Runs `exe` for `reps` repetitions at `n`.
    fn run(exe: &Path, n: usize, reps: usize) -> Self {
        let output = Command::new(exe)
            .args([n.to_string(), reps.to_string()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("the bench can run the timing binary");
        assert!(
            output.status.success(),
            "`{} {n} {reps}` failed: {} (run it by hand to see its standard error)",
            exe.display(),
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut runs = Vec::new();
        let mut memory = None;
        for line in stdout.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["run", _rep, build, start, stop] => {
                    let nanos = |field: &str| field.parse().ok().map(Duration::from_nanos);
                    if let (Some(build), Some(start), Some(stop)) =
                        (nanos(build), nanos(start), nanos(stop))
                    {
                        runs.push(Run { build, start, stop });
                    }
                }
                ["memory", before, peak] => {
                    if let (Ok(before), Ok(peak)) = (before.parse::<u64>(), peak.parse::<u64>()) {
                        memory = Some(peak.saturating_sub(before) as f64 * 1024.0 / n as f64);
                    }
                }
                _ => {}
            }
        }
        assert_eq!(
            runs.len(),
            reps,
            "`{}` reported every repetition",
            exe.display()
        );
        Self {
            runs,
            memory: memory.expect("the timing binary reports its memory"),
        }
    }

    /// The median of the warm repetitions (every one if there is one).
    fn warm(&self, phase: Phase) -> f64 {
        let warm = if self.runs.len() > 1 {
            &self.runs[1..]
        } else {
            &self.runs[..]
        };
        median(&warm.iter().map(|run| run.ms(phase)).collect::<Vec<_>>())
    }

    /// The first repetition's figure.
    fn cold(&self, phase: Phase) -> f64 {
        self.runs[0].ms(phase)
    }
}

/// Everything measured at one N for one side.
#[derive(Debug, Default)]
struct Measured {
    processes: Vec<Process>,
    instructions: Option<Instructions>,
}

impl Measured {
    /// The median over the processes of `pick`.
    fn median_of(&self, pick: impl Fn(&Process) -> f64) -> f64 {
        median(&self.processes.iter().map(pick).collect::<Vec<_>>())
    }

    /// The smallest and the largest memory figure over the processes.
    fn memory_range(&self) -> String {
        let values = self.processes.iter().map(|process| process.memory);
        let min = values.clone().fold(f64::INFINITY, f64::min);
        let max = values.fold(f64::NEG_INFINITY, f64::max);
        format!("{min:.0}-{max:.0} B")
    }
}

/// Runs the comparison (or this checkout alone) and writes its section.
pub(crate) fn run(kind: RunKind, out: &mut String, verdicts: &mut Vec<Verdict>) {
    let sizes: &[Size] = match kind {
        RunKind::Full => &FULL,
        RunKind::Quick => &QUICK,
        RunKind::Smoke => &SMOKE,
    };
    let _ = writeln!(
        out,
        "#### A service that never restarts: this checkout against {}\n",
        baseline::COMMIT
    );
    let binaries = Binaries::get(kind, out);
    let callgrind = (kind != RunKind::Smoke && callgrind::available()).then(|| {
        binaries
            .current
            .parent()
            .map_or_else(std::env::temp_dir, Path::to_path_buf)
            .join("callgrind")
    });
    if callgrind.is_none() && kind != RunKind::Smoke {
        let _ = writeln!(
            out,
            "`valgrind` is not on the `PATH`: no instruction counts (`apt-get install -y \
             valgrind`).\n"
        );
    }
    let _ = writeln!(
        out,
        "N idle background services on `Host::builder()` with the defaults (subscriber at \
         info, signals on), sequential start and stop. Build = registering the N instances \
         and `build()`; start = until every service has been polled once. Processes of the \
         two binaries alternated, the order swapped each round; in each, the first \
         repetition is the cold one and the median of the others its warm figure; the times \
         below are the medians over the processes. Memory: `VmHWM` once all N had started, \
         less `VmRSS` before building, divided by N (first repetition of each process; the \
         median over them). Instructions (`valgrind --tool=callgrind`, every thread, one \
         process of each binary, one repetition): per phase, divided by N; drop = dropping \
         the stopped host.\n"
    );
    let mut memory = Vec::new();
    for &size in sizes {
        let [baseline, current] = measure(&binaries, size, callgrind.as_deref());
        let baseline = binaries.baseline.is_some().then_some(&baseline);
        table(out, &binaries, size, baseline, &current, verdicts);
        let median = |side: &Measured| side.median_of(|process| process.memory);
        memory.push((size.n, baseline.map(median), median(&current)));
    }
    marginal_memory(out, &memory);
    if let Some(directory) = callgrind {
        let _ = writeln!(
            out,
            "Callgrind's files: `{}/callgrind.<baseline|current>.<N>.<2|3|4|5>` for the build, \
             start, stop and drop (`callgrind_annotate --inclusive=yes <file>`).\n",
            directory.display()
        );
    }
}

/// The peak RSS each service adds, between the smallest and the largest N:
/// per service without what a process pays once whatever N (the code run
/// for the first time, the runtime's and the allocator's own), which the
/// figure per service at one N includes. For reference, not a target.
fn marginal_memory(out: &mut String, memory: &[(usize, Option<f64>, f64)]) {
    let (Some(&(small, small_base, small_now)), Some(&(large, large_base, large_now))) =
        (memory.first(), memory.last())
    else {
        return;
    };
    if large <= small {
        return;
    }
    let added = |at_small: f64, at_large: f64| {
        (at_large * large as f64 - at_small * small as f64) / (large - small) as f64
    };
    let now = added(small_now, large_now);
    let base = small_base.zip(large_base).map(|(s, l)| added(s, l));
    let _ = writeln!(
        out,
        "Peak RSS per service added, from N = {} to N = {} (what a process pays once, \
         whatever N, left out; for reference, not a target): baseline {}, this checkout {:.0} \
         B{}.\n",
        thousands(small),
        thousands(large),
        base.map_or_else(|| "—".to_owned(), |base| format!("{base:.0} B")),
        now,
        base.map_or_else(String::new, |base| format!(" ({})", ratio(now / base)))
    );
}

/// Every process of `size`, alternated; then callgrind, if asked. Indexed
/// by `baseline::Side`.
fn measure(binaries: &Binaries, size: Size, callgrind: Option<&Path>) -> [Measured; 2] {
    let mut sides = [Measured::default(), Measured::default()];
    let mut order = binaries.in_order();
    for _ in 0..size.processes {
        for &(side, exe) in &order {
            sides[side as usize]
                .processes
                .push(Process::run(exe, size.n, size.reps));
        }
        order.reverse();
    }
    if let Some(directory) = callgrind {
        for &(side, exe) in &order {
            sides[side as usize].instructions = callgrind::count(exe, size.n, directory, side);
        }
    }
    sides
}

/// The rows of one N's table, and the ratios judged.
struct Rows<'a> {
    out: &'a mut String,
    judged: Vec<(&'static str, f64)>,
}

impl Rows<'_> {
    /// One row: the baseline's figure (when compared) and this checkout's;
    /// `judged` names the target when the row has one.
    fn row(&mut self, name: &str, base: Option<f64>, now: f64, judged: Option<&'static str>) {
        let decimals = if now >= 100.0 { 0 } else { 3 };
        let (base_text, ratio_text, verdict_text) = match base {
            Some(base) => {
                let value = now / base;
                let verdict_text = match judged {
                    Some(target) => {
                        self.judged.push((target, value));
                        verdict(value <= TARGET)
                    }
                    None => "—",
                };
                (format!("{base:.decimals$}"), ratio(value), verdict_text)
            }
            None => ("—".to_owned(), "—".to_owned(), "—"),
        };
        let name = match judged {
            Some(_) => format!("**{name}**"),
            None => name.to_owned(),
        };
        let _ = writeln!(
            self.out,
            "| {name} | {base_text} | {now:.decimals$} | {ratio_text} | {verdict_text} |"
        );
    }
}

/// The instruction rows: the phases summed, and the target's name if judged.
const INSTRUCTION_ROWS: [(&str, &[Counted], Option<&str>); 5] = [
    ("instructions per service: build", &[Counted::Build], None),
    ("instructions per service: start", &[Counted::Start], None),
    (
        "instructions per service: build + start",
        &[Counted::Build, Counted::Start],
        Some("instructions per service, build + start"),
    ),
    (
        "instructions per service: stop",
        &[Counted::Stop],
        Some("instructions per service, stop"),
    ),
    ("instructions per service: drop", &[Counted::Drop], None),
];

/// The timing rows: the phase, and the target's name if judged.
const TIME_ROWS: [(&str, Phase, Option<&str>); 4] = [
    ("build, warm (ms)", Phase::Build, None),
    ("start, warm (ms)", Phase::Start, None),
    (
        "build + start, warm (ms)",
        Phase::BuildAndStart,
        Some("time, build + start (indicative)"),
    ),
    (
        "stop, warm (ms)",
        Phase::Stop,
        Some("time, stop (indicative)"),
    ),
];

/// One N's table; its judged ratios go to `verdicts`.
fn table(
    out: &mut String,
    binaries: &Binaries,
    size: Size,
    baseline: Option<&Measured>,
    current: &Measured,
    verdicts: &mut Vec<Verdict>,
) {
    let n = size.n;
    let baseline_name = binaries
        .baseline
        .as_ref()
        .map_or(baseline::COMMIT, |(_, commit)| commit.as_str());
    let _ = writeln!(
        out,
        "N = {}: {} process(es) of each binary, {} repetitions in each (1 cold + {} warm).\n",
        thousands(n),
        size.processes,
        size.reps,
        size.reps - 1
    );
    let _ = writeln!(
        out,
        "| measure | baseline ({baseline_name}) | this checkout | this / baseline | target ≤ {TARGET}x |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|");
    let mut rows = Rows {
        out,
        judged: Vec::new(),
    };
    if let Some(now) = current.instructions {
        let base = baseline.and_then(|side| side.instructions);
        for (name, phases, judged) in INSTRUCTION_ROWS {
            let base = base.map(|base| base.per_service(n, phases));
            rows.row(name, base, now.per_service(n, phases), judged);
        }
    }
    for (name, phase, judged) in TIME_ROWS {
        rows.row(
            name,
            baseline.map(|side| side.median_of(|process| process.warm(phase))),
            current.median_of(|process| process.warm(phase)),
            judged,
        );
    }
    rows.row(
        "build + start, cold (ms)",
        baseline.map(|side| side.median_of(|process| process.cold(Phase::BuildAndStart))),
        current.median_of(|process| process.cold(Phase::BuildAndStart)),
        None,
    );
    rows.row(
        "peak RSS per service (B)",
        baseline.map(|side| side.median_of(|process| process.memory)),
        current.median_of(|process| process.memory),
        Some("peak RSS per service"),
    );
    let judged = rows.judged;
    let _ = writeln!(
        out,
        "\nPeak RSS per service, min-max over the processes: baseline {}, this checkout {}.\n",
        baseline.map_or_else(|| "—".to_owned(), Measured::memory_range),
        current.memory_range()
    );
    for (name, value) in judged {
        verdicts.push(Verdict {
            target: format!(
                "N = {}, {name}: ≤ {TARGET}x {}",
                thousands(n),
                baseline::COMMIT
            ),
            measured: ratio(value),
            pass: value <= TARGET,
        });
    }
}
