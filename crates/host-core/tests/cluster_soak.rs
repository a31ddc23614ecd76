//! A cluster-wide schedule under random kills: 3 to 5 real processes (this
//! test binary's `child` test) run one periodic service on a cron schedule
//! of every second, while instances are killed (`kill -9`) and restarted at
//! random, for each store (the file lock under one shared content root,
//! PostgreSQL in a schema of the test's own, Redis under a key prefix of
//! the test's own, which needs `HOST_TEST_REDIS_URL`, and an etcd of the
//! test's own, which needs the `etcd` binary) and each mode (at most once,
//! at least once). Each run records that it started, works 300 ms, then
//! writes its tick to a target table in PostgreSQL through the fence (the
//! fence check and the insert in one transaction); the table has no unique
//! constraint, so that a double write shows. Needs `HOST_TEST_POSTGRES_URL`
//! for the target table (each test prints that it was skipped without it).
//!
//! `HOST_CLUSTER_SOAK_SECS` sets how long instances are killed (15 s by
//! default); every test prints its seed, and `HOST_CLUSTER_SOAK_SEED`
//! replays it (the number of instances, when and which to kill).
//!
//! What is checked, from the table, over every tick from the first written
//! to the one 2 s before the instances were stopped (their runs had ended
//! by then):
//!
//! - **At most once** (`ClusterWide::new()`, `Overlap::Skip`): no tick
//!   written twice. A tick may be missing only when the claim store says
//!   it was claimed by an instance that was killed, its claim left open
//!   (it died before writing), or when it was skipped for overlap
//!   (logged): a run killed midway holds `<job>.running` until it expires
//!   (5 s; the file lock frees it at once), and the ticks claimed meanwhile
//!   are skipped.
//! - **At least once** (`.at_least_once(3 s)`, `Overlap::Skip`): every tick
//!   written exactly once. The writer is idempotent, as the design asks of
//!   work run at least once: in the fenced transaction it writes only if
//!   the key is not written yet (the fence's row lock orders the writers,
//!   so that read is not racy). A claim left unfinished (its instance was
//!   killed) is claimed again when some instance looks at it past its
//!   deadline: each due tick looks at the latest tick at least the
//!   deadline before it and the one before that, so the tick `t`, claimed
//!   a little after `t`, is looked at past its deadline at `t + 4 s` and
//!   `t + 5 s`, by every live instance. The killer keeps at least two
//!   instances alive, so those looks happen, and a tick may be missing
//!   only when it was skipped for overlap (logged: a due tick while another
//!   runs; a recovered one waits for the dead run's `<job>.running` lease
//!   to expire instead, and is left unfinished if another tick still holds
//!   it) — or when the claim store says its last claim, left
//!   open, was a rerun (attempt 2 or more) by an instance that was
//!   killed: nobody looks at the tick again after the rerun's own
//!   deadline. A first claim by a killed instance, never recovered, fails
//!   the test.
//! - Both modes: a tick nobody claimed when it was due, because each
//!   instance that looked skipped it as its own previous run still went
//!   (logged; as on start, when the first runs wait for the database), may
//!   be missing too: that is the local overlap rule, and recovery reruns
//!   claims only (a recovery look that claims such a tick finishes it).
//! - Both modes: no two written runs of different tokens overlapped in
//!   time (each run's interval is from its recorded start, before the
//!   300 ms of work, to its commit); no write rejected by the fence, and
//!   none failed.
//!
//! The gaps are counted by cause and printed.
#![cfg(unix)]

#[path = "common/fenced/mod.rs"]
mod fenced;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use host_cluster::postgres::{Fence, FenceError, Namespace};
use host_core::{
    ClusterWide, Host, PeriodicService, RunContext, Schedule, ServiceError, TickClaim, async_trait,
};
use host_test::{EtcdCluster, HostProcess, child_test};
use sqlx::{PgPool, Row};

/// The variable that makes the `child` test run an instance:
/// `backend|mode|url|schema|content root|id|store URL|store prefix` (the
/// last two empty but for Redis and etcd).
const SCENARIO: &str = "HOST_CLUSTER_SOAK_CHILD";

/// The job's name in the claim store, and the fence's name for it.
const JOB: &str = "soak";

/// How long each run works before its write.
const WORK: Duration = Duration::from_millis(300);

/// The claim deadline in the at-least-once mode.
const CLAIM_DEADLINE: Duration = Duration::from_secs(3);

/// Where the instances keep their claims and leases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// The default store: a file lock under the shared content root.
    FileLock,
    /// `cluster.postgres.url` and `cluster.postgres.schema`.
    Postgres,
    /// `cluster.redis.url` and `cluster.redis.prefix`.
    Redis,
    /// `cluster.etcd.url` and `cluster.etcd.prefix`.
    Etcd,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::FileLock => "file_lock",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Etcd => "etcd",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    AtMostOnce,
    AtLeastOnce,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::AtMostOnce => "at_most_once",
            Self::AtLeastOnce => "at_least_once",
        }
    }
}

/// The periodic service: records its run, works, writes its tick through
/// the fence. A write the fence rejects, or that fails, is said on
/// standard error (`REJECTED`, `FAILED`) and the run still succeeds: a
/// failed run would end the service, and the test counts these lines.
struct Ticker {
    pool: PgPool,
    fence: Fence,
    schema: String,
    instance: String,
    idempotent: bool,
}

enum WriteError {
    Fenced(FenceError),
    Other(String),
}

type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[async_trait]
impl PeriodicService for Ticker {
    async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
        let Some(claim) = ctx.tick_claim().cloned() else {
            return Ok(());
        };
        let key = claim.idempotency_key().to_owned();
        match self.work(&claim).await {
            Ok(true) => {}
            Ok(false) => eprintln!("ALREADY {key}"),
            Err(WriteError::Fenced(error)) => eprintln!("REJECTED {key}: {error}"),
            Err(WriteError::Other(error)) => eprintln!("FAILED {key}: {error}"),
        }
        Ok(())
    }
}

impl Ticker {
    /// Boxed as `Send` here, where the connection's lifetimes are concrete
    /// (sqlx's executors trip the `Send` check of a generic async fn).
    fn work<'a>(&'a self, claim: &'a TickClaim) -> Boxed<'a, Result<bool, WriteError>> {
        Box::pin(self.work_unboxed(claim))
    }

    /// Whether the tick was written (`false`: written already).
    async fn work_unboxed(&self, claim: &TickClaim) -> Result<bool, WriteError> {
        let other = |error: sqlx::Error| WriteError::Other(error.to_string());
        let key = claim.idempotency_key();
        let token = i64::try_from(claim.token().get()).unwrap_or(i64::MAX);
        let schema = &self.schema;
        // The run's start, on the database's clock, before the work.
        sqlx::query(&format!(
            "INSERT INTO {schema}.runs (key, token, attempt, instance, started) \
             VALUES ($1, $2, $3, $4, clock_timestamp())"
        ))
        .bind(key)
        .bind(token)
        .bind(i32::try_from(claim.attempt()).unwrap_or(i32::MAX))
        .bind(&self.instance)
        .execute(&self.pool)
        .await
        .map_err(other)?;
        tokio::time::sleep(WORK).await;
        let mut tx = self.pool.begin().await.map_err(other)?;
        // At least once, a recovered tick may run after later ticks have
        // written: it is fenced by its own key, against earlier attempts of
        // the same tick only, as docs/scheduling.md advises.
        let fenced = if self.idempotent { key } else { JOB };
        match self.fence.check(&mut tx, fenced, claim.token()).await {
            Ok(()) => {}
            Err(stale @ FenceError::Stale { .. }) => return Err(WriteError::Fenced(stale)),
            Err(error) => return Err(WriteError::Other(error.to_string())),
        }
        if self.idempotent {
            // The fence's row stays locked until this transaction ends:
            // an earlier attempt's write is committed or not at all.
            let written: i64 = sqlx::query(&format!(
                "SELECT count(*) FROM {schema}.ticks WHERE idempotency_key = $1"
            ))
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(other)?
            .get(0);
            if written > 0 {
                tx.commit().await.map_err(other)?;
                return Ok(false);
            }
        }
        sqlx::query(&format!(
            "INSERT INTO {schema}.ticks (idempotency_key, token, started, ended) \
             SELECT key, token, started, clock_timestamp() FROM {schema}.runs \
             WHERE key = $1 AND token = $2 AND instance = $3"
        ))
        .bind(key)
        .bind(token)
        .bind(&self.instance)
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        tx.commit().await.map_err(other)?;
        Ok(true)
    }
}

#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let parts: Vec<&str> = scenario.split('|').collect();
    let [
        backend,
        mode,
        url,
        schema,
        root,
        id,
        store_url,
        store_prefix,
    ] = parts[..]
    else {
        panic!(
            "{SCENARIO}: backend|mode|url|schema|root|id|store url|store prefix, found {scenario}"
        );
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let code = runtime.block_on(async {
        let namespace = Namespace::new(schema, "host_").expect("a schema name");
        let pool = PgPool::connect(url).await.expect("the database");
        let mut args = vec!["child".to_owned(), format!("--cluster.instance_id={id}")];
        if backend == Backend::Postgres.name() {
            args.push(format!("--cluster.postgres.url={url}"));
            args.push(format!("--cluster.postgres.schema={schema}"));
        }
        for remote in [Backend::Redis, Backend::Etcd] {
            if backend == remote.name() {
                args.push(format!("--cluster.{backend}.url={store_url}"));
                args.push(format!("--cluster.{backend}.prefix={store_prefix}"));
            }
        }
        let at_least_once = mode == Mode::AtLeastOnce.name();
        let mut cluster_wide = ClusterWide::new().job(JOB);
        if at_least_once {
            cluster_wide = cluster_wide.at_least_once(CLAIM_DEADLINE);
        }
        let mut builder = Host::builder();
        builder.args(args);
        builder.content_root(root);
        builder.add_periodic_instance_with(
            Ticker {
                pool,
                fence: Fence::new(&namespace),
                schema: schema.to_owned(),
                instance: id.to_owned(),
                idempotent: at_least_once,
            },
            Schedule::cron("* * * * * *"),
            move |ticker| ticker.cluster_wide(cluster_wide.clone()),
        );
        builder.run().await
    });
    drop(runtime);
    host_test::exit_with(code);
}

/// An instance's process under one id; killed and reaped when dropped
/// (`HostProcess` does so), also when the test panics.
struct Incarnation {
    id: String,
    process: HostProcess,
}

/// A kill: whom, and when (wall clock).
struct Kill {
    id: String,
    at: SystemTime,
}

/// The cluster of one test: its schema (the target table, the runs, the
/// fence's table and, for PostgreSQL, the store's), its content root, the
/// instances running and those killed. The schema is dropped when the
/// checks passed, and kept (its name printed) when they failed.
struct Soak {
    test: String,
    backend: Backend,
    mode: Mode,
    url: String,
    schema: String,
    admin: PgPool,
    root: tempfile::TempDir,
    running: Vec<Incarnation>,
    ended: Vec<Incarnation>,
    kills: Vec<Kill>,
    started: usize,
    /// The Redis store's prefix (its keys deleted when dropped).
    redis: Option<fenced::RedisPrefix>,
    /// The etcd of the test's own, and what it saw of the claims.
    etcd: Option<EtcdClaims>,
}

impl Soak {
    async fn new(
        url: &str,
        redis: Option<fenced::RedisPrefix>,
        etcd: Option<EtcdClaims>,
        backend: Backend,
        mode: Mode,
    ) -> Self {
        let test = format!("{}_{}", backend.name(), mode.name());
        let schema = format!("hc_soak_{test}_{:08x}", fastrand::u32(..));
        println!("{test}: schema {schema}");
        let admin = PgPool::connect(url).await.unwrap();
        fenced::create_schema(
            &admin,
            &schema,
            "CREATE TABLE {schema}.ticks (idempotency_key text NOT NULL, token bigint NOT NULL,
                 started timestamptz NOT NULL, ended timestamptz NOT NULL);
             CREATE TABLE {schema}.runs (key text NOT NULL, token bigint NOT NULL,
                 attempt integer NOT NULL, instance text NOT NULL, started timestamptz NOT NULL)",
        )
        .await;
        Self {
            test,
            backend,
            mode,
            url: url.to_owned(),
            schema,
            admin,
            root: tempfile::tempdir().unwrap(),
            running: Vec::new(),
            ended: Vec::new(),
            kills: Vec::new(),
            started: 0,
            redis,
            etcd,
        }
    }

    /// Starts an instance under a new id.
    fn start(&mut self) {
        self.started += 1;
        let id = format!("{}-{}", self.test, self.started);
        let (store_url, store_prefix) = match (&self.redis, &self.etcd) {
            (Some(redis), _) => (redis.url.clone(), redis.prefix.clone()),
            (_, Some(etcd)) => (etcd.etcd.url(), etcd.prefix.clone()),
            (None, None) => (String::new(), String::new()),
        };
        let scenario = format!(
            "{}|{}|{}|{}|{}|{id}|{store_url}|{store_prefix}",
            self.backend.name(),
            self.mode.name(),
            self.url,
            self.schema,
            self.root.path().display()
        );
        let mut command: Command = child_test(SCENARIO, &scenario);
        command.env_remove("RUST_LOG");
        self.running.push(Incarnation {
            id,
            process: HostProcess::spawn(command),
        });
    }

    /// Kills the instance at `index` with SIGKILL and reaps it.
    fn kill(&mut self, index: usize) {
        let mut victim = self.running.swap_remove(index);
        victim.process.signal("KILL");
        let at = SystemTime::now();
        let _ = victim.process.wait_for_status(Instant::now());
        self.kills.push(Kill {
            id: victim.id.clone(),
            at,
        });
        self.ended.push(victim);
    }

    /// Stops every instance at once (SIGTERM) and waits for them.
    fn stop_all(&mut self) {
        for instance in &self.running {
            instance.process.signal("TERM");
        }
        for mut instance in self.running.drain(..) {
            let _ = instance.process.wait_for_status(Instant::now());
            self.ended.push(instance);
        }
    }

    /// Waits (bounded) until a tick was written.
    async fn until_written(&self) {
        for _ in 0..600 {
            if !self.ticks().await.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{}: no tick written within 60 s", self.test);
    }

    /// The rows written: key, token, started and ended (epoch seconds).
    async fn ticks(&self) -> Vec<Written> {
        sqlx::raw_sql(&format!(
            "SELECT idempotency_key, token, extract(epoch FROM started)::float8, \
             extract(epoch FROM ended)::float8 FROM {}.ticks ORDER BY started",
            self.schema
        ))
        .fetch_all(&self.admin)
        .await
        .unwrap()
        .iter()
        .map(|row| Written {
            key: row.get(0),
            token: row.get(1),
            started: row.get(2),
            ended: row.get(3),
        })
        .collect()
    }

    /// The runs recorded: key, attempt, instance.
    async fn runs(&self) -> Vec<(String, i32, String)> {
        sqlx::raw_sql(&format!(
            "SELECT key, attempt, instance FROM {}.runs",
            self.schema
        ))
        .fetch_all(&self.admin)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
    }

    /// The claim store's records of the job, by tick (ms since the epoch).
    async fn claims(&self) -> BTreeMap<u128, Claimed> {
        let claimed_at = |deadline_ms: Option<u64>| {
            // At least once, the deadline is the claim's time and the
            // claim deadline; at most once there is none.
            deadline_ms.map_or(UNIX_EPOCH, |ms| {
                UNIX_EPOCH + Duration::from_millis(ms) - CLAIM_DEADLINE
            })
        };
        match self.backend {
            Backend::Postgres => sqlx::raw_sql(&format!(
                "SELECT tick_ms, attempt, holder, \
                 (extract(epoch FROM deadline) * 1000)::bigint, finished \
                 FROM {}.host_claims WHERE job = '{JOB}'",
                self.schema
            ))
            .fetch_all(&self.admin)
            .await
            .unwrap()
            .iter()
            .map(|row| {
                let tick: i64 = row.get(0);
                let attempt: i32 = row.get(1);
                let deadline: Option<i64> = row.get(3);
                let claim = Claimed {
                    attempt: u32::try_from(attempt).unwrap(),
                    holder: row.get(2),
                    finished: row.get(4),
                    claimed_at: claimed_at(deadline.map(|ms| u64::try_from(ms).unwrap())),
                };
                (u128::try_from(tick).unwrap(), claim)
            })
            .collect(),
            // `tick <ms> <token> <attempt> <finished> <deadline> <holder>`
            // lines in the job's file.
            Backend::FileLock => {
                let dir = self.root.path().join(".host/leases/claims");
                let mut records = BTreeMap::new();
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.extension().is_none_or(|ext| ext != "claims") {
                        continue;
                    }
                    let text = std::fs::read_to_string(&path).unwrap();
                    for line in text.lines().filter(|line| line.starts_with("tick ")) {
                        let fields: Vec<&str> = line.splitn(7, ' ').collect();
                        let [_, tick, _, attempt, finished, deadline, holder] = fields[..] else {
                            panic!("{}: a claim line, found {line:?}", path.display());
                        };
                        let claim = Claimed {
                            attempt: attempt.parse().unwrap(),
                            holder: holder.to_owned(),
                            finished: finished == "finished",
                            claimed_at: claimed_at(deadline.parse().ok()),
                        };
                        records.insert(tick.parse().unwrap(), claim);
                    }
                }
                records
            }
            // A hash per tick, `<prefix>claim:<job>:<tick ms>`.
            Backend::Redis => {
                let redis = self.redis.as_ref().expect("a Redis prefix");
                let mut raw = redis.raw();
                let stem = redis.key(&format!("claim:{JOB}:"));
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{stem}*"))
                    .query(&mut raw)
                    .unwrap();
                let mut records = BTreeMap::new();
                for key in keys {
                    let fields: BTreeMap<String, String> =
                        redis::cmd("HGETALL").arg(&key).query(&mut raw).unwrap();
                    let field = |name: &str| {
                        fields
                            .get(name)
                            .unwrap_or_else(|| panic!("{key}: no field {name}: {fields:?}"))
                    };
                    let claim = Claimed {
                        attempt: field("attempt").parse().unwrap(),
                        holder: field("holder").clone(),
                        finished: field("finished") == "1",
                        claimed_at: claimed_at(
                            fields.get("deadline").and_then(|ms| ms.parse().ok()),
                        ),
                    };
                    let tick = key.strip_prefix(&stem).unwrap().parse().unwrap();
                    records.insert(tick, claim);
                }
                records
            }
            // `<attempt> <finished 0|1> <deadline 0|1> <holder>` under
            // `<prefix>claim/<job>/<tick ms, 20 digits>`; etcd keeps no
            // time, so a claim's is when the watch saw it written.
            Backend::Etcd => {
                let etcd = self.etcd.as_ref().expect("an etcd of the test's own");
                let at_least_once = self.mode == Mode::AtLeastOnce;
                etcd.claims()
                    .into_iter()
                    .map(|(tick, record, seen)| {
                        let fields: Vec<&str> = record.splitn(4, ' ').collect();
                        let [attempt, finished, _, holder] = fields[..] else {
                            panic!("tick {tick}: a claim record, found {record:?}");
                        };
                        let claim = Claimed {
                            attempt: attempt.parse().unwrap(),
                            holder: holder.to_owned(),
                            finished: finished == "1",
                            claimed_at: seen.filter(|_| at_least_once).unwrap_or(UNIX_EPOCH),
                        };
                        (tick, claim)
                    })
                    .collect()
            }
        }
    }

    /// Every line every instance wrote.
    fn lines(&self) -> impl Iterator<Item = &String> {
        self.ended
            .iter()
            .chain(&self.running)
            .flat_map(|instance| instance.process.lines())
    }

    async fn drop_schema(&self) {
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .execute(&self.admin)
            .await;
    }
}

/// An etcd of the test's own under a key prefix, and an `etcdctl watch`
/// of the job's claim keys from before the first instance starts: etcd
/// keeps no time with a key, so the watch notes when each claim was
/// written (when its line arrived, a few milliseconds late at most). The
/// watch is killed when dropped, the etcd too.
struct EtcdClaims {
    etcd: EtcdCluster,
    prefix: String,
    stem: String,
    watch: Child,
    /// Each line the watch printed, with when it arrived.
    seen: Arc<Mutex<Vec<(SystemTime, String)>>>,
}

impl EtcdClaims {
    fn watch(etcd: EtcdCluster, test: &str) -> Self {
        let prefix = format!("hc-soak/{test}/{:08x}/", fastrand::u32(..));
        println!("{test}: etcd prefix {prefix}");
        let stem = format!("{prefix}claim/{JOB}/");
        let mut watch = etcd
            .etcdctl_command()
            .args(["watch", "--prefix", &stem])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcdctl runs beside etcd");
        let stdout = watch.stdout.take().expect("a piped standard output");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push((SystemTime::now(), line));
            }
        });
        // The watch is on once a key written shows; one written before it
        // started watching does not, so the probe is written again until.
        let probe = format!("{stem}probe");
        let deadline = Instant::now() + host_test::NO_HANG;
        while !seen.lock().unwrap().iter().any(|(_, line)| *line == probe) {
            assert!(
                Instant::now() < deadline,
                "the watch of {stem} never saw {probe}"
            );
            etcd.etcdctl(&["put", &probe, "probe"])
                .expect("etcdctl put");
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd.etcdctl(&["del", &probe]).expect("etcdctl del");
        Self {
            etcd,
            prefix,
            stem,
            watch,
            seen,
        }
    }

    /// Each claim under the job's stem: its tick (ms since the epoch), its
    /// record, and when the watch saw the claim written (a record not
    /// finished), the last time if written more than once.
    fn claims(&self) -> Vec<(u128, String, Option<SystemTime>)> {
        let listed = self
            .etcd
            .etcdctl(&["get", "--prefix", &self.stem])
            .unwrap_or_else(|error| panic!("etcdctl get --prefix {}: {error}", self.stem));
        // `PUT`, the key, the value: one event in three lines.
        let mut claimed: BTreeMap<String, SystemTime> = BTreeMap::new();
        let seen = self.seen.lock().unwrap();
        for event in seen.windows(3) {
            let [(at, kind), (_, key), (_, value)] = event else {
                continue;
            };
            if kind == "PUT" && key.starts_with(&self.stem) && value.split(' ').nth(1) == Some("0")
            {
                claimed.insert(key.clone(), *at);
            }
        }
        let lines: Vec<&str> = listed.lines().collect();
        lines
            .chunks(2)
            .map(|pair| {
                let [key, record] = pair else {
                    panic!("etcdctl get: a key and its value, found {pair:?}");
                };
                let tick = key
                    .strip_prefix(&self.stem)
                    .and_then(|tick| tick.parse().ok())
                    .unwrap_or_else(|| panic!("a claim key under {}: {key}", self.stem));
                (tick, (*record).to_owned(), claimed.get(*key).copied())
            })
            .collect()
    }
}

impl Drop for EtcdClaims {
    fn drop(&mut self) {
        let _ = self.watch.kill();
        let _ = self.watch.wait();
    }
}

/// A tick's record in the claim store: its last claim.
#[derive(Debug)]
struct Claimed {
    attempt: u32,
    holder: String,
    /// When the claim was made (at least once), or the epoch.
    claimed_at: SystemTime,
    /// Whether its run ended (or it was skipped): a claim whose instance
    /// died first stays open.
    finished: bool,
}

/// Prints what every instance wrote, and the kills, when a check fails.
struct Report<'a>(&'a Soak);

impl Drop for Report<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let soak = self.0;
        for instance in soak.ended.iter().chain(&soak.running) {
            println!("{}: instance {} wrote:", soak.test, instance.id);
            for line in instance.process.lines() {
                println!("    {line}");
            }
        }
        for kill in &soak.kills {
            let at = humantime::format_rfc3339_millis(kill.at);
            println!("{}: killed {} at {at}", soak.test, kill.id);
        }
    }
}

#[derive(Debug, Clone)]
struct Written {
    key: String,
    token: i64,
    started: f64,
    ended: f64,
}

/// The key of the tick at `at`, as a run's claim gives it.
fn key_of(at: SystemTime) -> String {
    format!("{JOB}@{}", humantime::format_rfc3339_millis(at))
}

fn tick_of(key: &str) -> SystemTime {
    let at = key
        .strip_prefix(&format!("{JOB}@"))
        .unwrap_or_else(|| panic!("a key of job {JOB}: {key}"));
    humantime::parse_rfc3339(at).unwrap_or_else(|error| panic!("the key {key}: {error}"))
}

fn seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Why a tick between the first and the last is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    /// Skipped for overlap, as logged.
    SkippedForOverlap,
    /// Claimed last by an instance killed before it wrote (at least once:
    /// a rerun's claimer).
    ClaimerKilled,
    /// Not claimed when due: the instances that looked skipped it, as
    /// their own previous run still went.
    MissedWhenDue,
    /// None of the above: not allowed.
    Unexplained,
}

/// A number from the environment, or `default`.
fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}: a whole number, found {value:?}"))
    })
}

async fn soak(backend: Backend, mode: Mode) {
    let name = format!("{}_{}", backend.name(), mode.name());
    let Some(url) = fenced::postgres_url(&name) else {
        return;
    };
    let redis = if backend == Backend::Redis {
        let Some(redis) = fenced::redis_url(&name) else {
            return;
        };
        Some(fenced::RedisPrefix::new(&redis, &name))
    } else {
        None
    };
    let etcd = if backend == Backend::Etcd {
        let Some(etcd) = fenced::own_etcd(&name, 1) else {
            return;
        };
        Some(EtcdClaims::watch(etcd, &name))
    } else {
        None
    };
    let seed = setting("HOST_CLUSTER_SOAK_SEED", fastrand::u64(..));
    let secs = setting("HOST_CLUSTER_SOAK_SECS", 15);
    let mut rng = fastrand::Rng::with_seed(seed);
    let count = rng.usize(3..=5);
    println!(
        "{name}: seed {seed} (HOST_CLUSTER_SOAK_SEED={seed} replays it), {count} instances, \
         kills for {secs} s"
    );
    let mut soak = Soak::new(&url, redis, etcd, backend, mode).await;
    for _ in 0..count {
        soak.start();
    }
    soak.until_written().await;
    let chaos = Instant::now();
    while chaos.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(rng.u64(700..=2500))).await;
        // One at a time, restarted at once: at least two stay alive.
        let victim = rng.usize(..soak.running.len());
        soak.kill(victim);
        tokio::time::sleep(Duration::from_millis(rng.u64(0..=500))).await;
        soak.start();
    }
    // Quiet: the last kills' ticks are looked at past their deadline.
    tokio::time::sleep(CLAIM_DEADLINE + Duration::from_secs(4)).await;
    let stopped = SystemTime::now();
    soak.stop_all();
    let report = Report(&soak);
    check(&soak, stopped).await;
    drop(report);
    soak.drop_schema().await;
}

async fn check(soak: &Soak, stopped: SystemTime) {
    let name = &soak.test;
    let written = soak.ticks().await;
    let runs = soak.runs().await;
    let killed: BTreeSet<&str> = soak.kills.iter().map(|kill| kill.id.as_str()).collect();
    let schema = &soak.schema;

    // At most once per key, in either mode.
    let mut by_key: BTreeMap<SystemTime, Vec<&Written>> = BTreeMap::new();
    for row in &written {
        by_key.entry(tick_of(&row.key)).or_default().push(row);
    }
    let doubles: Vec<_> = by_key.values().filter(|rows| rows.len() > 1).collect();
    assert!(
        doubles.is_empty(),
        "{name}: ticks written twice (schema {schema} kept): {doubles:#?}"
    );

    // No two written runs of different tokens overlapped.
    for (i, a) in written.iter().enumerate() {
        for b in &written[i + 1..] {
            let apart = a.ended <= b.started || b.ended <= a.started;
            assert!(
                a.token == b.token || apart,
                "{name}: runs overlapped (schema {schema} kept):\n{a:?}\n{b:?}"
            );
        }
    }

    // Nothing rejected by the fence, nothing failed.
    let complaints: Vec<&String> = soak
        .lines()
        .filter(|line| line.starts_with("REJECTED") || line.starts_with("FAILED"))
        .collect();
    assert!(
        complaints.is_empty(),
        "{name}: writes rejected or failed (schema {schema} kept): {complaints:#?}"
    );

    let recovered = runs.iter().filter(|run| run.1 > 1).count();
    if soak.mode == Mode::AtMostOnce {
        assert_eq!(recovered, 0, "{name}: no tick is rerun at most once");
    }

    // Every tick in the window written, or missing for a reason allowed.
    let first = seconds(*by_key.keys().next().expect("ticks written"));
    // Up to 2 s before the stop: those ticks' runs had ended by then.
    let last = seconds(stopped) - 2;
    // The ticks skipped for overlap across the cluster (after their claim),
    // and those an instance skipped on its own, as its previous run still
    // went (before claiming them).
    let skipped = |reason: &str| -> BTreeSet<String> {
        soak.lines()
            .filter_map(|line| {
                let (_, after) = line.split_once("the tick of ")?;
                let (at, rest) = after.split_once(' ')?;
                rest.starts_with(reason).then(|| format!("{JOB}@{at}"))
            })
            .collect()
    };
    let skipped_in_cluster = skipped("skipped: the previous tick still runs");
    let skipped_here = skipped("skipped: run ");
    let claims = soak.claims().await;
    let mut gaps: BTreeMap<Gap, Vec<String>> = BTreeMap::new();
    for second in first..=last {
        let at = UNIX_EPOCH + Duration::from_secs(second);
        if by_key.contains_key(&at) {
            continue;
        }
        let key = key_of(at);
        let claim = claims.get(&(u128::from(second) * 1000));
        let gap = match claim {
            _ if skipped_in_cluster.contains(&key) => Gap::SkippedForOverlap,
            // Claimed last by an instance killed before it wrote (the claim
            // stayed open); at least once, only a rerun's claimer: the
            // first one's is recovered.
            Some(claim)
                if !claim.finished
                    && killed.contains(claim.holder.as_str())
                    && (soak.mode == Mode::AtMostOnce || claim.attempt > 1) =>
            {
                Gap::ClaimerKilled
            }
            // Nobody claimed it when due (a recovery look may have claimed
            // it since, which runs nothing), and an instance skipped it as
            // its previous run still went.
            None if skipped_here.contains(&key) => Gap::MissedWhenDue,
            Some(claim)
                if claim.attempt == 1
                    && claim.claimed_at >= at + CLAIM_DEADLINE
                    && skipped_here.contains(&key) =>
            {
                Gap::MissedWhenDue
            }
            _ => Gap::Unexplained,
        };
        gaps.entry(gap)
            .or_default()
            .push(format!("{key} (claim: {claim:?})"));
    }
    let count = |gap| gaps.get(&gap).map_or(0, Vec::len);
    let already = soak
        .lines()
        .filter(|line| line.starts_with("ALREADY"))
        .count();
    println!(
        "{name}: {} ticks in the window, {} written; {} kills, {} instances in all; \
         gaps: {} skipped for overlap, {} claimer killed, {} missed when due; {recovered} reruns, \
         {already} found written already",
        last - first + 1,
        written.len(),
        soak.kills.len(),
        soak.started,
        count(Gap::SkippedForOverlap),
        count(Gap::ClaimerKilled),
        count(Gap::MissedWhenDue),
    );
    assert!(
        !gaps.contains_key(&Gap::Unexplained),
        "{name}: ticks missing for no reason the design allows (schema {schema} kept): \
         {:?}\nkills: {:?}",
        gaps[&Gap::Unexplained],
        soak.kills
            .iter()
            .map(|kill| format!(
                "{} at {}",
                kill.id,
                humantime::format_rfc3339_millis(kill.at)
            ))
            .collect::<Vec<_>>()
    );
    if soak.backend == Backend::FileLock {
        assert!(soak.root.path().join(".host/leases").is_dir());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_lock_at_most_once() {
    soak(Backend::FileLock, Mode::AtMostOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_lock_at_least_once() {
    soak(Backend::FileLock, Mode::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_at_most_once() {
    soak(Backend::Postgres, Mode::AtMostOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_at_least_once() {
    soak(Backend::Postgres, Mode::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_at_most_once() {
    soak(Backend::Redis, Mode::AtMostOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_at_least_once() {
    soak(Backend::Redis, Mode::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_at_most_once() {
    soak(Backend::Etcd, Mode::AtMostOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_at_least_once() {
    soak(Backend::Etcd, Mode::AtLeastOnce).await;
}
