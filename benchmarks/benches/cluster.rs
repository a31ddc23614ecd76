//! What scale-out costs: three measurements, per lease store (in-process,
//! file lock, PostgreSQL, Redis).
//!
//! 1. **Failover**: two instances of a user's host with one cluster
//!    singleton (`src/bin/cluster-process.rs`) run; the bench signals the
//!    leader (`kill -9`, or `SIGTERM` for a graceful stop; the time is
//!    taken just before the signal) and reads the time the other printed
//!    as it began to lead. Then a fresh instance starts as the new standby
//!    and the next round begins; the two causes alternate. Short timings
//!    (lease 1 s, renew deadline 700 ms, retry 200 ms), and the figures
//!    scaled to the defaults (15 s, 10 s, 2 s) by the timing that bounds
//!    them.
//! 2. **Renew cost**: `renew` of a held lease, timed one by one, in this
//!    process.
//! 3. **Cluster tick cost**: what a cluster-wide tick adds over a local
//!    one: `try_claim` of a new tick and `finish` of its claim, timed
//!    together, beside a local tick's cost (nothing: a no-op future).
//!
//! PostgreSQL from `HOST_TEST_POSTGRES_URL`, in a schema of the bench's own
//! (`hc_bench_<pid>`), dropped at the end; Redis from `HOST_TEST_REDIS_URL`,
//! under a key prefix of the bench's own (`hc-bench-<pid>:`), deleted at the
//! end; the rows of either are skipped when its variable is unset. Every
//! child is killed and reaped, on a panic too.

// Not every helper is used here (`child_args`, `verdict`).
#[allow(dead_code)]
mod common;
#[path = "common/guard.rs"]
mod guard;
#[path = "cluster/partition.rs"]
mod partition;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use host_cluster::postgres::{Namespace, PostgresOptions};
use host_cluster::{
    ClaimOutcome, ClaimStore, ClusterStore, FileLockStore, InProcessStore, LeaseStore,
    PostgresStore, cluster_store_for_url,
};

use common::RunKind;
use guard::KillOnDrop;
use host_core::Singleton;
use host_test::netns::{Member, Network};
use host_test::postgres_server::PostgresServer;
use host_test::redis_server::RedisServer;
use host_test::{EtcdCluster, EtcdLauncher};
use partition::Partitioned;
use tokio::runtime::Runtime;

/// The host binary the failover runs.
const BINARY: &str = env!("CARGO_BIN_EXE_cluster-process");

/// Where the PostgreSQL server is.
const POSTGRES_VARIABLE: &str = "HOST_TEST_POSTGRES_URL";

/// Where the Redis server is.
const REDIS_VARIABLE: &str = "HOST_TEST_REDIS_URL";

/// The short timings the failover runs with.
const LEASE: Duration = Duration::from_millis(1000);
const RENEW_DEADLINE: Duration = Duration::from_millis(700);
const RETRY: Duration = Duration::from_millis(200);

/// The defaults the failover is scaled to.
const DEFAULT_LEASE: Duration = Singleton::DEFAULT_LEASE;
const DEFAULT_RENEW_DEADLINE: Duration = Singleton::DEFAULT_RENEW_DEADLINE;
const DEFAULT_RETRY: Duration = Singleton::DEFAULT_RETRY_PERIOD;

/// A campaign waits the retry period and up to a fifth more.
const JITTER: f64 = 1.2;

/// A bound against hangs only: an instance that has not led or stood by
/// within it has failed.
const HANG: Duration = Duration::from_secs(30);

/// How long a signalled leader may take to exit before it is killed.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// The variable that replays a run's random pauses before each signal.
const SEED_VARIABLE: &str = "HOST_BENCH_SEED";

/// A small deterministic generator (splitmix64) for the pause before each
/// signal: the seed is printed, and `HOST_BENCH_SEED` replays it.
#[derive(Debug)]
struct Random(u64);

impl Random {
    /// The seed from `HOST_BENCH_SEED`, or one from the clock.
    fn seed() -> u64 {
        std::env::var(SEED_VARIABLE)
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |since| since.as_nanos() as u64)
            })
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, below)`, to the microsecond.
    fn pause(&mut self, below: Duration) -> Duration {
        let micros = u64::try_from(below.as_micros()).unwrap_or(u64::MAX).max(1);
        Duration::from_micros(self.next() % micros)
    }
}

/// The pause before each signal is uniform below this: two campaign
/// pauses at their longest, so that the signal falls at any point of the
/// standby's tries and the leader's renews. Without it the signal would
/// come just after the fresh standby's first try, and every failover
/// would wait a whole retry period.
fn pause_below() -> Duration {
    RETRY.mul_f64(2.0 * JITTER)
}

/// How much each measurement does in this kind of run.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Failovers per (store, cause).
    failovers: usize,
    /// Timed renews, and timed ticks, per store.
    ops: usize,
    /// Untimed ones before them.
    warm_up: usize,
}

fn plan(kind: RunKind) -> Plan {
    match kind {
        RunKind::Full => Plan {
            failovers: 20,
            ops: 500,
            warm_up: 50,
        },
        RunKind::Quick => Plan {
            failovers: 5,
            ops: 100,
            warm_up: 10,
        },
        RunKind::Smoke => Plan {
            failovers: 1,
            ops: 10,
            warm_up: 2,
        },
    }
}

/// What kills the leader.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cause {
    /// `SIGKILL`: the process ends at once, holding its lease.
    Kill,
    /// `SIGTERM`: the host stops gracefully and releases the lease.
    Term,
    /// The leader cut off from the store (`partition.rs`): it keeps
    /// running, and stops acting at its renew deadline.
    Partition,
}

impl Cause {
    /// The causes a signal makes, alternated on every store.
    const BOTH: [Cause; 2] = [Cause::Kill, Cause::Term];
    const ALL: [Cause; 3] = [Cause::Kill, Cause::Term, Cause::Partition];

    fn label(self) -> &'static str {
        match self {
            Cause::Kill => "`kill -9`",
            Cause::Term => "SIGTERM (graceful stop)",
            Cause::Partition => "partition (the leader cut off from the store)",
        }
    }

    /// Signals `process`.
    fn send(self, process: &mut KillOnDrop) {
        match self {
            Cause::Kill => process.kill(),
            Cause::Partition => unreachable!("a partition is a cut, not a signal"),
            // std sends only SIGKILL, and the workspace forbids unsafe code.
            Cause::Term => {
                let status = Command::new("kill")
                    .args(["-s", "TERM", &process.id().to_string()])
                    .status()
                    .expect("the bench can run `kill`");
                assert!(
                    status.success(),
                    "`kill -s TERM {}` failed: {status}",
                    process.id()
                );
            }
        }
    }
}

/// The stores the failover runs against.
#[derive(Clone, Debug)]
enum Backend {
    File(PathBuf),
    Postgres {
        url: String,
        schema: String,
    },
    /// A store `cluster_store_for_url` opens, its keys under `prefix`.
    Url {
        label: &'static str,
        url: String,
        prefix: String,
        /// How much later than its time to live an expired lease goes:
        /// etcd deletes an expired lease's keys at its next check (every
        /// half second).
        expiry: Duration,
    },
}

impl Backend {
    fn label(&self) -> &'static str {
        match self {
            Backend::File(_) => "file lock",
            Backend::Postgres { .. } => "PostgreSQL",
            Backend::Url { label, .. } => label,
        }
    }

    /// The store's part of the child's command line.
    fn args(&self) -> Vec<String> {
        match self {
            Backend::File(dir) => vec!["file".to_owned(), dir.display().to_string()],
            Backend::Postgres { url, schema } => {
                vec!["postgres".to_owned(), url.clone(), schema.clone()]
            }
            Backend::Url { url, prefix, .. } => {
                vec!["url".to_owned(), url.clone(), prefix.clone()]
            }
        }
    }

    /// The part of a failover by `cause` that does not grow with the
    /// timings: etcd's expiry check after a lease is left to expire.
    fn fixed(&self, cause: Cause) -> Duration {
        match (self, cause) {
            (Backend::Url { expiry, .. }, Cause::Kill | Cause::Partition) => *expiry,
            _ => Duration::ZERO,
        }
    }

    /// The timing that bounds a failover by `cause`, at the short timings
    /// and at the defaults, and how it reads: the retry period (and its
    /// jitter) after a graceful stop, or after a kill where the OS drops
    /// the file lock at once; the lease and then the retry period after a
    /// kill that leaves a row or a key to expire.
    fn bound(&self, cause: Cause) -> (Duration, Duration, &'static str) {
        match (self, cause) {
            (Backend::Url { expiry, .. }, Cause::Kill | Cause::Partition) if !expiry.is_zero() => (
                LEASE + *expiry + RETRY.mul_f64(JITTER),
                DEFAULT_LEASE + *expiry + DEFAULT_RETRY.mul_f64(JITTER),
                "lease + 0.5 s + 1.2 × retry",
            ),
            (Backend::Postgres { .. } | Backend::Url { .. }, Cause::Kill | Cause::Partition) => (
                LEASE + RETRY.mul_f64(JITTER),
                DEFAULT_LEASE + DEFAULT_RETRY.mul_f64(JITTER),
                "lease + 1.2 × retry",
            ),
            _ => (
                RETRY.mul_f64(JITTER),
                DEFAULT_RETRY.mul_f64(JITTER),
                "1.2 × retry",
            ),
        }
    }
}

/// What an instance said.
#[derive(Debug)]
enum Event {
    /// Its `LEADING <token> <unix nanos>` line.
    Leading { token: u64, at: SystemTime },
    /// Its log's `stands by` line: it campaigned and found a leader.
    StandingBy,
    /// Its standard output closed: it exited.
    Closed,
}

/// One running instance of `cluster-process`.
struct Instance {
    id: String,
    process: KillOnDrop,
    events: Receiver<Event>,
    /// Its last lines of standard error, for a failure's message.
    log: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    fn spawn(id: String, backend: &Backend) -> Self {
        Self::spawn_in(id, backend, &[])
    }

    /// The same, run under `wrap` (`ip netns exec <namespace>`, which
    /// keeps the process id, so that a kill reaches the host itself).
    fn spawn_in(id: String, backend: &Backend, wrap: &[String]) -> Self {
        let mut child = host_test::netns::wrapped(wrap, BINARY)
            .arg(&id)
            .args([LEASE, RENEW_DEADLINE, RETRY].map(|timing| timing.as_millis().to_string()))
            .args(backend.args())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the bench can run cluster-process");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let process = KillOnDrop::new(child);
        let (sender, events) = channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        read_stdout(stdout, sender.clone());
        read_stderr(stderr, sender, log.clone());
        Self {
            id,
            process,
            events,
            log,
        }
    }

    /// Waits for its `LEADING` line (ignoring its standing by).
    fn leading(&self, store: &str) -> (u64, SystemTime) {
        loop {
            match self.next(store, "lead") {
                Event::Leading { token, at } => return (token, at),
                Event::StandingBy => {}
                Event::Closed => self.fail(store, "exited before it led"),
            }
        }
    }

    /// Waits until it stands by.
    fn standing_by(&self, store: &str) {
        match self.next(store, "stand by") {
            Event::StandingBy => {}
            Event::Leading { token, .. } => self.fail(
                store,
                &format!("led (fencing token {token}) while another instance led"),
            ),
            Event::Closed => self.fail(store, "exited before it stood by"),
        }
    }

    fn next(&self, store: &str, what: &str) -> Event {
        match self.events.recv_timeout(HANG) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => {
                self.fail(store, &format!("did not {what} within {HANG:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => self.fail(store, "closed its output"),
        }
    }

    fn fail(&self, store: &str, what: &str) -> ! {
        let log = self
            .log
            .lock()
            .map(|log| log.join("\n"))
            .unwrap_or_default();
        panic!(
            "instance `{}` (pid {}) on the {store} store {what}; its last log lines:\n{log}",
            self.id,
            self.process.id()
        );
    }
}

/// Sends each `LEADING` line, then `Closed` at the end of the output.
fn read_stdout(stdout: std::process::ChildStdout, events: Sender<Event>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut fields = line.split_whitespace();
            if fields.next() != Some("LEADING") {
                continue;
            }
            let token = fields.next().and_then(|token| token.parse().ok());
            let nanos = fields.next().and_then(|nanos| nanos.parse::<u64>().ok());
            if let (Some(token), Some(nanos)) = (token, nanos) {
                let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
                let _ = events.send(Event::Leading { token, at });
            }
        }
        let _ = events.send(Event::Closed);
    });
}

/// Sends `StandingBy` for each `stands by` log line and keeps the last
/// lines; reads to the end, so that the child never blocks on a full pipe.
fn read_stderr(
    stderr: std::process::ChildStderr,
    events: Sender<Event>,
    log: Arc<Mutex<Vec<String>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("stands by") {
                let _ = events.send(Event::StandingBy);
            }
            if let Ok(mut log) = log.lock() {
                if log.len() == 20 {
                    log.remove(0);
                }
                log.push(line);
            }
        }
    });
}

/// One failover.
#[derive(Debug)]
struct Failover {
    cause: Cause,
    took: Duration,
}

/// Two instances on `backend`; `plan.failovers` rounds of each cause,
/// alternated.
fn failovers(backend: &Backend, plan: Plan, random: &mut Random) -> Vec<Failover> {
    let store = backend.label();
    let mut started = 0;
    let mut spawn = || {
        started += 1;
        Instance::spawn(format!("bench-{}-{started}", std::process::id()), backend)
    };
    let mut leader = spawn();
    let (mut token, _) = leader.leading(store);
    let mut standby = spawn();
    standby.standing_by(store);
    let mut results = Vec::new();
    for round in 0..plan.failovers * 2 {
        let cause = Cause::BOTH[round % 2];
        std::thread::sleep(random.pause(pause_below()));
        let before = SystemTime::now();
        cause.send(&mut leader.process);
        let (next, at) = standby.leading(store);
        let took = at.duration_since(before).unwrap_or_else(|_| {
            standby.fail(
                store,
                "printed a time of leading before the leader was signalled",
            )
        });
        assert!(
            next > token,
            "on the {store} store, the new term's fencing token {next} is not above {token}"
        );
        token = next;
        let status = leader.process.reap(EXIT_WITHIN);
        check_exit(&leader, store, cause, status);
        results.push(Failover { cause, took });
        leader = standby;
        standby = spawn();
        standby.standing_by(store);
    }
    results
}

/// A gracefully stopped leader exits by itself, with success.
fn check_exit(leader: &Instance, store: &str, cause: Cause, status: Option<ExitStatus>) {
    if cause == Cause::Term {
        match status {
            Some(status) if status.success() => {}
            Some(status) => leader.fail(store, &format!("exited with {status} after SIGTERM")),
            None => leader.fail(
                store,
                &format!("did not exit within {EXIT_WITHIN:?} of SIGTERM"),
            ),
        }
    }
}

/// The value at `fraction` of `values` (nearest rank).
fn percentile(values: &[f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1e3)
}

fn seconds(value: f64) -> String {
    format!("{value:.2} s")
}

/// Microseconds to two decimals (a no-op future is a few hundredths), or
/// milliseconds from one.
fn micros(nanos: f64) -> String {
    if nanos < 1e6 {
        format!("{:.2} µs", nanos / 1e3)
    } else {
        format!("{:.2} ms", nanos / 1e6)
    }
}

/// The failovers measured on one store, or (its label and) why it was
/// skipped.
type Measured = Result<(Backend, Vec<Failover>), (&'static str, String)>;

fn failover_section(out: &mut String, plan: Plan, seed: u64, measured: &[Measured]) {
    let _ = writeln!(
        out,
        "#### Failover\n\n\
         Two instances of `cluster-process` (a host with the defaults and one cluster \
         singleton); the leader is signalled, the time taken just before the signal; the \
         failover ends when the other prints that it leads. Then a fresh instance starts as \
         the standby, and once it stands by the bench waits a random pause, uniform below {} \
         (seed {seed}; `{SEED_VARIABLE}={seed}` replays it), before the next signal. {} \
         rounds per cause, the signals alternated; a partition's rounds on a server of the \
         bench's own (PostgreSQL, Redis, or three etcd members) in a network namespace, the two \
         instances in two more, the leader cut off from the server's address \
         (`benches/cluster/partition.rs`). Timings: lease {}, renew \
         deadline {}, retry {} (the defaults: {}, {}, {}). Scaled to the defaults by the ratio \
         of the timing that bounds the failover: the retry period after a graceful stop or a \
         file-lock kill ({:.1}x), lease + retry after a kill or a partition that leaves a lease \
         to expire ({:.2}x, etcd's half second of expiry check not scaled); the fixed part \
         (exit, the store's round trips) is scaled along, so those figures are slightly high.\n",
        millis(pause_below()),
        plan.failovers,
        millis(LEASE),
        millis(RENEW_DEADLINE),
        millis(RETRY),
        seconds(DEFAULT_LEASE.as_secs_f64()),
        seconds(DEFAULT_RENEW_DEADLINE.as_secs_f64()),
        seconds(DEFAULT_RETRY.as_secs_f64()),
        DEFAULT_RETRY.as_secs_f64() / RETRY.as_secs_f64(),
        (DEFAULT_LEASE + DEFAULT_RETRY).as_secs_f64() / (LEASE + RETRY).as_secs_f64(),
    );
    let _ = writeln!(
        out,
        "| store | cause | runs | p50 | max | p50 / bound | over the bound | bound | at the \
         defaults: p50 | max | bound |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|");
    for measured in measured {
        let (backend, results) = match measured {
            Ok(measured) => measured,
            Err((label, skipped)) => {
                let _ = writeln!(out, "| {label} | | {skipped} | | | | | | | | |");
                continue;
            }
        };
        for cause in Cause::ALL {
            let took: Vec<f64> = results
                .iter()
                .filter(|result| result.cause == cause)
                .map(|result| result.took.as_secs_f64())
                .collect();
            if took.is_empty() {
                continue;
            }
            let (bound, default_bound, reads) = backend.bound(cause);
            // etcd's expiry check takes as long at any timings: not scaled.
            let fixed = backend.fixed(cause).as_secs_f64();
            let scale = (default_bound.as_secs_f64() - fixed) / (bound.as_secs_f64() - fixed);
            let scaled = |took: f64| fixed + (took - fixed).max(0.0) * scale;
            let p50 = common::median(&took);
            let max = took.iter().copied().fold(0.0, f64::max);
            let over = took
                .iter()
                .filter(|&&took| took > bound.as_secs_f64())
                .count();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {over} | {reads} = {} | {} | {} | {} |",
                backend.label(),
                cause.label(),
                took.len(),
                millis(Duration::from_secs_f64(p50)),
                millis(Duration::from_secs_f64(max)),
                common::ratio(p50 / bound.as_secs_f64()),
                millis(bound),
                seconds(scaled(p50)),
                seconds(scaled(max)),
                seconds(default_bound.as_secs_f64()),
            );
        }
    }
}

/// A store opened from a URL, or why it was not measured.
type Opened = Result<Arc<dyn ClusterStore>, String>;

/// The stores the in-process measurements run against.
struct Stores {
    in_process: InProcessStore,
    file: FileLockStore,
    postgres: Result<PostgresStore, String>,
    /// The stores opened from a URL (Redis), each with its label.
    others: Vec<(&'static str, Opened)>,
}

impl Stores {
    /// Each store with its label, or why it was not measured.
    fn rows(&self) -> Vec<(&'static str, Result<&dyn ClusterStore, &str>)> {
        let mut rows: Vec<(&'static str, Result<&dyn ClusterStore, &str>)> = vec![
            ("in-process", Ok(&self.in_process)),
            ("file lock", Ok(&self.file)),
            (
                "PostgreSQL",
                self.postgres
                    .as_ref()
                    .map(|store| store as &dyn ClusterStore)
                    .map_err(String::as_str),
            ),
        ];
        for (label, store) in &self.others {
            rows.push((
                label,
                store.as_ref().map(|store| &**store).map_err(String::as_str),
            ));
        }
        rows
    }
}

/// Times `renew` of a held lease, one by one.
async fn renew_times(store: &dyn LeaseStore, plan: Plan) -> Vec<f64> {
    let ttl = Duration::from_secs(60);
    let lease = store
        .try_acquire("renew", "bench", ttl)
        .await
        .expect("the store answers")
        .expect("the lease `renew` is free");
    let mut times = Vec::with_capacity(plan.ops);
    for index in 0..plan.warm_up + plan.ops {
        let began = Instant::now();
        let renewed = store.renew(&lease, ttl).await.expect("the store answers");
        let took = began.elapsed();
        assert!(renewed, "the lease `renew` was lost at renew {index}");
        if index >= plan.warm_up {
            times.push(took.as_nanos() as f64);
        }
    }
    store.release(&lease).await.expect("the store answers");
    times
}

/// How often the tick measurement purges its past ticks (untimed), as a
/// schedule would: the file-lock store rewrites a job's whole record.
const PURGE_EVERY: usize = 50;

/// Times `try_claim` of a new tick and `finish` of its claim, together.
async fn tick_times(store: &dyn ClaimStore, plan: Plan) -> Vec<f64> {
    let base = SystemTime::UNIX_EPOCH
        + Duration::from_millis(
            u64::try_from(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_millis(),
            )
            .expect("in range"),
        );
    let mut times = Vec::with_capacity(plan.ops);
    for index in 0..plan.warm_up + plan.ops {
        let tick = base + Duration::from_secs(index as u64);
        if index > 0 && index % PURGE_EVERY == 0 {
            store.purge("tick", tick).await.expect("the store answers");
        }
        let began = Instant::now();
        let outcome = store
            .try_claim("tick", tick, "bench", None)
            .await
            .expect("the store answers");
        let ClaimOutcome::Claimed(claim) = outcome else {
            panic!("tick {index} of the job `tick` was taken: {outcome:?}");
        };
        store.finish(&claim).await.expect("the store answers");
        let took = began.elapsed();
        if index >= plan.warm_up {
            times.push(took.as_nanos() as f64);
        }
    }
    times
}

/// A local tick's cost: awaiting a future that does nothing.
async fn local_times(plan: Plan) -> Vec<f64> {
    let mut times = Vec::with_capacity(plan.ops);
    for index in 0..plan.warm_up + plan.ops {
        let began = Instant::now();
        std::hint::black_box(async {}).await;
        let took = began.elapsed();
        if index >= plan.warm_up {
            times.push(took.as_nanos() as f64);
        }
    }
    times
}

fn costs_section(out: &mut String, plan: Plan, stores: &Stores, runtime: &Runtime) {
    let _ = writeln!(
        out,
        "\n#### Renew cost\n\n\
         `renew` of a held lease (time to live 60 s), {} renews timed one by one after {} \
         untimed, in this process (a multi-thread runtime, as `#[tokio::main]`).\n",
        plan.ops, plan.warm_up
    );
    let _ = writeln!(out, "| store | renews | p50 | p99 |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (label, store) in stores.rows() {
        match store {
            Ok(store) => {
                let times = runtime.block_on(renew_times(store, plan));
                let _ = writeln!(
                    out,
                    "| {label} | {} | {} | {} |",
                    times.len(),
                    micros(common::median(&times)),
                    micros(percentile(&times, 0.99))
                );
            }
            Err(skipped) => {
                let _ = writeln!(out, "| {label} | {skipped} | | |");
            }
        }
    }

    let _ = writeln!(
        out,
        "\n#### Cluster tick cost\n\n\
         What a cluster-wide tick adds over a local one: `try_claim` of a new tick (no \
         recovery deadline) and `finish` of its claim, timed together, {} ticks after {} \
         untimed; the job's past ticks purged every {PURGE_EVERY} ticks (untimed), as a \
         schedule would. A local tick claims nothing: its cost is awaiting a no-op future, \
         timed the same way.\n",
        plan.ops, plan.warm_up
    );
    let _ = writeln!(out, "| store | ticks | p50 | p99 | p50 added over local |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    let local = runtime.block_on(local_times(plan));
    let local_p50 = common::median(&local);
    let _ = writeln!(
        out,
        "| local (a no-op future) | {} | {} | {} | |",
        local.len(),
        micros(local_p50),
        micros(percentile(&local, 0.99))
    );
    for (label, store) in stores.rows() {
        match store {
            Ok(store) => {
                let times = runtime.block_on(tick_times(store, plan));
                let p50 = common::median(&times);
                let _ = writeln!(
                    out,
                    "| {label} | {} | {} | {} | {} |",
                    times.len(),
                    micros(p50),
                    micros(percentile(&times, 0.99)),
                    micros(p50 - local_p50)
                );
            }
            Err(skipped) => {
                let _ = writeln!(out, "| {label} | {skipped} | | | |");
            }
        }
    }
}

/// A directory of the bench's own, removed at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The bench's PostgreSQL schema, dropped at the end (a panic's unwinding
/// included).
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn namespace(&self) -> Namespace {
        Namespace::new(&self.name, "host_").expect("a valid schema name")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let dropped = runtime.block_on(async {
            let store = PostgresOptions::new(&self.url)
                .map_err(|error| error.to_string())?
                .namespace(self.namespace())
                .migrate_on_connect(false)
                .connect()
                .await
                .map_err(|error| error.to_string())?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                .execute(store.pool())
                .await
                .map_err(|error| error.to_string())
        });
        if let Err(error) = dropped {
            eprintln!(
                "the bench's schema `{}` was not dropped: {error}",
                self.name
            );
        }
    }
}

/// The bench's Redis keys, deleted at the end (a panic's unwinding
/// included).
struct RedisPrefix {
    url: String,
    prefix: String,
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let deleted = redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection())
            .and_then(|mut connection| {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", self.prefix))
                    .query(&mut connection)?;
                if keys.is_empty() {
                    return Ok(());
                }
                redis::cmd("DEL").arg(keys).query::<()>(&mut connection)
            });
        if let Err(error) = deleted {
            eprintln!(
                "the bench's Redis keys `{}*` were not deleted: {error}",
                self.prefix
            );
        }
    }
}

/// How much later than its time to live etcd deletes an expired lease's
/// keys at most: its leader checks every half second.
const ETCD_EXPIRY: Duration = Duration::from_millis(500);

/// What names the bench to the launchers of its servers and namespaces.
const LABEL: &str = "cluster bench";

/// Why a partition's rows were skipped: no network namespaces here.
const NO_NAMESPACES: &str = "no network namespace can be made (root and `ip` are needed)";

/// The failovers after a partition from a server of the bench's own,
/// which `start` runs inside the server namespace (returning what stops it
/// when dropped, and the store on it), or why they were skipped.
fn partition_from<S>(
    label: &'static str,
    plan: Plan,
    random: &mut Random,
    start: impl FnOnce(&Member) -> Result<(S, Backend), String>,
) -> Measured {
    let skipped = |why: &str| Err((label, format!("partition skipped: {why}")));
    let Some(mut network) = Network::new(LABEL) else {
        return skipped(NO_NAMESPACES);
    };
    let server = network.add("server");
    let instances = [network.add("a"), network.add("b")];
    let (running, backend) = match start(&server) {
        Ok(started) => started,
        Err(why) => return skipped(&why),
    };
    let place = Partitioned {
        network: &network,
        instances,
        store_address: server.address.clone(),
    };
    let results = partition::failovers(&backend, &place, plan, random);
    // The server ends before its namespace goes.
    drop(running);
    Ok((backend, results))
}

/// A PostgreSQL server of the bench's own in `server`'s namespace.
fn postgres_inside(server: &Member) -> Result<(PostgresServer, Backend), String> {
    let database = PostgresServer::start_at(
        LABEL,
        std::slice::from_ref(&server.address),
        5432,
        &server.exec(),
    )
    .ok_or("no PostgreSQL server binaries to run one of its own")?;
    let backend = Backend::Url {
        label: "PostgreSQL",
        url: database.url_at(&server.address),
        prefix: "host_".to_owned(),
        expiry: Duration::ZERO,
    };
    Ok((database, backend))
}

/// A `redis-server` of the bench's own in `server`'s namespace.
fn redis_inside(server: &Member) -> Result<(RedisServer, Backend), String> {
    let redis = RedisServer::start_at(LABEL, &server.address, 6379, &server.exec())
        .ok_or("redis-server cannot be started")?;
    let backend = Backend::Url {
        label: "Redis",
        url: redis.url(),
        prefix: "host:".to_owned(),
        expiry: Duration::ZERO,
    };
    Ok((redis, backend))
}

/// Three etcd members of the bench's own in `server`'s namespace, on its
/// one address: a cut takes all three away.
fn etcd_inside(server: &Member, prefix: &str) -> Result<(EtcdCluster, Backend), String> {
    let etcd = EtcdLauncher::new()
        .members(3)
        .inside(&server.exec(), &server.address)
        .start()
        .ok_or("etcd cannot be started (no `etcd` binary)")?;
    let backend = Backend::Url {
        label: "etcd",
        url: etcd.url(),
        prefix: prefix.to_owned(),
        expiry: ETCD_EXPIRY,
    };
    Ok((etcd, backend))
}

fn main() -> ExitCode {
    let kind = common::run_kind();
    let plan = plan(kind);
    let began = Instant::now();
    let mut out = common::header("What scale-out costs (benches/cluster.rs)");
    let pid = std::process::id();
    let scratch = Scratch(std::env::temp_dir().join(format!("hc-bench-{pid}")));
    let schema = std::env::var(POSTGRES_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
        .map(|url| Schema {
            url,
            name: format!("hc_bench_{pid}"),
        });
    let skipped = format!("skipped: {POSTGRES_VARIABLE} unset");
    let redis = std::env::var(REDIS_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
        .map(|url| RedisPrefix {
            url,
            prefix: format!("hc-bench-{pid}:"),
        });
    let redis_skipped = format!("skipped: {REDIS_VARIABLE} unset");
    let etcd = EtcdCluster::single();
    let etcd_prefix = format!("hc-bench-{pid}/");
    let etcd_skipped = "skipped: etcd cannot be started (no `etcd` binary)".to_owned();

    let failover_dir = scratch.0.join("failover");
    std::fs::create_dir_all(&failover_dir).expect("the bench can make its scratch directory");
    let backends = [
        Ok(Backend::File(failover_dir)),
        schema
            .as_ref()
            .map(|schema| Backend::Postgres {
                url: schema.url.clone(),
                schema: schema.name.clone(),
            })
            .ok_or_else(|| ("PostgreSQL", skipped.clone())),
        redis
            .as_ref()
            .map(|redis| Backend::Url {
                label: "Redis",
                url: redis.url.clone(),
                prefix: redis.prefix.clone(),
                expiry: Duration::ZERO,
            })
            .ok_or_else(|| ("Redis", redis_skipped.clone())),
        etcd.as_ref()
            .map(|etcd| Backend::Url {
                label: "etcd",
                url: etcd.url(),
                prefix: etcd_prefix.clone(),
                expiry: ETCD_EXPIRY,
            })
            .ok_or_else(|| ("etcd", etcd_skipped.clone())),
    ];
    let seed = Random::seed();
    let mut random = Random(seed);
    let mut measured: Vec<Measured> = backends
        .into_iter()
        .map(|backend| {
            backend.map(|backend| {
                let results = failovers(&backend, plan, &mut random);
                (backend, results)
            })
        })
        .collect();
    measured.push(partition_from(
        "PostgreSQL",
        plan,
        &mut random,
        postgres_inside,
    ));
    measured.push(partition_from("Redis", plan, &mut random, redis_inside));
    measured.push(partition_from("etcd", plan, &mut random, |server| {
        etcd_inside(server, &etcd_prefix)
    }));
    let _ = writeln!(out);
    failover_section(&mut out, plan, seed, &measured);

    // One runtime for the in-process measurements: a pool's connections
    // belong to the runtime that made them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let postgres = match &schema {
        Some(schema) => {
            let options = PostgresOptions::new(&schema.url)
                .expect("HOST_TEST_POSTGRES_URL is a PostgreSQL URL")
                .namespace(schema.namespace());
            Ok(runtime
                .block_on(options.connect())
                .expect("the PostgreSQL store connects"))
        }
        None => Err(skipped),
    };
    let stores = Stores {
        in_process: InProcessStore::new(),
        file: FileLockStore::new(scratch.0.join("costs")),
        postgres,
        others: vec![
            (
                "Redis",
                match &redis {
                    Some(redis) => cluster_store_for_url(&redis.url, None, Some(&redis.prefix))
                        .map_err(|error| error.to_string()),
                    None => Err(redis_skipped),
                },
            ),
            (
                "etcd",
                match &etcd {
                    Some(etcd) => cluster_store_for_url(&etcd.url(), None, Some(&etcd_prefix))
                        .map_err(|error| error.to_string()),
                    None => Err(etcd_skipped),
                },
            ),
        ],
    };
    costs_section(&mut out, plan, &stores, &runtime);
    if let Ok(postgres) = &stores.postgres {
        runtime.block_on(postgres.pool().close());
    }
    drop(stores);
    drop(runtime);
    drop(schema);
    drop(redis);
    drop(etcd);
    drop(scratch);
    let _ = writeln!(out, "\n{}", common::footer(began));
    println!("{out}");
    ExitCode::SUCCESS
}
