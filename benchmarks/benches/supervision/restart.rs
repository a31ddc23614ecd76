//! What a restart costs: a background service whose `execute` fails at
//! once, restarted by its supervisor with a zero backoff, no jitter and no
//! limit, against a raw tokio loop that respawns a task returning the same
//! error (spawn, await the `JoinHandle`, spawn again).
//!
//! The host counts from the first `execute` to the one after the last
//! restart, the raw loop from its first spawn to the end of its last
//! await: each figure is K restarts (or respawns). A third contender, for
//! reference, is the raw loop logging each failure at `warn` through the
//! process's subscriber, as the supervisor does. Two child processes: one
//! where the host's default subscriber is installed (judged), one with
//! `default_logging(false)` where none ever is.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use host_core::{BackgroundService, Host, Restart, ServiceContext, ServiceError, async_trait};
use tokio::sync::Notify;

use crate::child::{Logging, run_child};
use crate::common::{RunKind, median, ratio};
use crate::{Verdict, runtime, thousands};

/// The target: a restart ≤ 2x a raw respawn (the backoff is zero).
const TARGET: f64 = 2.0;

/// Restarts per repetition, and repetitions per contender and process (the
/// first is the cold one): full, quick, smoke.
const PLANS: [(u64, usize); 3] = [(2_000, 5), (500, 3), (20, 2)];

/// What is timed: the host's restarts, or a raw loop's respawns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Contender {
    Host,
    Raw,
    RawLogged,
}

impl Contender {
    /// Every contender, in the first repetition's order.
    const ALL: [Contender; 3] = [Contender::Host, Contender::Raw, Contender::RawLogged];

    /// Its name in the child's output.
    fn key(self) -> &'static str {
        match self {
            Contender::Host => "host",
            Contender::Raw => "raw",
            Contender::RawLogged => "raw-logged",
        }
    }

    /// Its name in the table.
    fn label(self) -> &'static str {
        match self {
            Contender::Host => "host: `Restart::on_failure()`, zero backoff",
            Contender::Raw => "raw tokio: spawn, await, spawn again (reference)",
            Contender::RawLogged => "raw tokio, each failure logged at `warn` (for reference)",
        }
    }
}

/// What the failing service and the bench share: its runs, and when the
/// first and the last began.
struct Runs {
    count: AtomicU64,
    restarts: u64,
    span: Mutex<Option<(Instant, Instant)>>,
    done: Notify,
}

impl Runs {
    /// One run: an error for each of the first `restarts` runs, then `Ok`
    /// (which `on_failure` does not restart).
    fn run(&self) -> Result<(), ServiceError> {
        let now = Instant::now();
        let run = self.count.fetch_add(1, Ordering::AcqRel);
        let mut span = self.span.lock().expect("not poisoned");
        if run == 0 {
            *span = Some((now, now));
        }
        if run < self.restarts {
            return Err(host_core::anyhow!("failed on purpose"));
        }
        if let Some((_, last)) = span.as_mut() {
            *last = now;
        }
        self.done.notify_one();
        Ok(())
    }
}

/// Fails `restarts` times, then completes.
struct Failing(Arc<Runs>);

#[async_trait]
impl BackgroundService for Failing {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        self.0.run()
    }
}

/// The host's `restarts` restarts: from the first run's start to the last's.
async fn host(restarts: u64, logging: Logging) -> Duration {
    let runs = Arc::new(Runs {
        count: AtomicU64::new(0),
        restarts,
        span: Mutex::new(None),
        done: Notify::new(),
    });
    let mut builder = Host::builder();
    if logging == Logging::Off {
        builder.default_logging(false);
    }
    builder.add_hosted_service_instance_with(Failing(runs.clone()), |options| {
        options.restart(
            Restart::on_failure()
                .backoff(Duration::ZERO, Duration::ZERO)
                .jitter(0.0)
                .limit(u32::MAX, Duration::from_secs(3600)),
        )
    });
    let mut host = builder.build().expect("the host builds");
    host.start().await.expect("the host starts");
    runs.done.notified().await;
    host.stop().await.expect("the host stops cleanly");
    let (first, last) = runs
        .span
        .lock()
        .expect("not poisoned")
        .expect("the service ran");
    last - first
}

/// `restarts` respawns of a failing task, from a task of its own (as the
/// supervisor runs on one).
async fn raw(restarts: u64, logged: bool) -> Duration {
    tokio::spawn(async move {
        let began = Instant::now();
        for attempt in 1..=restarts {
            let task = tokio::spawn(async {
                Err::<(), ServiceError>(host_core::anyhow!("failed on purpose"))
            });
            let error = task
                .await
                .expect("the task does not panic")
                .expect_err("the task fails");
            if logged {
                tracing::warn!(attempt, "failed: {error}; respawning");
            }
        }
        began.elapsed()
    })
    .await
    .expect("the loop does not panic")
}

/// `--child restart <logging> <restarts> <reps>`: every contender once per
/// repetition, the order rotated (the host first in the first repetition,
/// so that its subscriber is installed before anything logs); prints
/// `restart <rep> <contender> <ns>`.
pub(crate) fn child(args: &[String]) -> ExitCode {
    let Some(logging) = args.first().and_then(|key| Logging::from_key(key)) else {
        return ExitCode::from(2);
    };
    let (Some(restarts), Some(reps)) = (
        args.get(1).and_then(|value| value.parse::<u64>().ok()),
        args.get(2).and_then(|value| value.parse::<usize>().ok()),
    ) else {
        return ExitCode::from(2);
    };
    runtime().block_on(async {
        for rep in 0..reps {
            let mut order = Contender::ALL.to_vec();
            order.rotate_left(rep % Contender::ALL.len());
            for contender in order {
                let elapsed = match contender {
                    Contender::Host => host(restarts, logging).await,
                    Contender::Raw => raw(restarts, false).await,
                    Contender::RawLogged => raw(restarts, true).await,
                };
                println!("restart {rep} {} {}", contender.key(), elapsed.as_nanos());
            }
        }
    });
    ExitCode::SUCCESS
}

/// The warm median of each contender in one child, in µs per restart.
fn measure(logging: Logging, restarts: u64, reps: usize) -> Vec<(Contender, f64, f64)> {
    let stdout = run_child(&[
        "restart".to_owned(),
        logging.key().to_owned(),
        restarts.to_string(),
        reps.to_string(),
    ]);
    Contender::ALL
        .iter()
        .map(|&contender| {
            let runs: Vec<f64> = stdout
                .lines()
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    match fields.as_slice() {
                        ["restart", _rep, key, nanos] if *key == contender.key() => nanos
                            .parse::<f64>()
                            .ok()
                            .map(|nanos| nanos / 1e3 / restarts as f64),
                        _ => None,
                    }
                })
                .collect();
            assert_eq!(
                runs.len(),
                reps,
                "the child reported every {contender:?} run"
            );
            let warm = if runs.len() > 1 {
                &runs[1..]
            } else {
                &runs[..]
            };
            (contender, median(warm), runs[0])
        })
        .collect()
}

/// Runs both children and writes the section.
pub(crate) fn run(kind: RunKind, out: &mut String, verdicts: &mut Vec<Verdict>) {
    let (restarts, reps) = match kind {
        RunKind::Full => PLANS[0],
        RunKind::Quick => PLANS[1],
        RunKind::Smoke => PLANS[2],
    };
    let _ = writeln!(
        out,
        "#### A restart against a raw respawn\n\n\
         One service whose `execute` fails at once, registered with `Restart::on_failure()\
         .backoff(ZERO, ZERO).jitter(0.0).limit(u32::MAX, 1 h)`, restarted {count} times per \
         repetition; against {count} respawns of a failing task by a raw tokio loop on a \
         task of its own. {reps} repetitions per contender and process (1 cold + {} warm), the \
         order rotated; warm medians. Each restart the supervisor logs at `warn` (to /dev/null \
         here); the logged raw loop does the same, for reference.\n",
        reps - 1,
        count = thousands(restarts),
    );
    let _ = writeln!(
        out,
        "| process | contender | µs per restart | restarts/s | cold µs | / raw |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
    for logging in Logging::BOTH {
        let measured = measure(logging, restarts, reps);
        let raw = measured
            .iter()
            .find(|(contender, _, _)| *contender == Contender::Raw)
            .map_or(f64::NAN, |(_, warm, _)| *warm);
        let process = match logging {
            Logging::Defaults => "defaults (subscriber at info)",
            Logging::Off => "logging off (no subscriber)",
        };
        for (contender, warm, cold) in &measured {
            let _ = writeln!(
                out,
                "| {process} | {} | {warm:.2} | {:.0} | {cold:.2} | {} |",
                contender.label(),
                1e6 / warm,
                ratio(warm / raw)
            );
        }
        let host = measured
            .iter()
            .find(|(contender, _, _)| *contender == Contender::Host)
            .map_or(f64::NAN, |(_, warm, _)| *warm);
        let value = host / raw;
        verdicts.push(Verdict {
            target: format!(
                "restart ≤ {TARGET}x a raw respawn (zero backoff), {}",
                match logging {
                    Logging::Defaults => "defaults",
                    Logging::Off => "logging off (for reference)",
                }
            ),
            measured: ratio(value),
            pass: value <= TARGET,
        });
    }
    let _ = writeln!(out);
}
