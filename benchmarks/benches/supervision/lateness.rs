//! How late a periodic service's runs start: every 10 ms, each run's start
//! minus its scheduled time, against a plain `tokio::time::interval`'s
//! lateness measured the same way, in blocks alternated in one process.
//!
//! - host: `add_periodic_instance(Tick, Schedule::every(10 ms))` on
//!   `Host::builder()` with the defaults; the run reads the clocks first
//!   thing and subtracts `ctx.scheduled()` (the tick's wall time, which the
//!   schedule derives from one reading of both clocks at its start plus
//!   whole periods, so the difference is on the monotonic clock's scale);
//! - interval: `tokio::time::interval_at(start, 10 ms)`, default
//!   missed-tick behaviour, in a spawned task; `tick().await` returns the
//!   tick's deadline, subtracted from `Instant::now()`.
//!
//! tokio's timer works in whole milliseconds counted from the runtime's
//! start, so every lateness includes up to a millisecond or two of
//! rounding, which depends on where the ticks fall: a fresh host's schedule
//! falls anywhere. Each interval block is therefore laid on the grid of the
//! host block just before it (its `start` a whole number of periods after
//! that block's last tick), so that the two of a pair fall alike.
//!
//! Each block starts a fresh host (or interval) and drops its first tick,
//! which pays for the block's start.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use host_core::{Host, PeriodicService, RunContext, Schedule, ServiceError, async_trait};
use tokio::sync::Notify;

use crate::common::{RunKind, ratio};
use crate::{Verdict, run_child, runtime, thousands};

/// The schedule's period.
const PERIOD: Duration = Duration::from_millis(10);

/// The target: each percentile ≤ 1.2x the interval's.
const TARGET: f64 = 1.2;

/// Ticks kept per contender, and per block: full, quick, smoke.
const PLANS: [(usize, usize); 3] = [(2_000, 100), (300, 50), (10, 5)];

/// Collects the lateness of `wanted` runs after the first, then rings.
struct Collector {
    late: Mutex<Vec<Duration>>,
    wanted: usize,
    seen: Mutex<usize>,
    /// The scheduled instant of the latest tick noted.
    grid: Mutex<Option<Instant>>,
    done: Notify,
}

impl Collector {
    /// A collector that rings once it holds `wanted` ticks.
    fn new(wanted: usize) -> Arc<Self> {
        Arc::new(Self {
            late: Mutex::new(Vec::with_capacity(wanted)),
            wanted,
            seen: Mutex::new(0),
            grid: Mutex::new(None),
            done: Notify::new(),
        })
    }

    /// Notes one tick's lateness and scheduled instant (the first tick of a
    /// block is dropped).
    fn note(&self, late: Duration, scheduled: Instant) {
        *self.grid.lock().expect("not poisoned") = Some(scheduled);
        let mut seen = self.seen.lock().expect("not poisoned");
        *seen += 1;
        if *seen == 1 {
            return;
        }
        let mut kept = self.late.lock().expect("not poisoned");
        if kept.len() < self.wanted {
            kept.push(late);
            if kept.len() == self.wanted {
                self.done.notify_one();
            }
        }
    }

    /// The lateness noted, and the latest tick's scheduled instant.
    fn take(&self) -> (Vec<Duration>, Instant) {
        let grid = self
            .grid
            .lock()
            .expect("not poisoned")
            .expect("a tick was noted");
        (
            std::mem::take(&mut self.late.lock().expect("not poisoned")),
            grid,
        )
    }
}

/// The periodic service: notes how late each run began.
struct Tick(Arc<Collector>);

#[async_trait]
impl PeriodicService for Tick {
    async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
        let (wall, now) = (SystemTime::now(), Instant::now());
        let late = wall.duration_since(ctx.scheduled()).unwrap_or_default();
        self.0.note(late, now - late);
        Ok(())
    }
}

/// A fresh host's block: the lateness of `ticks` runs, and the scheduled
/// instant of the last.
async fn host_block(ticks: usize) -> (Vec<Duration>, Instant) {
    let collector = Collector::new(ticks);
    let mut builder = Host::builder();
    builder.add_periodic_instance(Tick(collector.clone()), Schedule::every(PERIOD));
    let mut host = builder.build().expect("the host builds");
    let done = collector.done.notified();
    host.start().await.expect("the host starts");
    done.await;
    host.stop().await.expect("the host stops cleanly");
    collector.take()
}

/// An interval's block on the grid of `grid` (a tick of the host block
/// before it), starting at least one period from now: the lateness of
/// `ticks` ticks.
async fn interval_block(ticks: usize, grid: Instant) -> Vec<Duration> {
    let collector = Collector::new(ticks);
    let earliest = Instant::now() + PERIOD;
    let periods = earliest
        .saturating_duration_since(grid)
        .as_nanos()
        .div_ceil(PERIOD.as_nanos());
    let start = grid + PERIOD * u32::try_from(periods).expect("a block lasts seconds");
    let task = tokio::spawn({
        let collector = collector.clone();
        async move {
            let mut interval = tokio::time::interval_at(start.into(), PERIOD);
            // One more tick than kept: the first is dropped.
            for _ in 0..=ticks {
                let deadline = interval.tick().await.into_std();
                let now = Instant::now();
                collector.note(now.saturating_duration_since(deadline), deadline);
            }
        }
    });
    task.await.expect("the interval's task does not panic");
    collector.take().0
}

/// `--child lateness <ticks> <block>`: pairs of blocks of `block` ticks,
/// a host's, then an interval's on its grid; prints `late <host|interval>
/// <ns>` per tick kept.
pub(crate) fn child(args: &[String]) -> ExitCode {
    let (Some(ticks), Some(block)) = (
        args.first().and_then(|value| value.parse::<usize>().ok()),
        args.get(1).and_then(|value| value.parse::<usize>().ok()),
    ) else {
        return ExitCode::from(2);
    };
    runtime().block_on(async {
        let pairs = ticks.div_ceil(block.max(1));
        for index in 0..pairs {
            let size = block.min(ticks - index * block);
            let (host, grid) = host_block(size).await;
            let interval = interval_block(size, grid).await;
            for (contender, late) in [("host", host), ("interval", interval)] {
                for late in late {
                    println!("late {contender} {}", late.as_nanos());
                }
            }
        }
    });
    ExitCode::SUCCESS
}

/// The `p`-th percentile (0-100) of sorted `values`, nearest rank.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs the child and writes the section.
pub(crate) fn run(kind: RunKind, out: &mut String, verdicts: &mut Vec<Verdict>) {
    let (ticks, block) = match kind {
        RunKind::Full => PLANS[0],
        RunKind::Quick => PLANS[1],
        RunKind::Smoke => PLANS[2],
    };
    let stdout = run_child(&["lateness".to_owned(), ticks.to_string(), block.to_string()]);
    let series = |contender: &str| {
        let mut values: Vec<f64> = stdout
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                match fields.as_slice() {
                    ["late", key, nanos] if *key == contender => {
                        nanos.parse::<f64>().ok().map(|nanos| nanos / 1e3)
                    }
                    _ => None,
                }
            })
            .collect();
        assert_eq!(
            values.len(),
            ticks,
            "the child reported every {contender} tick"
        );
        values.sort_by(f64::total_cmp);
        values
    };
    let (host, interval) = (series("host"), series("interval"));
    let _ = writeln!(
        out,
        "#### A periodic service's lateness\n\n\
         `Schedule::every(10 ms)` on a host with the defaults against `tokio::time::interval` \
         (10 ms), {} ticks each, in blocks of {block} alternated in one process: a fresh \
         host's block, then an interval's laid on the same grid of ticks (tokio's timer \
         works in whole milliseconds, so where the ticks fall sets part of the lateness); \
         each block's first tick dropped. Lateness = the run's start minus its scheduled \
         time (host: wall clock read first thing in `run` minus `ctx.scheduled()`; \
         interval: `Instant::now()` minus the deadline `tick()` returns). µs:\n",
        thousands(ticks)
    );
    let _ = writeln!(
        out,
        "| contender | p50 | p90 | p99 | max | mean |\n|---|---:|---:|---:|---:|---:|"
    );
    let columns = |values: &[f64]| {
        [50.0, 90.0, 99.0, 100.0]
            .map(|p| percentile(values, p))
            .into_iter()
            .chain(std::iter::once(
                values.iter().sum::<f64>() / values.len() as f64,
            ))
            .collect::<Vec<f64>>()
    };
    let (host_columns, interval_columns) = (columns(&host), columns(&interval));
    let difference: Vec<f64> = host_columns
        .iter()
        .zip(&interval_columns)
        .map(|(host, interval)| host - interval)
        .collect();
    for (label, values) in [
        ("host, `Schedule::every(10 ms)`", &host_columns),
        (
            "`tokio::time::interval(10 ms)` (reference)",
            &interval_columns,
        ),
        ("host − interval", &difference),
    ] {
        let cells: Vec<String> = values.iter().map(|value| format!("{value:.0}")).collect();
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    }
    let _ = writeln!(out);
    for p in [50.0, 99.0] {
        let value = percentile(&host, p) / percentile(&interval, p);
        verdicts.push(Verdict {
            target: format!("periodic lateness p{p:.0} ≤ {TARGET}x the interval's"),
            measured: ratio(value),
            pass: value <= TARGET,
        });
    }
}
