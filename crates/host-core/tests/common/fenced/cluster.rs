//! The test's side: a schema of the test's own with the work table and
//! the fence's, the instances, and waits on what they wrote.

use std::process::Command;
use std::time::{Duration, Instant};

use host_cluster::postgres::Namespace;
use host_test::{HostProcess, child_test};
use sqlx::{PgPool, Row};

use super::terms::{self, Term};
use super::writer::SCENARIO;
use super::{Conduct, Store, Timings};

/// The bound on waits for work: generous, so that only a hang fails.
const WORK_WITHIN: Duration = Duration::from_secs(30);

/// A cluster of instances on one store, fenced into one target database;
/// the schema is dropped, and every instance killed, at [`finish`](Self::finish)
/// (and the instances when dropped, by `HostProcess`).
pub struct Cluster {
    target: String,
    pub store: Store,
    pub test: &'static str,
    pub schema: String,
    pub admin: PgPool,
    conduct: Conduct,
    timings: Timings,
    pub instances: Vec<Instance>,
}

pub struct Instance {
    pub id: String,
    pub process: HostProcess,
    /// Whether it was waited for already.
    pub ended: bool,
}

impl Cluster {
    /// A schema of the test's own on the target server `target` (a
    /// PostgreSQL URL), with the work table and the fence's tables; the
    /// instances will lead on `store` with stubborn writers.
    pub async fn new(target: &str, store: Store, test: &'static str) -> Self {
        Self::reached_at(target, target, store, test).await
    }

    /// The same, the test reaching the target server at `admin` and the
    /// instances at `target` (as from a network namespace).
    pub async fn reached_at(admin: &str, target: &str, store: Store, test: &'static str) -> Self {
        let schema = format!("hc_{test}_{:08x}", fastrand::u32(..));
        println!("{test}: schema {schema}");
        let admin = PgPool::connect(admin)
            .await
            .unwrap_or_else(|error| panic!("{test}: the target database: {error}"));
        create_schema(
            &admin,
            &schema,
            "CREATE TABLE {schema}.work (token bigint NOT NULL, term text NOT NULL, \
             at timestamptz NOT NULL)",
        )
        .await;
        Self {
            target: target.to_owned(),
            store,
            test,
            schema,
            admin,
            conduct: Conduct::Stubborn,
            timings: Timings::default(),
            instances: Vec::new(),
        }
    }

    /// The instances started from now on write with `conduct`.
    pub fn conduct(&mut self, conduct: Conduct) -> &mut Self {
        self.conduct = conduct;
        self
    }

    /// The instances started from now on lead with `timings`.
    pub fn timings(&mut self, timings: Timings) -> &mut Self {
        self.timings = timings;
        self
    }

    /// Starts instance `id` (the test's name before it: another test
    /// terminates backends by id); its standard error carries the host's
    /// log and the writer's lines. Its index.
    pub fn start(&mut self, id: &str) -> usize {
        self.start_under(id, &[])
    }

    /// The same, run under `wrap` (a command and its arguments, such as
    /// `ip netns exec <name>`; the instance's command line follows).
    pub fn start_under(&mut self, id: &str, wrap: &[String]) -> usize {
        let id = format!("{}-{id}", self.test);
        let [kind, location, prefix] = self.store.fields();
        let scenario = [
            self.conduct.name(),
            &self.timings.encode(),
            &self.target,
            &self.schema,
            &id,
            &kind,
            &location,
            &prefix,
        ]
        .join("|");
        let own: Command = child_test(SCENARIO, &scenario);
        let mut command = host_test::netns::wrapped(wrap, own.get_program());
        command.args(own.get_args()).envs(
            own.get_envs()
                .filter_map(|(key, value)| Some((key, value?))),
        );
        command.env_remove("RUST_LOG");
        self.instances.push(Instance {
            id,
            process: HostProcess::spawn(command),
            ended: false,
        });
        self.instances.len() - 1
    }

    pub fn wait_for(&mut self, index: usize, text: &str) {
        self.instances[index].process.wait_for(text);
    }

    pub fn signal(&self, index: usize, signal: &str) {
        self.instances[index].process.signal(signal);
    }

    /// The token of the term instance `index` leads, from its `LEADING`
    /// line (its latest so far, after waiting for one).
    pub fn leading_token(&mut self, index: usize) -> i64 {
        self.wait_for(index, "LEADING ");
        self.lines(index, "LEADING ")
            .last()
            .and_then(|line| line.split(' ').nth(1)?.parse().ok())
            .expect("LEADING <token> <term>")
    }

    /// Starts instance `a`, which leads, then `b` and `c`, which stand by;
    /// returns `a`'s index and its token.
    pub fn start_three(&mut self) -> (usize, i64) {
        let a = self.start("a");
        let token = self.leading_token(a);
        for id in ["b", "c"] {
            let standby = self.start(id);
            self.wait_for(standby, "stands by");
        }
        (a, token)
    }

    /// The lines of instance `index` read so far that start with `start`.
    pub fn lines(&self, index: usize, start: &str) -> Vec<String> {
        self.instances[index]
            .process
            .lines()
            .iter()
            .filter(|line| line.starts_with(start))
            .cloned()
            .collect()
    }

    /// The lines every instance has written so far that start with
    /// `start`.
    pub fn all_lines(&mut self, start: &str) -> Vec<String> {
        for instance in &mut self.instances {
            instance.process.read_written();
        }
        (0..self.instances.len())
            .flat_map(|index| self.lines(index, start))
            .collect()
    }

    /// Waits (bounded) until a term passing `accept` has written; that
    /// term, or `None` if none did.
    pub async fn until_term(&self, accept: impl Fn(&Term) -> bool) -> Option<Term> {
        let deadline = Instant::now() + WORK_WITHIN;
        while Instant::now() < deadline {
            if let Some(term) = self.terms().await.into_iter().find(&accept) {
                return Some(term);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Waits (bounded) until a term of `token` has written.
    pub async fn until_written(&self, token: i64) -> Term {
        match self.until_term(|term| term.token == token).await {
            Some(term) => term,
            None => panic!("token {token} never wrote: {:?}", self.terms().await),
        }
    }

    /// Waits (bounded) until a term of a token above `token` has written;
    /// that term.
    pub async fn until_written_after(&self, token: i64) -> Term {
        match self.until_term(|term| term.token > token).await {
            Some(term) => term,
            None => panic!("no token above {token} wrote: {:?}", self.terms().await),
        }
    }

    /// Waits (bounded) until some term writes later than `after` (seconds
    /// since the epoch, the database's clock); whether one did.
    pub async fn until_work_after(&self, after: f64) -> bool {
        self.until_term(|term| term.last > after).await.is_some()
    }

    /// The terms that wrote, by their first write.
    pub async fn terms(&self) -> Vec<Term> {
        terms::read(&self.admin, &self.schema).await
    }

    /// The database's clock now, in seconds since the epoch.
    pub async fn now(&self) -> f64 {
        sqlx::raw_sql("SELECT extract(epoch FROM clock_timestamp())::float8")
            .fetch_one(&self.admin)
            .await
            .unwrap()
            .get(0)
    }

    /// Who holds the lease now by the PostgreSQL store's table (held and
    /// not expired by the database's clock), with the token.
    pub async fn holders(&self) -> Vec<(String, i64)> {
        sqlx::raw_sql(&format!(
            "SELECT holder, token FROM {}.host_leases WHERE name = '{}' \
             AND holder IS NOT NULL AND expires_at > clock_timestamp()",
            self.schema,
            super::LEASE
        ))
        .fetch_all(&self.admin)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
    }

    /// The last accepted write so far (0 if none).
    pub async fn last_write(&self) -> f64 {
        self.terms()
            .await
            .iter()
            .map(|term| term.last)
            .fold(0.0, f64::max)
    }

    /// Fails the test if two terms' accepted work overlapped; the terms.
    pub async fn assert_no_overlap(&self) -> Vec<Term> {
        let terms = self.terms().await;
        terms::assert_no_overlap(&terms);
        terms
    }

    /// Terminates the PostgreSQL store's connections of instance `index`.
    pub async fn terminate_backends(&self, index: usize) -> i64 {
        let name = format!("hc-test-{}", self.instances[index].id);
        sqlx::raw_sql(&format!(
            "SELECT count(pg_terminate_backend(pid))::bigint FROM pg_stat_activity \
             WHERE application_name = '{name}'"
        ))
        .fetch_one(&self.admin)
        .await
        .unwrap()
        .get(0)
    }

    /// Kills the instances still running and drops the schema.
    pub async fn finish(mut self) {
        for instance in self.instances.iter_mut().filter(|instance| !instance.ended) {
            instance.process.signal("KILL");
            let _ = instance.process.wait_for_status(Instant::now());
        }
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .execute(&self.admin)
            .await;
    }
}

/// Creates `schema` with `tables` (SQL, `{schema}` standing for the
/// schema's name) and the fence's tables (and the PostgreSQL store's),
/// before any instance writes.
pub async fn create_schema(admin: &PgPool, schema: &str, tables: &str) {
    let tables = tables.replace("{schema}", schema);
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}; {tables}"))
        .execute(admin)
        .await
        .unwrap_or_else(|error| panic!("schema {schema}: {error}"));
    let namespace = Namespace::new(schema, "host_").unwrap();
    host_cluster::postgres::migrate(admin, &namespace)
        .await
        .unwrap_or_else(|error| panic!("the fence's tables in {schema}: {error}"));
}
