//! Cluster singletons at scale:
//!
//! - 50 singletons over 5 instances (paused time, one in-process store):
//!   each singleton has one leader, and the leadership spreads over the
//!   instances by the documented rule (preferred members by rendezvous
//!   hashing, fair shares, hand-overs), even when the instances start one
//!   after another; with `cluster.balance = false` the first keeps them all.
//!   The store's load per instance and per singleton is counted and printed.
//! - 20 candidate processes (this test binary's `child` test) for one
//!   singleton, on the file lock, on an etcd member of the test's own, and
//!   on PostgreSQL and Redis when `HOST_TEST_POSTGRES_URL` and
//!   `HOST_TEST_REDIS_URL` are set (each test prints that it was skipped
//!   otherwise, as the etcd one without etcd): one leader at a time through
//!   three kills, and the store's load per candidate counted.

#[path = "common/counting.rs"]
mod counting;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use counting::{Counted, CountingStore};
use host_cluster::LeaseStore;
use host_core::{BackgroundService, Host, ServiceContext, ServiceError, Singleton, async_trait};
use host_test::{HostProcess, child_test};
use host_testing::TestHost;

const SINGLETONS: usize = 50;
const INSTANCES: usize = 5;

/// One run of a singleton: which, on which instance, when it began and
/// ended (on the tokio clock).
#[derive(Debug, Clone)]
struct Run {
    singleton: String,
    instance: usize,
    began: tokio::time::Instant,
    ended: Option<tokio::time::Instant>,
}

/// Every singleton's runs.
#[derive(Default)]
struct Journal {
    runs: Mutex<Vec<Run>>,
}

struct Work {
    singleton: String,
    instance: usize,
    journal: Arc<Journal>,
}

#[async_trait]
impl BackgroundService for Work {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let index = {
            let mut runs = self.journal.runs.lock().unwrap();
            runs.push(Run {
                singleton: self.singleton.clone(),
                instance: self.instance,
                began: tokio::time::Instant::now(),
                ended: None,
            });
            runs.len() - 1
        };
        ctx.stopping().await;
        self.journal.runs.lock().unwrap()[index].ended = Some(tokio::time::Instant::now());
        Ok(())
    }
}

fn singleton_name(index: usize) -> String {
    format!("scale-{index:02}")
}

/// Instance `instance` (1-based): the 50 singletons on client-go's timings,
/// in `store` counted by `counted`.
async fn instance(
    instance: usize,
    store: &Arc<dyn LeaseStore>,
    counted: &Arc<Counted>,
    journal: &Arc<Journal>,
    balance: bool,
) -> TestHost {
    let mut builder = TestHost::builder();
    builder.configuration().appsettings(true);
    builder.default_log_level(tracing::level_filters::LevelFilter::WARN);
    std::fs::write(
        builder.content_dir().join("appsettings.toml"),
        format!("[cluster]\ninstance_id = \"instance-{instance}\"\nbalance = {balance}\n"),
    )
    .unwrap();
    builder.lease_store(CountingStore::new(store.clone(), counted.clone()));
    for index in 0..SINGLETONS {
        builder.add_hosted_service_instance_with(
            Work {
                singleton: singleton_name(index),
                instance,
                journal: journal.clone(),
            },
            move |work| work.cluster_singleton(Singleton::new(singleton_name(index))),
        );
    }
    builder.start().await.expect("the instance starts")
}

/// Who leads each singleton now, by the instances' states.
fn leaders(hosts: &[TestHost]) -> BTreeMap<String, Vec<usize>> {
    let mut leaders: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, host) in hosts.iter().enumerate() {
        for status in host.states().snapshot() {
            if let Some(leadership) = status.leadership.filter(|l| l.leading) {
                leaders
                    .entry(leadership.singleton.to_string())
                    .or_default()
                    .push(index + 1);
            }
        }
    }
    leaders
}

/// How many singletons each instance leads.
fn counts(leaders: &BTreeMap<String, Vec<usize>>) -> [usize; INSTANCES] {
    let mut counts = [0; INSTANCES];
    for instances in leaders.values() {
        for instance in instances {
            counts[instance - 1] += 1;
        }
    }
    counts
}

/// Each singleton's runs never overlapped across instances.
fn assert_no_overlap(journal: &Journal) {
    let runs = journal.runs.lock().unwrap().clone();
    let mut by_singleton: HashMap<&str, Vec<_>> = HashMap::new();
    for run in &runs {
        by_singleton
            .entry(run.singleton.as_str())
            .or_default()
            .push(run);
    }
    for (singleton, mut runs) in by_singleton {
        runs.sort_by_key(|run| run.began);
        for pair in runs.windows(2) {
            let ended = pair[0].ended.expect("an earlier run ended");
            assert!(
                ended <= pair[1].began,
                "`{singleton}`: instance {}'s run overlapped instance {}'s",
                pair[0].instance,
                pair[1].instance
            );
        }
    }
}

/// Starts the five instances one after another, 5 s apart (the first 20 s
/// ahead), then lets them settle for two minutes.
async fn start_one_by_one(balance: bool) -> (Vec<TestHost>, Vec<Arc<Counted>>, Arc<Journal>) {
    let store: Arc<dyn LeaseStore> = Arc::new(host_cluster::InProcessStore::new());
    let journal = Arc::new(Journal::default());
    let mut hosts = Vec::new();
    let mut counted = Vec::new();
    for number in 1..=INSTANCES {
        let count = Arc::new(Counted::default());
        hosts.push(instance(number, &store, &count, &journal, balance).await);
        counted.push(count);
        let wait = if number == 1 { 20 } else { 5 };
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    tokio::time::sleep(Duration::from_secs(120)).await;
    (hosts, counted, journal)
}

#[tokio::test(start_paused = true)]
async fn fifty_singletons_spread_over_five_instances_started_one_by_one() {
    let (hosts, counted, journal) = start_one_by_one(true).await;
    let leaders = leaders(&hosts);
    assert_eq!(leaders.len(), SINGLETONS, "{leaders:?}");
    assert!(
        leaders.values().all(|instances| instances.len() == 1),
        "{leaders:?}"
    );
    let counts = counts(&leaders);
    println!("singletons led per instance: {counts:?}");
    // The preferred members, computed here from the documented rule.
    let members: Vec<String> = (1..=INSTANCES).map(|i| format!("instance-{i}")).collect();
    let mut preferred = [0usize; INSTANCES];
    for index in 0..SINGLETONS {
        preferred[prefers(&members, &singleton_name(index))] += 1;
    }
    println!("singletons each instance is preferred for: {preferred:?}");
    let fair = SINGLETONS.div_ceil(INSTANCES);
    for (index, (&led, &prefers)) in counts.iter().zip(&preferred).enumerate() {
        assert!(led >= 1, "instance-{} leads nothing: {counts:?}", index + 1);
        assert!(
            led <= fair.max(prefers),
            "instance-{} leads {led}, over its fair share {fair} and the {prefers} it is \
             preferred for: {counts:?}",
            index + 1
        );
    }
    // The store's load over a minute of steady state.
    for count in &counted {
        count.reset();
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    let retry_periods = 60.0 / Singleton::DEFAULT_RETRY_PERIOD.as_secs_f64();
    let mut total = 0;
    for (index, count) in counted.iter().enumerate() {
        let ops = count.total();
        total += ops;
        println!(
            "instance-{}: {ops} store operations in 60 s ({:.1}/s; {})",
            index + 1,
            ops as f64 / 60.0,
            count.describe()
        );
        // Per retry period at most: one try or look or renew per singleton,
        // a second look after a failed try (`current`), and the group's
        // member renew and reading (members + 3 empty slots).
        let bound = (2 * SINGLETONS + 1 + INSTANCES + 3) as f64 * retry_periods;
        assert!(
            (ops as f64) <= bound,
            "instance-{}: {ops} operations, over {bound}",
            index + 1
        );
    }
    println!(
        "all instances: {total} operations in 60 s, {:.2}/s per singleton",
        total as f64 / 60.0 / SINGLETONS as f64
    );
    assert_no_overlap(&journal);
    for host in hosts {
        host.stop().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn without_balancing_the_first_instance_keeps_every_singleton() {
    let (hosts, _counted, journal) = start_one_by_one(false).await;
    let leaders = leaders(&hosts);
    assert_eq!(counts(&leaders), [SINGLETONS, 0, 0, 0, 0], "{leaders:?}");
    assert_no_overlap(&journal);
    for host in hosts {
        host.stop().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn an_instance_that_stops_leaves_its_singletons_to_the_others() {
    let (mut hosts, _counted, journal) = start_one_by_one(true).await;
    let third = hosts.remove(2);
    third.stop().await.unwrap();
    // Released at its stop: taken within a few retry periods.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let mut leaders: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (singleton, instances) in self::leaders(&hosts) {
        leaders.insert(singleton, instances);
    }
    assert_eq!(leaders.len(), SINGLETONS, "{leaders:?}");
    assert!(leaders.values().all(|instances| instances.len() == 1));
    let counts = counts(&leaders);
    println!(
        "after instance-3 stopped, the four left lead: {:?}",
        &counts[..4]
    );
    assert!(counts[..4].iter().all(|&led| led >= 1), "{counts:?}");
    assert_no_overlap(&journal);
    for host in hosts {
        host.stop().await.unwrap();
    }
}

/// The index of `singleton`'s preferred member: the highest hash of the
/// two, as `docs/scale-out.md` gives it (FNV-1a 64 over the singleton's
/// name, a 0xff byte and the member's id, then SplitMix64's finalizer).
fn prefers(members: &[String], singleton: &str) -> usize {
    let hash = |member: &str| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in singleton.bytes().chain([0xff]).chain(member.bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
        hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        hash ^ (hash >> 31)
    };
    (0..members.len())
        .max_by(|&a, &b| {
            hash(&members[a])
                .cmp(&hash(&members[b]))
                .then_with(|| members[b].cmp(&members[a]))
        })
        .expect("members")
}

// ---- 20 candidate processes for one singleton ----

/// `store|id|where|journal`: the store (`file`, `pg`, `redis`, `etcd`), the
/// instance's id, the file lock's directory or the server's URL (with the
/// schema or prefix after a `#`), and the file every instance appends its
/// lines to.
const SCENARIO: &str = "HOST_CLUSTER_SCALE_CHILD";
const CANDIDATES: usize = 20;

/// Appends `line` to the shared journal (one write per line, so lines of
/// several processes never mix).
fn note(journal: &str, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(journal)
        .expect("the journal");
    file.write_all(format!("{line}\n").as_bytes()).unwrap();
}

struct Candidate {
    id: String,
    journal: String,
}

#[async_trait]
impl BackgroundService for Candidate {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let token = ctx.fencing_token().expect("leads").get();
        note(&self.journal, &format!("LEADING {} {token}", self.id));
        ctx.stopping().await;
        note(&self.journal, &format!("ENDED {} {token}", self.id));
        Ok(())
    }
}

#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let parts: Vec<&str> = scenario.split('|').collect();
    let [kind, id, place, journal] = parts[..] else {
        panic!("{SCENARIO}: store|id|where|journal, found {scenario}");
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let code = runtime.block_on(async {
        let store: Arc<dyn LeaseStore> = match kind {
            "file" => Arc::new(host_cluster::FileLockStore::new(place)),
            "pg" => {
                let (url, schema) = place.split_once('#').expect("url#schema");
                Arc::new(
                    host_cluster::postgres::PostgresOptions::new(url)
                        .expect("a URL")
                        .namespace(
                            host_cluster::postgres::Namespace::new(schema, "host_")
                                .expect("a schema"),
                        )
                        .max_connections(2)
                        .connect_lazily(),
                )
            }
            "etcd" => {
                let (url, prefix) = place.split_once('#').expect("url#prefix");
                host_cluster::cluster_store_for_url(url, None, Some(prefix)).expect("an etcd URL")
            }
            "redis" => {
                let (url, prefix) = place.split_once('#').expect("url#prefix");
                Arc::new(
                    host_cluster::redis::RedisOptions::new(url)
                        .expect("a URL")
                        .prefix(prefix)
                        .expect("a prefix")
                        .connect_lazily(),
                )
            }
            other => panic!("no store {other}"),
        };
        let counted = Arc::new(Counted::default());
        let (ops_journal, ops_id) = (journal.to_owned(), id.to_owned());
        let reporter = counted.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                note(&ops_journal, &format!("OPS {ops_id} {}", reporter.total()));
            }
        });
        let mut builder = Host::builder();
        builder.args(["child", &format!("--cluster.instance_id={id}")]);
        builder.lease_store(CountingStore::new(store, counted));
        builder.add_hosted_service_instance_with(
            Candidate {
                id: id.to_owned(),
                journal: journal.to_owned(),
            },
            |candidate| {
                candidate.cluster_singleton(
                    Singleton::new("one")
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

/// The journal's lines.
fn lines(journal: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The `LEADING id token` lines, in order.
fn leading(journal: &std::path::Path) -> Vec<(String, u64)> {
    lines(journal)
        .iter()
        .filter_map(|line| line.strip_prefix("LEADING "))
        .map(|rest| {
            let (id, token) = rest.split_once(' ').expect("id token");
            (id.to_owned(), token.parse().expect("a token"))
        })
        .collect()
}

/// Waits (bounded) until the journal has `count` leading lines.
fn until_leaders(journal: &std::path::Path, count: usize) {
    let deadline = Instant::now() + host_test::NO_HANG;
    while leading(journal).len() < count {
        assert!(
            Instant::now() < deadline,
            "no leader {count} within {:?}: {:?}",
            host_test::NO_HANG,
            lines(journal)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each candidate's last two `OPS` counts, a second apart: operations per
/// second now.
fn ops_per_second(journal: &std::path::Path) -> BTreeMap<String, u64> {
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in lines(journal) {
        if let Some(rest) = line.strip_prefix("OPS ") {
            let (id, total) = rest.split_once(' ').expect("id total");
            seen.entry(id.to_owned())
                .or_default()
                .push(total.parse().expect("a count"));
        }
    }
    seen.into_iter()
        .filter(|(_, totals)| totals.len() >= 2)
        .map(|(id, totals)| (id, totals[totals.len() - 1] - totals[totals.len() - 2]))
        .collect()
}

/// 20 candidates; one leads; its kill -9 hands over to exactly one other,
/// three times; the load per candidate printed and bounded.
fn twenty_candidates(test: &str, kind: &str, place: &str) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let mut candidates: HashMap<String, HostProcess> = HashMap::new();
    for number in 1..=CANDIDATES {
        let id = format!("{test}-{number:02}");
        let mut command = child_test(
            SCENARIO,
            &format!("{kind}|{id}|{place}|{}", journal.display()),
        );
        command.env_remove("RUST_LOG");
        candidates.insert(id, HostProcess::spawn(command));
    }
    until_leaders(&journal, 1);
    // Ten retry periods and more: still the one leader.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(leading(&journal).len(), 1, "{:?}", lines(&journal));
    let load = ops_per_second(&journal);
    let total: u64 = load.values().sum();
    println!(
        "{test}: {} candidates, {total} store operations per second in all, {:.1} per \
         candidate: {load:?}",
        load.len(),
        total as f64 / load.len().max(1) as f64
    );
    // Each retry period (200 ms) a candidate tries and looks, or renews:
    // 10 a second, with the jitter fewer; 15 leaves room for the second's
    // edges.
    assert!(
        load.values().all(|&ops| ops <= 15),
        "{test}: a candidate over 15 operations a second: {load:?}"
    );
    for kill in 1..=3 {
        let (leader, token) = leading(&journal).last().cloned().expect("a leader");
        candidates[&leader].signal("KILL");
        until_leaders(&journal, kill + 1);
        // A lease (1 s) and several retry periods more: nobody else took it.
        std::thread::sleep(Duration::from_secs(2));
        let now = leading(&journal);
        assert_eq!(now.len(), kill + 1, "{test}: {:?}", lines(&journal));
        let (next, next_token) = now.last().cloned().unwrap();
        assert_ne!(next, leader);
        assert!(
            next_token > token,
            "{test}: token {next_token} after {token}"
        );
        println!("{test}: kill {kill}: {leader} (token {token}) -> {next} (token {next_token})");
    }
    for (_, mut candidate) in candidates {
        candidate.signal("KILL");
        let _ = candidate.wait_for_status(Instant::now());
    }
}

#[test]
fn twenty_candidates_on_the_file_lock() {
    let leases = tempfile::tempdir().unwrap();
    twenty_candidates("scale-file", "file", &leases.path().display().to_string());
}

#[test]
fn twenty_candidates_on_postgres() {
    let Ok(url) = std::env::var("HOST_TEST_POSTGRES_URL") else {
        println!("twenty_candidates_on_postgres: skipped, HOST_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = format!("hc_scale_{:08x}", fastrand::u32(..));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let admin = runtime.block_on(async {
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        admin
    });
    twenty_candidates("scale-pg", "pg", &format!("{url}#{schema}"));
    runtime.block_on(async {
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await;
    });
}

#[test]
fn twenty_candidates_on_redis() {
    let Ok(url) = std::env::var("HOST_TEST_REDIS_URL") else {
        println!("twenty_candidates_on_redis: skipped, HOST_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!("hc-scale-{:08x}:", fastrand::u32(..));
    twenty_candidates("scale-redis", "redis", &format!("{url}#{prefix}"));
}

#[test]
fn twenty_candidates_on_etcd() {
    let Some(etcd) = host_test::EtcdCluster::single() else {
        println!("twenty_candidates_on_etcd: skipped, etcd cannot be started");
        return;
    };
    let prefix = format!("hc-scale-{:08x}/", fastrand::u32(..));
    twenty_candidates("scale-etcd", "etcd", &format!("{}#{prefix}", etcd.url()));
}
