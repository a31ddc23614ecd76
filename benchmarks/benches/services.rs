//! Starting and stopping N idle background services (issue 2, section 5;
//! method of issue 11), N = 1 000, 10 000 and 100 000.
//!
//! Contenders:
//!
//! - raw tokio, a child token per task: N tasks in a `JoinSet`, each
//!   watching its own `token.child_token()`, the shape the host gives each
//!   service. **The reference for every target.**
//! - raw tokio, one shared token: the same watching clones of one token
//!   (beside the reference);
//! - tokio-graceful-shutdown: N subsystems nested in one `Toplevel`;
//! - the host, sequential (its default) and concurrent
//!   (`services_start_concurrently` and `services_stop_concurrently`), with
//!   **the defaults a user gets** (`Host::builder()`: the default subscriber
//!   at info, signal handlers on), and the same two with
//!   `default_logging(false)` beside them, for reference.
//!
//! Every service does the same: on its first poll it counts itself, then it
//! loops on `tokio::select!` of its stopping token and a 1 s sleep. *Start*
//! runs from the first call (spawning, or `host.start()`) until every
//! service has been polled once; *build + start*, the start a process pays,
//! adds the host's registering of the N instances and `build()` (the other
//! contenders have no build: tokio-graceful-shutdown's start already
//! includes its whole setup); *stop* runs from the stop request until the
//! last service has returned.
//!
//! The global subscriber is installed once per process, so the timings run
//! in two child processes per N (this binary re-executed with `--child`):
//! one where the host's default subscriber is installed (by the first host
//! build) and one where none ever is. Each child runs every contender in
//! turn, repetition by repetition, rotating the order each repetition; its
//! first repetition is the cold one, the median of the others the warm
//! figure, and every ratio is taken against the raw tokio reference of the
//! same child. Children's standard error goes to /dev/null: the host's log
//! lines are still formatted and written.
//!
//! Memory: peak RSS per idle service (`VmHWM` once all N are started, less
//! `VmRSS` before building, divided by N), each (contender, N) in a fresh
//! process of its own, one run, in rotating order across repetitions; the
//! median over the repetitions. Beside it, for reference, the same at N = 1
//! (the fixed part) and what each further service adds.

#[path = "common/child.rs"]
mod child;
mod common;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use host_core::{BackgroundService, Host, ServiceContext, ServiceError, async_trait};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_graceful_shutdown::{SubsystemBuilder, SubsystemHandle, Toplevel};
use tokio_util::sync::CancellationToken;

use child::{Logging, run_child};
use common::{RunKind, median, ratio, verdict};

/// How long an idle service sleeps between two looks at nothing.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// N, and how many repetitions (the first is the cold one) each timing
/// child runs.
const SIZES: [(usize, usize); 3] = [(1_000, 10), (10_000, 8), (100_000, 6)];

/// Quick mode: 1 cold + 2 warm repetitions (1 warm at 100 000, which
/// takes most of the time).
const QUICK_SIZES: [(usize, usize); 3] = [(1_000, 3), (10_000, 3), (100_000, 2)];

/// A smoke run (not `cargo bench`): one small N, two repetitions.
const SMOKE_SIZES: [(usize, usize); 1] = [(200, 2)];

/// Memory processes per (contender, N): full, quick, smoke.
const MEMORY_REPS: [usize; 3] = [3, 1, 1];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Contender {
    TokioChildTokens,
    TokioShared,
    GracefulShutdown,
    HostSequential,
    HostConcurrent,
}

impl Contender {
    const ALL: [Contender; 5] = [
        Contender::TokioChildTokens,
        Contender::TokioShared,
        Contender::GracefulShutdown,
        Contender::HostSequential,
        Contender::HostConcurrent,
    ];

    fn key(self) -> &'static str {
        match self {
            Contender::TokioChildTokens => "tokio-child-tokens",
            Contender::TokioShared => "tokio-shared",
            Contender::GracefulShutdown => "tgs",
            Contender::HostSequential => "host-sequential",
            Contender::HostConcurrent => "host-concurrent",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|contender| contender.key() == key)
    }

    fn is_host(self) -> bool {
        matches!(self, Contender::HostSequential | Contender::HostConcurrent)
    }

    fn label(self, logging: Logging) -> &'static str {
        match (self, logging) {
            (Contender::TokioChildTokens, _) => "raw tokio, a child token per task (reference)",
            (Contender::TokioShared, _) => "raw tokio, one shared token",
            (Contender::GracefulShutdown, _) => "tokio-graceful-shutdown 0.20",
            (Contender::HostSequential, Logging::Defaults) => "host, sequential, defaults",
            (Contender::HostConcurrent, Logging::Defaults) => "host, concurrent, defaults",
            (Contender::HostSequential, Logging::Off) => "host, sequential, logging off",
            (Contender::HostConcurrent, Logging::Off) => "host, concurrent, logging off",
        }
    }
}

/// Counts first polls and wakes the bench when all N services have been
/// polled.
struct Polled {
    count: AtomicUsize,
    target: usize,
    all: Notify,
}

impl Polled {
    fn new(target: usize) -> Arc<Self> {
        Arc::new(Self {
            count: AtomicUsize::new(0),
            target,
            all: Notify::new(),
        })
    }

    fn mark(&self) {
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            self.all.notify_one();
        }
    }

    async fn wait(&self) {
        while self.count.load(Ordering::Acquire) < self.target {
            self.all.notified().await;
        }
    }
}

/// The host's idle background service.
struct Idle {
    polled: Arc<Polled>,
}

#[async_trait]
impl BackgroundService for Idle {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        self.polled.mark();
        loop {
            tokio::select! {
                () = ctx.stopping() => return Ok(()),
                () = tokio::time::sleep(IDLE_TICK) => {}
            }
        }
    }
}

/// What one run measured.
#[derive(Clone, Copy, Default)]
struct Run {
    build: Duration,
    start: Duration,
    stop: Duration,
}

impl Run {
    fn build_and_start(&self) -> Duration {
        self.build + self.start
    }
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
#[derive(Clone, Copy)]
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

impl Memory {
    fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .unwrap_or(0)
        };
        Self {
            rss_kib: field("VmRSS:"),
            peak_kib: field("VmHWM:"),
        }
    }
}

async fn run_tokio(n: usize, child_tokens: bool, sample: bool) -> (Run, Option<Memory>) {
    let polled = Polled::new(n);
    let token = CancellationToken::new();

    let began = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let token = if child_tokens {
            token.child_token()
        } else {
            token.clone()
        };
        let polled = polled.clone();
        tasks.spawn(async move {
            polled.mark();
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(IDLE_TICK) => {}
                }
            }
        });
    }
    polled.wait().await;
    let start = began.elapsed();
    let memory = sample.then(Memory::read);

    let began = Instant::now();
    token.cancel();
    while let Some(joined) = tasks.join_next().await {
        joined.expect("an idle task never panics");
    }
    let stop = began.elapsed();
    let run = Run {
        build: Duration::ZERO,
        start,
        stop,
    };
    (run, memory)
}

async fn run_graceful_shutdown(n: usize, sample: bool) -> (Run, Option<Memory>) {
    let polled = Polled::new(n);
    let shutdown = CancellationToken::new();

    let began = Instant::now();
    let root_polled = polled.clone();
    let toplevel = Toplevel::new_with_shutdown_token(
        async move |root: &mut SubsystemHandle| {
            for _ in 0..n {
                let polled = root_polled.clone();
                root.start(SubsystemBuilder::new(
                    "idle",
                    async move |subsystem: &mut SubsystemHandle| {
                        polled.mark();
                        loop {
                            tokio::select! {
                                () = subsystem.on_shutdown_requested() => return Ok::<(), Infallible>(()),
                                () = tokio::time::sleep(IDLE_TICK) => {}
                            }
                        }
                    },
                ));
            }
        },
        shutdown.clone(),
    );
    let running = tokio::spawn(toplevel.handle_shutdown_requests(Duration::from_secs(30)));
    polled.wait().await;
    let start = began.elapsed();
    let memory = sample.then(Memory::read);

    let began = Instant::now();
    shutdown.cancel();
    running
        .await
        .expect("the toplevel never panics")
        .expect("every subsystem stops cleanly");
    let stop = began.elapsed();
    let run = Run {
        build: Duration::ZERO,
        start,
        stop,
    };
    (run, memory)
}

async fn run_host(
    n: usize,
    concurrent: bool,
    logging: Logging,
    sample: bool,
) -> (Run, Option<Memory>) {
    let polled = Polled::new(n);

    let began = Instant::now();
    let mut builder = Host::builder();
    if logging == Logging::Off {
        builder.default_logging(false);
    }
    builder.configure_host_options(|options| {
        options.services_start_concurrently = concurrent;
        options.services_stop_concurrently = concurrent;
    });
    for _ in 0..n {
        builder.add_hosted_service_instance(Idle {
            polled: polled.clone(),
        });
    }
    let mut host = builder.build().expect("the host builds");
    let build = began.elapsed();

    let began = Instant::now();
    host.start().await.expect("the host starts");
    polled.wait().await;
    let start = began.elapsed();
    let memory = sample.then(Memory::read);

    let began = Instant::now();
    host.stop().await.expect("the host stops cleanly");
    let stop = began.elapsed();
    drop(host);
    (Run { build, start, stop }, memory)
}

async fn run_once(
    contender: Contender,
    logging: Logging,
    n: usize,
    sample: bool,
) -> (Run, Option<Memory>) {
    match contender {
        Contender::TokioChildTokens => run_tokio(n, true, sample).await,
        Contender::TokioShared => run_tokio(n, false, sample).await,
        Contender::GracefulShutdown => run_graceful_shutdown(n, sample).await,
        Contender::HostSequential => run_host(n, false, logging, sample).await,
        Contender::HostConcurrent => run_host(n, true, logging, sample).await,
    }
}

/// `#[tokio::main]`, written out: the bench's thread drives everything from
/// `block_on` on a multi-thread runtime.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `contenders` rotated left by `by`: each repetition starts with another.
fn rotated<T: Copy>(contenders: &[T], by: usize) -> Vec<T> {
    let mut order = contenders.to_vec();
    if !order.is_empty() {
        order.rotate_left(by % contenders.len());
    }
    order
}

/// The children:
///
/// - `--child timings <logging> <n> <reps>`: every contender once per
///   repetition, in rotating order; prints `run <rep> <contender> <build
///   ns> <start ns> <stop ns>` per run;
/// - `--child memory <logging> <contender> <n>`: one run; prints `memory
///   <RSS before, KiB> <peak once started, KiB>`.
fn child(args: &[String]) -> ExitCode {
    let arg = |index: usize| args.get(index).map(String::as_str);
    let logging = arg(1).and_then(Logging::from_key);
    match (arg(0), logging) {
        (Some("timings"), Some(logging)) => {
            let (Some(n), Some(reps)) = (
                arg(2).and_then(|n| n.parse::<usize>().ok()),
                arg(3).and_then(|reps| reps.parse::<usize>().ok()),
            ) else {
                return usage();
            };
            runtime().block_on(async {
                for rep in 0..reps {
                    for contender in rotated(&Contender::ALL, rep) {
                        let (run, _) = run_once(contender, logging, n, false).await;
                        println!(
                            "run {rep} {} {} {} {}",
                            contender.key(),
                            run.build.as_nanos(),
                            run.start.as_nanos(),
                            run.stop.as_nanos()
                        );
                    }
                }
            });
            ExitCode::SUCCESS
        }
        (Some("memory"), Some(logging)) => {
            let (Some(contender), Some(n)) = (
                arg(2).and_then(Contender::from_key),
                arg(3).and_then(|n| n.parse::<usize>().ok()),
            ) else {
                return usage();
            };
            runtime().block_on(async {
                let baseline = Memory::read();
                let (_, memory) = run_once(contender, logging, n, true).await;
                let memory = memory.expect("the run sampled its memory");
                println!("memory {} {}", baseline.rss_kib, memory.peak_kib);
            });
            ExitCode::SUCCESS
        }
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: services --child timings defaults|logging-off <n> <reps>\n       \
         services --child memory defaults|logging-off <contender> <n>"
    );
    ExitCode::from(2)
}

/// What one timing child measured: per contender, its runs in repetition
/// order (the first is the cold one).
struct Timings {
    logging: Logging,
    runs: Vec<(Contender, Vec<Run>)>,
}

impl Timings {
    fn measure(logging: Logging, n: usize, reps: usize) -> Self {
        let stdout = run_child(&[
            "timings".to_owned(),
            logging.key().to_owned(),
            n.to_string(),
            reps.to_string(),
        ]);
        let mut runs: Vec<(Contender, Vec<Run>)> = Contender::ALL
            .into_iter()
            .map(|contender| (contender, Vec::new()))
            .collect();
        for line in stdout.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let ["run", _rep, key, build, start, stop] = fields.as_slice() else {
                continue;
            };
            let (Some(contender), Ok(build), Ok(start), Ok(stop)) = (
                Contender::from_key(key),
                build.parse(),
                start.parse(),
                stop.parse(),
            ) else {
                continue;
            };
            let entry = runs
                .iter_mut()
                .find(|(known, _)| *known == contender)
                .expect("every contender has an entry");
            entry.1.push(Run {
                build: Duration::from_nanos(build),
                start: Duration::from_nanos(start),
                stop: Duration::from_nanos(stop),
            });
        }
        for (contender, runs) in &runs {
            assert_eq!(
                runs.len(),
                reps,
                "the child reported every run of {contender:?}"
            );
        }
        Self { logging, runs }
    }

    fn runs(&self, contender: Contender) -> &[Run] {
        &self
            .runs
            .iter()
            .find(|(known, _)| *known == contender)
            .expect("every contender ran")
            .1
    }

    /// The warm median of `pick`, in ms (every run if there is only one).
    fn warm(&self, contender: Contender, pick: fn(&Run) -> Duration) -> f64 {
        let runs = self.runs(contender);
        let warm = if runs.len() > 1 { &runs[1..] } else { runs };
        median(&warm.iter().map(|run| ms(pick(run))).collect::<Vec<_>>())
    }

    fn start(&self, contender: Contender) -> f64 {
        self.warm(contender, |run| run.start)
    }

    fn build_and_start(&self, contender: Contender) -> f64 {
        self.warm(contender, |run| run.build_and_start())
    }

    fn stop(&self, contender: Contender) -> f64 {
        self.warm(contender, |run| run.stop)
    }

    fn build(&self, contender: Contender) -> f64 {
        self.warm(contender, |run| run.build)
    }

    fn cold_start(&self, contender: Contender) -> f64 {
        ms(self.runs(contender)[0].start)
    }
}

/// A memory process's contender: which, and in which logging state.
type MemoryCase = (Contender, Logging);

/// The memory contenders: the raw tasks, tgs (no subscriber installed) and
/// the two hosts with the defaults and with logging off.
const MEMORY_CASES: [MemoryCase; 7] = [
    (Contender::TokioChildTokens, Logging::Off),
    (Contender::TokioShared, Logging::Off),
    (Contender::GracefulShutdown, Logging::Off),
    (Contender::HostSequential, Logging::Defaults),
    (Contender::HostConcurrent, Logging::Defaults),
    (Contender::HostSequential, Logging::Off),
    (Contender::HostConcurrent, Logging::Off),
];

/// Peak RSS growth per service, in bytes, from one fresh process.
fn measure_memory((contender, logging): MemoryCase, n: usize) -> f64 {
    let stdout = run_child(&[
        "memory".to_owned(),
        logging.key().to_owned(),
        contender.key().to_owned(),
        n.to_string(),
    ]);
    stdout
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let ["memory", baseline, peak] = fields.as_slice() else {
                return None;
            };
            let (baseline, peak): (u64, u64) = (baseline.parse().ok()?, peak.parse().ok()?);
            Some(peak.saturating_sub(baseline) as f64 * 1024.0 / n as f64)
        })
        .expect("the memory child reports its memory")
}

/// Bytes per service of every memory case at one N (at N = 1: the growth),
/// over the repetitions.
struct MemoryResults {
    samples: Vec<(MemoryCase, Vec<f64>)>,
}

impl MemoryResults {
    fn median(&self, case: MemoryCase) -> f64 {
        self.samples
            .iter()
            .find(|(known, _)| *known == case)
            .map_or(f64::NAN, |(_, samples)| median(samples))
    }

    fn range(&self, case: MemoryCase) -> (f64, f64) {
        self.samples
            .iter()
            .find(|(known, _)| *known == case)
            .map_or((f64::NAN, f64::NAN), |(_, samples)| {
                let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
                let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (min, max)
            })
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn thousands(n: usize) -> String {
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

/// The timing table of one child.
fn timing_table(out: &mut String, n: usize, timings: &Timings) {
    let reference = Contender::TokioChildTokens;
    let per_service = |value_ms: f64| value_ms * 1e3 / n as f64;
    let _ = writeln!(
        out,
        "Timings in {} (warm medians, ms; ratios against the raw tokio reference of this process):\n",
        timings.logging.process()
    );
    let _ = writeln!(
        out,
        "| contender | build | start | build + start | stop | start cold | build + start µs/service | stop µs/service | start / raw | build + start / raw | stop / raw |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for contender in Contender::ALL {
        let build = if contender.is_host() {
            format!("{:.2}", timings.build(contender))
        } else {
            "—".to_owned()
        };
        let _ = writeln!(
            out,
            "| {} | {build} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} | {} | {} | {} |",
            contender.label(timings.logging),
            timings.start(contender),
            timings.build_and_start(contender),
            timings.stop(contender),
            timings.cold_start(contender),
            per_service(timings.build_and_start(contender)),
            per_service(timings.stop(contender)),
            ratio(timings.start(contender) / timings.start(reference)),
            ratio(timings.build_and_start(contender) / timings.build_and_start(reference)),
            ratio(timings.stop(contender) / timings.stop(reference)),
        );
    }
    let _ = writeln!(out);
}

/// One target at one N: the judged (defaults) value and the logging-off
/// one beside it.
struct Target {
    name: String,
    defaults: f64,
    off: f64,
    pass: fn(f64) -> bool,
}

impl Target {
    /// A target on a ratio of timings, taken in each of the two timing
    /// processes (defaults, logging off).
    fn timed(
        name: String,
        (defaults, off): (&Timings, &Timings),
        ratio_of: impl Fn(&Timings) -> f64,
        pass: fn(f64) -> bool,
    ) -> Self {
        Self {
            name,
            defaults: ratio_of(defaults),
            off: ratio_of(off),
            pass,
        }
    }
}

fn targets(defaults: &Timings, off: &Timings, memory: &MemoryResults) -> Vec<Target> {
    use Contender::{GracefulShutdown, HostConcurrent, HostSequential, TokioChildTokens};
    let both = (defaults, off);
    let mut targets = Vec::new();
    let modes = [
        ("sequential", HostSequential),
        ("concurrent", HostConcurrent),
    ];
    for (mode, host) in modes {
        targets.push(Target::timed(
            format!("{mode}: start alone ≤ 1.3x raw (host / raw)"),
            both,
            |timings| timings.start(host) / timings.start(TokioChildTokens),
            |value| value <= 1.3,
        ));
    }
    for (mode, host) in modes {
        targets.push(Target::timed(
            format!("{mode}: start ≥ 5x faster than tokio-graceful-shutdown (tgs / host)"),
            both,
            |timings| timings.start(GracefulShutdown) / timings.start(host),
            |value| value >= 5.0,
        ));
    }
    for (mode, host) in modes {
        targets.push(Target::timed(
            format!("{mode}: build + start ≤ 2x raw (host / raw)"),
            both,
            |timings| timings.build_and_start(host) / timings.build_and_start(TokioChildTokens),
            |value| value <= 2.0,
        ));
    }
    targets.push(Target::timed(
        "concurrent: stop ≤ 1.5x raw (host / raw)".to_owned(),
        both,
        |timings| timings.stop(HostConcurrent) / timings.stop(TokioChildTokens),
        |value| value <= 1.5,
    ));
    let raw_task = memory.median((TokioChildTokens, Logging::Off));
    for (mode, host) in modes {
        targets.push(Target {
            name: format!("{mode}: memory per idle service ≤ 1.5x a raw task (host / raw)"),
            defaults: memory.median((host, Logging::Defaults)) / raw_task,
            off: memory.median((host, Logging::Off)) / raw_task,
            pass: |value| value <= 1.5,
        });
    }
    targets
}

fn report(
    n: usize,
    reps: usize,
    defaults: &Timings,
    off: &Timings,
    memory: &MemoryResults,
    fixed: &MemoryResults,
    memory_reps: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#### N = {} ({reps} repetitions per timing process: 1 cold + {} warm)\n",
        thousands(n),
        reps - 1
    );
    timing_table(&mut out, n, defaults);
    timing_table(&mut out, n, off);

    let raw_task = memory.median((Contender::TokioChildTokens, Logging::Off));
    // What one service more costs, the fixed part (N = 1) taken out: beside
    // the judged figure, to tell a per-service cost from a per-process one.
    let marginal =
        |case: MemoryCase| (memory.median(case) * n as f64 - fixed.median(case)) / (n - 1) as f64;
    let raw_marginal = marginal((Contender::TokioChildTokens, Logging::Off));
    let _ = writeln!(
        out,
        "Peak RSS per idle service, {memory_reps} fresh process(es) per contender (median; \
         min-max). Judged: the growth divided by N. Beside it, for reference: the growth with \
         one service (N = 1, the fixed part) and what each further service adds ((growth at \
         N - growth at 1) / (N - 1)):\n"
    );
    let _ = writeln!(
        out,
        "| contender | bytes/service | min-max | / raw task | fixed (N = 1) | added per service | / raw task's |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for case in MEMORY_CASES {
        let (min, max) = memory.range(case);
        let label = match case {
            (
                Contender::TokioChildTokens | Contender::TokioShared | Contender::GracefulShutdown,
                _,
            ) => case.0.label(Logging::Off),
            (contender, logging) => contender.label(logging),
        };
        let _ = writeln!(
            out,
            "| {label} | {:.0} B | {min:.0}-{max:.0} | {} | {:.0} KiB | {:.0} B | {} |",
            memory.median(case),
            ratio(memory.median(case) / raw_task),
            fixed.median(case) / 1024.0,
            marginal(case),
            ratio(marginal(case) / raw_marginal),
        );
    }

    let _ = writeln!(
        out,
        "\n| target (warm medians; raw = raw tokio, a child token per task) | host, defaults | verdict | logging off, for reference | verdict |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---|");
    for target in targets(defaults, off, memory) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            target.name,
            ratio(target.defaults),
            verdict((target.pass)(target.defaults)),
            ratio(target.off),
            verdict((target.pass)(target.off)),
        );
    }
    let _ = writeln!(
        out,
        "\nFor reference (no target): one shared token / child tokens: start {}, stop {}; \
         sequential stop / raw: {} (defaults), {} (logging off).\n",
        ratio(defaults.start(Contender::TokioShared) / defaults.start(Contender::TokioChildTokens)),
        ratio(defaults.stop(Contender::TokioShared) / defaults.stop(Contender::TokioChildTokens)),
        ratio(
            defaults.stop(Contender::HostSequential) / defaults.stop(Contender::TokioChildTokens)
        ),
        ratio(off.stop(Contender::HostSequential) / off.stop(Contender::TokioChildTokens)),
    );
    out
}

/// Sequential stop's µs per service at every N against their median: flat
/// means within 20 % of it at every N.
fn flatness(out: &mut String, results: &[(usize, Timings, Timings)]) {
    let per_service =
        |n: usize, timings: &Timings| timings.stop(Contender::HostSequential) * 1e3 / n as f64;
    let defaults: Vec<f64> = results
        .iter()
        .map(|(n, defaults, _)| per_service(*n, defaults))
        .collect();
    let off: Vec<f64> = results
        .iter()
        .map(|(n, _, off)| per_service(*n, off))
        .collect();
    let (median_defaults, median_off) = (median(&defaults), median(&off));
    let _ = writeln!(
        out,
        "#### Sequential stop, µs per service across N (flat: within 20 % of the median across N)\n"
    );
    let _ = writeln!(
        out,
        "| N | host, defaults: µs/service | / median | verdict | logging off: µs/service | / median | verdict |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---|---:|---:|---|");
    let within = |value: f64| (value - 1.0).abs() <= 0.2;
    for (index, (n, _, _)) in results.iter().enumerate() {
        let (d, o) = (defaults[index] / median_defaults, off[index] / median_off);
        let _ = writeln!(
            out,
            "| {} | {:.3} | {} | {} | {:.3} | {} | {} |",
            thousands(*n),
            defaults[index],
            ratio(d),
            verdict(within(d)),
            off[index],
            ratio(o),
            verdict(within(o)),
        );
    }
    let _ = writeln!(out);
}

fn main() -> ExitCode {
    if let Some(args) = common::child_args() {
        return child(&args);
    }
    let kind = common::run_kind();
    let (sizes, memory_reps): (&[(usize, usize)], usize) = match kind {
        RunKind::Full => (&SIZES, MEMORY_REPS[0]),
        RunKind::Quick => (&QUICK_SIZES, MEMORY_REPS[1]),
        RunKind::Smoke => (&SMOKE_SIZES, MEMORY_REPS[2]),
    };
    let began = Instant::now();
    let mut out = common::header("Idle background services: start and stop (benches/services.rs)");
    let _ = writeln!(
        out,
        "\nTwo timing processes per N, one with the host's default subscriber installed and one \
         where none ever is; each runs every contender once per repetition, the order rotated \
         each repetition. The host \"defaults\" is `Host::builder()` as it comes (subscriber at \
         info, signal handlers on); \"logging off\" adds only `default_logging(false)`. The \
         children's standard error goes to /dev/null (the log lines are still formatted and \
         written); `RUST_LOG` is unset for them. Build = registering the N instances and \
         `build()`; start = until every service has been polled once. Memory: one fresh \
         process per (contender, N) and repetition, in rotating order.\n"
    );

    // Timings: the two processes of each N, their order swapped from one N
    // to the next.
    let mut results: Vec<(usize, Timings, Timings)> = Vec::new();
    for (index, &(n, reps)) in sizes.iter().enumerate() {
        let order = rotated(&Logging::BOTH, index);
        let mut measured: Vec<Timings> = order
            .iter()
            .map(|&logging| Timings::measure(logging, n, reps))
            .collect();
        measured.sort_by_key(|timings| timings.logging != Logging::Defaults);
        let off = measured.pop().expect("two processes");
        let defaults = measured.pop().expect("two processes");
        results.push((n, defaults, off));
    }

    // Memory: every (contender, N) in fresh processes, the contenders'
    // order rotated each repetition; N = 1 first, the fixed part.
    let memory_sizes: Vec<usize> = std::iter::once(1)
        .chain(sizes.iter().map(|&(n, _)| n))
        .collect();
    let mut memory: Vec<MemoryResults> = memory_sizes
        .iter()
        .map(|_| MemoryResults {
            samples: MEMORY_CASES
                .iter()
                .map(|&case| (case, Vec::new()))
                .collect(),
        })
        .collect();
    for rep in 0..memory_reps {
        for (index, &n) in memory_sizes.iter().enumerate() {
            for case in rotated(&MEMORY_CASES, rep + index) {
                let bytes = measure_memory(case, n);
                if let Some((_, samples)) = memory[index]
                    .samples
                    .iter_mut()
                    .find(|(known, _)| *known == case)
                {
                    samples.push(bytes);
                }
            }
        }
    }

    let (fixed, memory) = memory.split_first().expect("N = 1 and every N");
    for (index, (n, defaults, off)) in results.iter().enumerate() {
        let reps = sizes[index].1;
        let _ = writeln!(
            out,
            "{}",
            report(*n, reps, defaults, off, &memory[index], fixed, memory_reps)
        );
    }
    flatness(&mut out, &results);
    let _ = writeln!(out, "{}", common::footer(began));
    println!("{out}");
    ExitCode::SUCCESS
}
