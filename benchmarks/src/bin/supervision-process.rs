//! N idle background services, started and stopped by a host with every
//! default, for `benches/supervision.rs`: what supervision adds to a service
//! that never restarts.
//!
//! `supervision-process <n> <reps>`: `reps` times in one process, registers
//! N instances of an idle service on `Host::builder()` as it comes (the
//! default subscriber at info on standard error, signal handlers on),
//! builds, starts until every service has been polled once, and stops.
//! Prints `run <rep> <build ns> <start ns> <stop ns>` per repetition and
//! `memory <VmRSS before building, KiB> <VmHWM once the first repetition's
//! services had all been polled, KiB>`.
//!
//! The bench builds this one file twice outside the workspace, against the
//! host-core of this checkout and against the one of an earlier commit, so
//! it uses only what both have: `Host::builder`, `add_hosted_service_instance`,
//! `build`, `start`, `stop`, `BackgroundService` and `ServiceContext::stopping`.
//! Under `valgrind --tool=callgrind --dump-before='*callgrind_boundary*'`
//! each phase's instructions land in a dump of their own.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use host_core::{BackgroundService, Host, ServiceContext, ServiceError, async_trait};
use tokio::sync::Notify;

/// How long an idle service sleeps between two looks at nothing: longer
/// than any phase lasts under callgrind on a loaded machine, so that no
/// sleep ends, and is counted, inside a measured phase (with 1 s, 10 000
/// services stopping under callgrind on a busy machine woke and re-armed
/// their timers, and their stop counted up to 2 000 instructions more).
const IDLE_TICK: Duration = Duration::from_secs(3600);

/// Counts first polls and wakes `main` when all N services have been polled.
struct Polled {
    count: AtomicUsize,
    target: usize,
    all: Notify,
}

impl Polled {
    /// Counts one first poll; the last one wakes `main`.
    fn mark(&self) {
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            self.all.notify_one();
        }
    }

    /// Waits until every service has been polled once.
    async fn wait(&self) {
        while self.count.load(Ordering::Acquire) < self.target {
            self.all.notified().await;
        }
    }
}

/// Counts its first poll, then idles until told to stop: the same service
/// as `benches/services.rs` times.
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

/// A phase boundary for callgrind: `--dump-before` on this name starts a new
/// dump each time it is called, so that the instructions of every thread up
/// to here are counted apart from what follows.
#[inline(never)]
fn callgrind_boundary(phase: &str) {
    std::hint::black_box(phase);
}

/// A field of `/proc/self/status` in KiB (0 where there is none).
fn status_kib(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// What one repetition measured.
struct Run {
    build: Duration,
    start: Duration,
    stop: Duration,
    /// `VmHWM` once every service had been polled, in KiB.
    peak_kib: u64,
}

/// One repetition: build, start, stop.
async fn once(n: usize) -> Run {
    let polled = Arc::new(Polled {
        count: AtomicUsize::new(0),
        target: n,
        all: Notify::new(),
    });
    callgrind_boundary("build");
    let began = Instant::now();
    let mut builder = Host::builder();
    for _ in 0..n {
        builder.add_hosted_service_instance(Idle {
            polled: polled.clone(),
        });
    }
    let mut host = builder.build().expect("the host builds");
    let build = began.elapsed();

    callgrind_boundary("start");
    let began = Instant::now();
    host.start().await.expect("the host starts");
    polled.wait().await;
    let start = began.elapsed();
    let peak_kib = status_kib("VmHWM:");

    callgrind_boundary("stop");
    let began = Instant::now();
    host.stop().await.expect("the host stops cleanly");
    let stop = began.elapsed();
    callgrind_boundary("drop");
    drop(host);
    callgrind_boundary("end");
    Run {
        build,
        start,
        stop,
        peak_kib,
    }
}

fn main() -> ExitCode {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let [n, reps] = args[..] else {
        eprintln!("usage: supervision-process <n> <reps> (both numbers)");
        return ExitCode::from(2);
    };
    // `#[tokio::main]`, written out: `main`'s thread drives the host.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let before = status_kib("VmRSS:");
    let mut peak = 0;
    for rep in 0..reps {
        let run = runtime.block_on(once(n));
        if rep == 0 {
            peak = run.peak_kib;
        }
        println!(
            "run {rep} {} {} {}",
            run.build.as_nanos(),
            run.start.as_nanos(),
            run.stop.as_nanos()
        );
    }
    println!("memory {before} {peak}");
    ExitCode::SUCCESS
}
