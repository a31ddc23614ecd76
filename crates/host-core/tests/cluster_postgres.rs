//! Cluster singletons on the PostgreSQL lease store (and one test on the
//! file lock), as real processes
//! (this test binary's `child` test) against the real server
//! (`HOST_TEST_POSTGRES_URL`; each test prints that it was skipped when it
//! is unset). The singleton's work writes through the fence, so a stale
//! leader's writes are rejected and counted; every test ends by checking,
//! from the writes that were accepted, that no two terms' work overlapped.
//!
//! Three instances each; short timings: lease 1 s, renew deadline 700 ms,
//! retry 200 ms.
#![cfg(unix)]

use std::process::Command;
use std::time::{Duration, Instant};

use host_cluster::FencingToken;
use host_cluster::postgres::{Fence, FenceError, Namespace, PostgresOptions};
use host_core::{BackgroundService, Host, ServiceContext, ServiceError, Singleton, async_trait};
use host_test::{HostProcess, child_test};
use sqlx::{PgPool, Row};

/// The variable that makes the `child` test run an instance:
/// `url|schema|id|store`, the store `pg` or the file lock's content root.
const SCENARIO: &str = "HOST_CLUSTER_POSTGRES_CHILD";

/// The lease every instance campaigns for, and the fence's name for it.
const LEASE: &str = "writer";

/// The server, or `None` (and a line saying the test was skipped).
fn url(test: &str) -> Option<String> {
    let url = std::env::var("HOST_TEST_POSTGRES_URL").ok();
    if url.is_none() {
        println!("{test}: skipped, HOST_TEST_POSTGRES_URL is not set");
    }
    url
}

/// One unit of work every 100 ms, written through the fence with the
/// term's token, until the host stops or the fence rejects it: this
/// writer ignores a lost term on purpose (as a leader paused in the middle
/// of its work would), so that the fence is what stops it.
struct Writer {
    pool: PgPool,
    fence: Fence,
    schema: String,
}

#[async_trait]
impl BackgroundService for Writer {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let token = ctx.fencing_token().expect("a singleton that leads");
        eprintln!("LEADING {token}");
        while !ctx.lifetime().is_stop_requested() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.write(token).await {
                Ok(()) => {}
                Err(WriteError::Fenced(error)) => {
                    eprintln!("REJECTED {token}: {error}");
                    return Ok(());
                }
                Err(WriteError::Other(error)) => eprintln!("FAILED {token}: {error}"),
            }
        }
        Ok(())
    }
}

enum WriteError {
    Fenced(FenceError),
    Other(String),
}

impl Writer {
    /// Boxed as `Send` here, where the connection's lifetimes are concrete
    /// (sqlx's executors trip the `Send` check of a generic async fn).
    fn write(
        &self,
        token: FencingToken,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), WriteError>> + Send + '_>>
    {
        Box::pin(self.write_unit(token))
    }

    async fn write_unit(&self, token: FencingToken) -> Result<(), WriteError> {
        let other = |error: sqlx::Error| WriteError::Other(error.to_string());
        let mut tx = self.pool.begin().await.map_err(other)?;
        match self.fence.check(&mut tx, LEASE, token).await {
            Ok(()) => {}
            Err(stale @ FenceError::Stale { .. }) => return Err(WriteError::Fenced(stale)),
            Err(error) => return Err(WriteError::Other(error.to_string())),
        }
        let insert = format!(
            "INSERT INTO {}.work (token, at) VALUES ($1, clock_timestamp())",
            self.schema
        );
        sqlx::query(&insert)
            .bind(i64::try_from(token.get()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        tx.commit().await.map_err(other)
    }
}

#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let parts: Vec<&str> = scenario.split('|').collect();
    let [url, schema, id, store] = parts[..] else {
        panic!("{SCENARIO}: url|schema|id|store, found {scenario}");
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let code = runtime.block_on(async {
        let namespace = Namespace::new(schema, "host_").expect("a schema name");
        let pool = PgPool::connect(url).await.expect("the database");
        let mut builder = Host::builder();
        builder.args(["child", &format!("--cluster.instance_id={id}")]);
        if store == "pg" {
            builder.lease_store(
                PostgresOptions::new(url)
                    .expect("a URL")
                    .namespace(namespace.clone())
                    .application_name(&format!("hc-test-{id}"))
                    .connect_lazily(),
            );
        } else {
            // The default store: the file lock under the content root. The
            // fence's table still lives in PostgreSQL, the target's database.
            builder.content_root(store);
            host_cluster::postgres::migrate(&pool, &namespace)
                .await
                .expect("the fence's table");
        }
        builder.add_hosted_service_instance_with(
            Writer {
                pool,
                fence: Fence::new(&namespace),
                schema: schema.to_owned(),
            },
            |writer| {
                writer.cluster_singleton(
                    Singleton::new(LEASE)
                        .lease(Duration::from_secs(1))
                        .renew_deadline(Duration::from_millis(700))
                        .retry_period(Duration::from_millis(200)),
                )
            },
        );
        builder.run().await
    });
    drop(runtime);
    host_test::exit_with(code);
}

/// A schema of the test's own with the work table; dropped at the end.
struct Cluster {
    url: String,
    /// The file lock's content root, for the file-lock variants; `None`:
    /// the PostgreSQL store.
    file_lock: Option<tempfile::TempDir>,
    test: &'static str,
    schema: String,
    admin: PgPool,
    instances: Vec<Instance>,
}

struct Instance {
    id: String,
    process: HostProcess,
    /// Whether it was waited for already.
    ended: bool,
}

impl Cluster {
    async fn new(url: &str, test: &'static str) -> Self {
        let schema = format!("hc_{test}_{:08x}", fastrand::u32(..));
        println!("{test}: schema {schema}");
        let admin = PgPool::connect(url).await.unwrap();
        sqlx::raw_sql(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.work (token bigint NOT NULL, at timestamptz NOT NULL)"
        ))
        .execute(&admin)
        .await
        .unwrap();
        Self {
            url: url.to_owned(),
            file_lock: None,
            test,
            schema,
            admin,
            instances: Vec::new(),
        }
    }

    /// The same, with the instances on the default file lock (one content
    /// root for all); the work's table stays in PostgreSQL.
    async fn on_file_lock(url: &str, test: &'static str) -> Self {
        let mut cluster = Self::new(url, test).await;
        cluster.file_lock = Some(tempfile::tempdir().unwrap());
        cluster
    }

    /// Starts instance `id`; its standard error carries the host's log and
    /// the writer's `LEADING` and `REJECTED` lines.
    fn start(&mut self, id: &str) -> usize {
        // Ids of the test's own: another test terminates backends by them.
        let id = format!("{}-{id}", self.test);
        let store = self
            .file_lock
            .as_ref()
            .map_or_else(|| "pg".to_owned(), |dir| dir.path().display().to_string());
        let mut command: Command = child_test(
            SCENARIO,
            &format!("{}|{}|{id}|{store}", self.url, self.schema),
        );
        command.env_remove("RUST_LOG");
        self.instances.push(Instance {
            id,
            process: HostProcess::spawn(command),
            ended: false,
        });
        self.instances.len() - 1
    }

    fn wait_for(&mut self, index: usize, text: &str) {
        self.instances[index].process.wait_for(text);
    }

    fn signal(&self, index: usize, signal: &str) {
        self.instances[index].process.signal(signal);
    }

    /// Starts instance `a`, which leads (token 1), then `b` and `c`, which
    /// stand by; returns `a`'s index.
    fn start_three(&mut self) -> usize {
        let a = self.start("a");
        self.wait_for(a, "LEADING 1");
        for id in ["b", "c"] {
            let standby = self.start(id);
            self.wait_for(standby, "stands by");
        }
        a
    }

    /// Waits (bounded) until some term writes later than `after` (seconds
    /// since the epoch, the database's clock); whether one did.
    async fn until_work_after(&self, after: f64) -> bool {
        for _ in 0..200 {
            if self.terms().await.last().is_some_and(|term| term.2 > after) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Waits (bounded) until term `token` has written.
    async fn until_written(&self, token: i64) {
        for _ in 0..600 {
            if self.terms().await.iter().any(|term| term.0 == token) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("term {token} never wrote: {:?}", self.terms().await);
    }

    /// The tokens that wrote, each with its first and last accepted write.
    async fn terms(&self) -> Vec<(i64, f64, f64)> {
        sqlx::raw_sql(&format!(
            "SELECT token, extract(epoch FROM min(at))::float8, extract(epoch FROM max(at))::float8 \
             FROM {}.work GROUP BY token ORDER BY token",
            self.schema
        ))
        .fetch_all(&self.admin)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
    }

    /// No two terms' accepted work overlapped: each term's writes all came
    /// after the previous term's last.
    async fn assert_no_overlap(&self) -> Vec<(i64, f64, f64)> {
        let terms = self.terms().await;
        for pair in terms.windows(2) {
            assert!(
                pair[0].2 < pair[1].1,
                "term {} wrote until {} after term {} began at {}: {terms:?}",
                pair[0].0,
                pair[0].2,
                pair[1].0,
                pair[1].1
            );
        }
        terms
    }

    /// Terminates the database connections of instance `index`.
    async fn terminate_backends(&self, index: usize) -> i64 {
        let name = format!("hc-test-{}", self.instances[index].id);
        sqlx::raw_sql(&format!(
            "SELECT count(pg_terminate_backend(pid))::bigint FROM pg_stat_activity WHERE application_name = '{name}'"
        ))
        .fetch_one(&self.admin)
        .await
        .unwrap()
        .get(0)
    }

    async fn finish(mut self) {
        for instance in self.instances.iter_mut().filter(|instance| !instance.ended) {
            instance.process.signal("KILL");
            let _ = instance.process.wait_for_status(Instant::now());
        }
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .execute(&self.admin)
            .await;
    }
}

/// The writer's lines of instance `index` read so far.
fn leading_lines(cluster: &Cluster, index: usize) -> Vec<String> {
    cluster.instances[index]
        .process
        .lines()
        .iter()
        .filter(|line| line.starts_with("LEADING") || line.starts_with("REJECTED"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_is_replaced_within_the_lease_and_a_retry() {
    let Some(url) = url("killed") else { return };
    let mut cluster = Cluster::new(&url, "killed").await;
    let a = cluster.start_three();
    cluster.until_written(1).await;
    let killed = Instant::now();
    cluster.signal(a, "KILL");
    cluster.until_written(2).await;
    let took = killed.elapsed();
    // Lease (1 s) and a retry (200 ms, a fifth more) on the database's
    // clock; generous against a loaded machine.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let terms = cluster.assert_no_overlap().await;
    assert_eq!(terms.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 2]);
    cluster.finish().await;
}

/// A leader stopped (SIGSTOP) past its lease loses it to another
/// instance; continued, it finds its term revoked, and the unit of work it
/// was in is rejected by the fence: at least one rejection observed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_past_its_lease_is_fenced_when_it_continues() {
    let Some(url) = url("stopped") else { return };
    let mut cluster = Cluster::new(&url, "stopped").await;
    let a = cluster.start_three();
    cluster.until_written(1).await;
    cluster.signal(a, "STOP");
    cluster.until_written(2).await;
    // b writes for a while as a stays stopped.
    tokio::time::sleep(Duration::from_millis(800)).await;
    cluster.signal(a, "CONT");
    cluster.wait_for(a, "REJECTED 1");
    let terms = cluster.assert_no_overlap().await;
    assert_eq!(
        terms.iter().map(|t| t.0).collect::<Vec<_>>(),
        [1, 2],
        "{:?}",
        leading_lines(&cluster, a)
    );
    cluster.finish().await;
}

/// The leader's database connections terminated: nothing is believed held
/// beyond the database's rows; work goes on under one leader at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_leave_one_leader_at_a_time() {
    let Some(url) = url("terminated") else { return };
    let mut cluster = Cluster::new(&url, "terminated").await;
    let a = cluster.start_three();
    for _ in 0..3 {
        // Once its pool has connected again (it does at its next use).
        let mut terminated = 0;
        for _ in 0..200 {
            terminated = cluster.terminate_backends(a).await;
            if terminated > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(terminated > 0, "a never connected again");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let before = cluster.terms().await.last().map_or(0.0, |t| t.2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let terms = cluster.assert_no_overlap().await;
    let after = terms.last().map_or(0.0, |t| t.2);
    assert!(after > before, "work went on: {terms:?}");
    cluster.finish().await;
}

/// A graceful stop releases the lease once the work has returned: the
/// other instance leads at its next try, well within the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_hands_over_at_the_next_try() {
    let Some(url) = url("graceful") else { return };
    let mut cluster = Cluster::new(&url, "graceful").await;
    let a = cluster.start_three();
    cluster.until_written(1).await;
    let stopped = Instant::now();
    cluster.signal(a, "TERM");
    let (code, _) = cluster.instances[a].process.wait_for_exit(stopped);
    cluster.instances[a].ended = true;
    assert_eq!(code, 0, "{}", cluster.instances[a].process.output());
    cluster.until_written(2).await;
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.assert_no_overlap().await;
    cluster.finish().await;
}

/// A PostgreSQL server of the test's own (initdb in a temporary
/// directory, run as the `postgres` user on a free port), so that it can
/// be restarted while the shared one serves the other tests.
struct OwnServer {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnServer {
    /// `None` (and a line saying why) when the server cannot be made here:
    /// no PostgreSQL binaries, or no `postgres` user to run them as.
    fn start(test: &str) -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .find(|bin| bin.join("initdb").exists());
        let Some(bin) = bin else {
            println!("{test}: skipped, no PostgreSQL server binaries in /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("hc-pg-").tempdir().ok()?;
        // The server runs as `postgres`, which must own its directory.
        let owned = Command::new("chown")
            .args(["postgres:postgres", &dir.path().display().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if !owned {
            println!("{test}: skipped, cannot hand a directory to the `postgres` user");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let server = Self { bin, dir, port };
        let data = server.data();
        assert!(
            server.run(
                &server.tool("initdb"),
                &["-D", &data, "-A", "trust", "-U", "postgres"]
            ),
            "initdb failed"
        );
        assert!(server.ctl("start"), "the server did not start");
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }

    /// Runs `program` as the `postgres` user; whether it succeeded.
    fn run(&self, program: &str, args: &[&str]) -> bool {
        let as_postgres = Command::new("runuser")
            .args(["-u", "postgres", "--", program])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        as_postgres.is_ok_and(|status| status.success())
    }

    /// `pg_ctl start`, `stop` or `restart`, waiting for it.
    fn ctl(&self, action: &str) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            &self.tool("pg_ctl"),
            &[
                action,
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "-m",
                "fast",
            ],
        )
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.ctl("stop");
    }
}

/// The database restarted under the cluster: the leader cannot renew, its
/// term ends at the renew deadline, and once the server is back one
/// instance leads and the work goes on, with no two terms overlapping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_the_cluster_leaves_one_leader_after() {
    if url("restart").is_none() {
        return;
    }
    let Some(server) = OwnServer::start("restart") else {
        return;
    };
    let mut cluster = Cluster::new(&server.url(), "restart").await;
    let a = cluster.start_three();
    cluster.until_written(1).await;
    let before = cluster.terms().await;
    assert!(server.ctl("stop"), "the server did not stop");
    // Down for longer than the renew deadline and the lease.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(server.ctl("start"), "the server did not start again");
    cluster.wait_for(a, "lost the lead of `writer`");
    // The work goes on after the restart, under one leader at a time.
    let last_before = before.last().map_or(0.0, |term| term.2);
    let resumed = cluster.until_work_after(last_before + 2.0).await;
    let terms = cluster.assert_no_overlap().await;
    assert!(resumed, "no work after the restart: {terms:?}");
    cluster.finish().await;
    drop(server);
}

/// One configuration key points a host's singletons at PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_points_singletons_at_postgres() {
    let Some(url) = url("configured") else { return };
    let cluster = Cluster::new(&url, "configured").await;
    let mut builder = host_testing::TestHost::builder();
    builder.args([
        "app".to_owned(),
        format!("--cluster.postgres.url={url}"),
        format!("--cluster.postgres.schema={}", cluster.schema),
        "--cluster.instance_id=configured".to_owned(),
    ]);
    builder.add_hosted_service_instance_with(Idle, |idle| {
        idle.cluster_singleton(
            Singleton::new("configured")
                .lease(Duration::from_secs(1))
                .renew_deadline(Duration::from_millis(700))
                .retry_period(Duration::from_millis(200)),
        )
    });
    let host = builder.start().await.unwrap();
    let leads = async {
        loop {
            let leadership = host
                .states()
                .status(std::any::type_name::<Idle>())
                .and_then(|status| status.leadership);
            if leadership.is_some_and(|leadership| leadership.leading) {
                let rows = sqlx::raw_sql(&format!(
                    "SELECT holder FROM {}.host_leases WHERE name = 'configured'",
                    cluster.schema
                ))
                .fetch_all(&cluster.admin)
                .await
                .unwrap();
                break rows.first().map(|row| row.get::<String, _>(0));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // A generous bound: a hang fails the test.
    let holder = tokio::time::timeout(Duration::from_secs(30), leads)
        .await
        .expect("the instance leads within 30 s");
    assert_eq!(holder.as_deref(), Some("configured"));
    host.stop().await.unwrap();
    cluster.finish().await;
}

struct Idle;

#[async_trait]
impl BackgroundService for Idle {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }
}

/// The file lock, three processes: a leader killed is replaced at the next
/// try (the OS frees its lock at once); one stopped (SIGSTOP) keeps the
/// lock, so nobody else works while it is stopped, and once continued the
/// work goes on under one leader at a time. The work is fenced in
/// PostgreSQL, and no two terms' work overlaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_file_lock_a_kill_hands_over_and_a_stop_keeps_the_lead() {
    let Some(url) = url("file_lock") else { return };
    let mut cluster = Cluster::on_file_lock(&url, "file_lock").await;
    let a = cluster.start_three();
    cluster.until_written(1).await;
    let killed = Instant::now();
    cluster.signal(a, "KILL");
    cluster.until_written(2).await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The new leader, stopped for three leases: it keeps the lock, so
    // nobody else writes meanwhile.
    let dir = cluster.file_lock.as_ref().expect("a file lock").path();
    let store = host_cluster::FileLockStore::new(host_cluster::FileLockStore::default_dir(dir));
    let holder = host_cluster::LeaseStore::current(&store, LEASE)
        .await
        .unwrap()
        .expect("the new leader holds the lease");
    let leader = cluster
        .instances
        .iter()
        .position(|instance| instance.id == holder.holder())
        .expect("the holder is one of the instances");
    let terms = cluster.terms().await;
    cluster.signal(leader, "STOP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = cluster.terms().await;
    cluster.signal(leader, "CONT");
    assert_eq!(
        during.iter().map(|t| t.0).collect::<Vec<_>>(),
        terms.iter().map(|t| t.0).collect::<Vec<_>>(),
        "another term wrote while the leader was stopped"
    );
    // Work goes on after, under one leader at a time.
    let before = cluster.terms().await.last().map_or(0.0, |t| t.2);
    let resumed = cluster.until_work_after(before + 1.0).await;
    let terms = cluster.assert_no_overlap().await;
    assert!(resumed, "no work after the stop: {terms:?}");
    cluster.finish().await;
}
