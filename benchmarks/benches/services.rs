//! Starting and stopping N idle background services (issue 2, section 5).
//!
//! Four contenders, N = 1 000, 10 000 and 100 000:
//!
//! - raw tokio: N tasks in a `JoinSet`, all watching one `CancellationToken`
//!   (the reference for the targets); and, for reference only, the same with
//!   a child token per task, as the host gives each service a token of its own;
//! - tokio-graceful-shutdown: N subsystems nested in one `Toplevel`;
//! - the host in its default mode (each phase in order, service by service);
//! - the host with `services_start_concurrently` and
//!   `services_stop_concurrently`.
//!
//! Every service does the same: on its first poll it counts itself, then it
//! loops on `tokio::select!` of its stopping token and a 1 s sleep. *Start*
//! runs from the first call (spawning, or `host.start()`) until every
//! service has been polled once; *stop* from the stop request until the last
//! service has returned (`host.stop()` returning, the `JoinSet` drained,
//! `handle_shutdown_requests` returning). Building the host (registering N
//! instances and `build()`) is timed apart and is in neither.
//!
//! Each (contender, N) runs in a fresh child process (this binary,
//! re-executed with `--child`): its first run is the cold one, the rest
//! give the warm median, and its peak RSS (`VmHWM` once all N are started,
//! less `VmRSS` before the first run) divided by N is the memory per
//! service.

mod common;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use host_core::{BackgroundService, Host, ServiceContext, ServiceError, async_trait};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_graceful_shutdown::{SubsystemBuilder, SubsystemHandle, Toplevel};
use tokio_util::sync::CancellationToken;

use common::{median, ratio, verdict};

/// How long an idle service sleeps between two looks at nothing.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// N, and how many runs (the first is the cold one) each contender gets.
const SIZES: [(usize, usize); 3] = [(1_000, 10), (10_000, 8), (100_000, 6)];

/// A smoke run (not `cargo bench`): one small N, two runs.
const SMOKE_SIZES: [(usize, usize); 1] = [(200, 2)];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Contender {
    Tokio,
    TokioChildTokens,
    GracefulShutdown,
    HostSequential,
    HostConcurrent,
}

impl Contender {
    const ALL: [Contender; 5] = [
        Contender::Tokio,
        Contender::TokioChildTokens,
        Contender::GracefulShutdown,
        Contender::HostSequential,
        Contender::HostConcurrent,
    ];

    fn key(self) -> &'static str {
        match self {
            Contender::Tokio => "tokio",
            Contender::TokioChildTokens => "tokio-child-tokens",
            Contender::GracefulShutdown => "tgs",
            Contender::HostSequential => "host-sequential",
            Contender::HostConcurrent => "host-concurrent",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Contender::Tokio => "raw tokio (JoinSet + CancellationToken)",
            Contender::TokioChildTokens => "raw tokio, a child token per task (reference)",
            Contender::GracefulShutdown => "tokio-graceful-shutdown 0.20",
            Contender::HostSequential => "host, sequential (default)",
            Contender::HostConcurrent => "host, concurrent",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|contender| contender.key() == key)
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
#[derive(Clone, Copy)]
struct Run {
    build: Duration,
    start: Duration,
    stop: Duration,
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

async fn run_host(n: usize, concurrent: bool, sample: bool) -> (Run, Option<Memory>) {
    let polled = Polled::new(n);

    let began = Instant::now();
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .default_logging(false)
        .configure_host_options(|options| {
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

async fn run_once(contender: Contender, n: usize, sample: bool) -> (Run, Option<Memory>) {
    match contender {
        Contender::Tokio => run_tokio(n, false, sample).await,
        Contender::TokioChildTokens => run_tokio(n, true, sample).await,
        Contender::GracefulShutdown => run_graceful_shutdown(n, sample).await,
        Contender::HostSequential => run_host(n, false, sample).await,
        Contender::HostConcurrent => run_host(n, true, sample).await,
    }
}

/// The child: `--child <contender> <n> <runs>`. Prints `memory <baseline
/// RSS KiB> <peak KiB>` once and `run <build ns> <start ns> <stop ns>` per
/// run.
fn child(args: &[String]) -> ExitCode {
    let (Some(contender), Some(n), Some(runs)) = (
        args.first().and_then(|key| Contender::from_key(key)),
        args.get(1).and_then(|n| n.parse::<usize>().ok()),
        args.get(2).and_then(|runs| runs.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: services --child <contender> <n> <runs>");
        return ExitCode::from(2);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let baseline = Memory::read();
        for index in 0..runs {
            let (run, memory) = run_once(contender, n, index == 0).await;
            if let Some(memory) = memory {
                println!("memory {} {}", baseline.rss_kib, memory.peak_kib);
            }
            println!(
                "run {} {} {}",
                run.build.as_nanos(),
                run.start.as_nanos(),
                run.stop.as_nanos()
            );
        }
    });
    ExitCode::SUCCESS
}

/// What the parent learned from one child.
struct Case {
    runs: Vec<Run>,
    /// Peak RSS growth per service, in bytes.
    bytes_per_service: f64,
}

impl Case {
    fn cold(&self) -> Run {
        self.runs[0]
    }

    fn warm(&self, pick: fn(&Run) -> Duration) -> f64 {
        let warm = if self.runs.len() > 1 {
            &self.runs[1..]
        } else {
            &self.runs[..]
        };
        median(
            &warm
                .iter()
                .map(|run| pick(run).as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        )
    }

    fn warm_start(&self) -> f64 {
        self.warm(|run| run.start)
    }

    fn warm_stop(&self) -> f64 {
        self.warm(|run| run.stop)
    }

    fn warm_build(&self) -> f64 {
        self.warm(|run| run.build)
    }
}

fn measure(contender: Contender, n: usize, runs: usize) -> Case {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let output = Command::new(exe)
        .args([
            "--child",
            contender.key(),
            &n.to_string(),
            &runs.to_string(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("the bench can run itself");
    assert!(
        output.status.success(),
        "the child for {} with N = {n} failed: {}",
        contender.label(),
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut case = Case {
        runs: Vec::new(),
        bytes_per_service: f64::NAN,
    };
    for line in stdout.lines() {
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|field| field.parse().ok())
            .collect();
        match (line.split_whitespace().next(), fields.as_slice()) {
            (Some("memory"), [baseline, peak]) => {
                case.bytes_per_service = peak.saturating_sub(*baseline) as f64 * 1024.0 / n as f64;
            }
            (Some("run"), [build, start, stop]) => case.runs.push(Run {
                build: Duration::from_nanos(*build),
                start: Duration::from_nanos(*start),
                stop: Duration::from_nanos(*stop),
            }),
            _ => {}
        }
    }
    assert_eq!(case.runs.len(), runs, "the child reported every run");
    case
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

fn report(n: usize, runs: usize, cases: &[(Contender, Case)]) -> String {
    let get = |wanted: Contender| {
        &cases
            .iter()
            .find(|(contender, _)| *contender == wanted)
            .expect("every contender ran")
            .1
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#### N = {} (1 cold run + {} warm, each contender in a fresh process)\n",
        thousands(n),
        runs - 1
    );
    let _ = writeln!(
        out,
        "| contender | start cold (ms) | start warm (ms) | start µs/service | \
         stop cold (ms) | stop warm (ms) | stop µs/service | peak RSS/service | build warm (ms) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (contender, case) in cases {
        let build = match contender {
            Contender::HostSequential | Contender::HostConcurrent => {
                format!("{:.2}", case.warm_build())
            }
            _ => "—".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {:.2} | {:.2} | {:.3} | {:.2} | {:.2} | {:.3} | {:.0} B | {} |",
            contender.label(),
            ms(case.cold().start),
            case.warm_start(),
            case.warm_start() * 1e3 / n as f64,
            ms(case.cold().stop),
            case.warm_stop(),
            case.warm_stop() * 1e3 / n as f64,
            case.bytes_per_service,
            build,
        );
    }

    let tokio = get(Contender::Tokio);
    let tgs = get(Contender::GracefulShutdown);
    let sequential = get(Contender::HostSequential);
    let concurrent = get(Contender::HostConcurrent);
    let _ = writeln!(out, "\n| target (warm medians) | measured | verdict |");
    let _ = writeln!(out, "|---|---:|---|");
    let mut target = |name: &str, measured: f64, pass: bool| {
        let _ = writeln!(out, "| {name} | {} | {} |", ratio(measured), verdict(pass));
    };
    for (mode, host) in [("sequential", sequential), ("concurrent", concurrent)] {
        let vs_tokio = host.warm_start() / tokio.warm_start();
        target(
            &format!("{mode} start ≤ 1.5x raw tokio (host / tokio)"),
            vs_tokio,
            vs_tokio <= 1.5,
        );
    }
    for (mode, host) in [("sequential", sequential), ("concurrent", concurrent)] {
        let speedup = tgs.warm_start() / host.warm_start();
        target(
            &format!("{mode} start ≥ 5x faster than tokio-graceful-shutdown (tgs / host)"),
            speedup,
            speedup >= 5.0,
        );
    }
    let vs_tokio = concurrent.warm_stop() / tokio.warm_stop();
    target(
        "concurrent stop ≤ 1.5x raw tokio (host / tokio)",
        vs_tokio,
        vs_tokio <= 1.5,
    );
    let vs_tgs = sequential.warm_stop() / tgs.warm_stop();
    target(
        "sequential stop ≤ tokio-graceful-shutdown (host / tgs)",
        vs_tgs,
        vs_tgs <= 1.0,
    );
    for (mode, host) in [("sequential", sequential), ("concurrent", concurrent)] {
        let vs_task = host.bytes_per_service / tokio.bytes_per_service;
        target(
            &format!("{mode}: peak RSS per service ≤ 1.5x a raw task (host / tokio)"),
            vs_task,
            vs_task <= 1.5,
        );
    }
    // For reference: what the concurrent stop is to tgs, and the sequential
    // stop to raw tokio (no target).
    let _ = writeln!(
        out,
        "\nFor reference (no target): sequential stop / raw tokio = {}, \
         concurrent stop / tgs = {}, tgs start / raw tokio = {}.",
        ratio(sequential.warm_stop() / tokio.warm_stop()),
        ratio(concurrent.warm_stop() / tgs.warm_stop()),
        ratio(tgs.warm_start() / tokio.warm_start()),
    );
    out
}

fn main() -> ExitCode {
    if let Some(args) = common::child_args() {
        return child(&args);
    }
    let sizes: &[(usize, usize)] = if common::is_bench_run() {
        &SIZES
    } else {
        &SMOKE_SIZES
    };
    let began = Instant::now();
    let mut out = common::header("Idle background services: start and stop (benches/services.rs)");
    for &(n, runs) in sizes {
        let cases: Vec<(Contender, Case)> = Contender::ALL
            .into_iter()
            .map(|contender| (contender, measure(contender, n, runs)))
            .collect();
        let _ = writeln!(out, "\n{}", report(n, runs, &cases));
    }
    let _ = writeln!(
        out,
        "Total time of this bench: {:.1} s.",
        began.elapsed().as_secs_f64()
    );
    println!("{out}");
    ExitCode::SUCCESS
}
