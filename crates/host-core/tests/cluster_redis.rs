//! Cluster singletons on the Redis lease store, as real processes (this
//! test binary's `child` test, the harness in `common/fenced/`): a leader
//! killed, stopped past its lease, stopped gracefully, and the Redis server
//! restarted without persistence under a running cluster. The work is
//! fenced in PostgreSQL, a resource apart from the lock service, and no two
//! terms' accepted work may overlap. They need `HOST_TEST_REDIS_URL` and
//! `HOST_TEST_POSTGRES_URL` (each test prints that it was skipped without
//! them); the restart runs a `redis-server` of its own. And one
//! configuration key points a host's singletons at Redis. The store itself
//! is tested in host-cluster.
#![cfg(unix)]

#[path = "common/fenced/mod.rs"]
mod fenced;

use fenced::{Cluster, Conduct, Idle, Store, leading_as_configured, postgres_url, redis_url};
use host_test::redis_server::RedisServer;

use host_testing::TestHost;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_points_singletons_at_redis() {
    let Some(url) = redis_url("configured") else {
        return;
    };
    let prefix = fenced::RedisPrefix::new(&url, "configured");
    let (host, leadership) = leading_as_configured(&[
        format!("--cluster.redis.url={url}"),
        format!("--cluster.redis.prefix={}", prefix.prefix),
    ])
    .await;
    // The term the store handed out: the counter under the prefix.
    let counter: Option<u64> = redis::cmd("GET")
        .arg(prefix.key("token:configured"))
        .query(&mut prefix.raw())
        .unwrap();
    assert!(counter.is_some(), "no counter under {}", prefix.prefix);
    assert_eq!(
        (&*leadership.instance, leadership.token),
        ("configured", counter)
    );
    host.stop().await.unwrap();
}

#[tokio::test]
async fn two_stores_configured_at_once_are_a_build_error() {
    let mut builder = TestHost::builder();
    builder.args([
        "app",
        "--cluster.redis.url=redis://127.0.0.1:1",
        "--cluster.postgres.url=postgres://app:hunter2@127.0.0.1:1/db",
    ]);
    builder.add_hosted_service_instance_with(Idle, |idle| idle.cluster_singleton("x"));
    let error = builder.build_error().to_string();
    assert!(
        error.contains("`cluster.postgres` and `cluster.redis` are both set"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn child() {
    fenced::child();
}

/// A cluster on a prefix of the test's own under the shared Redis server,
/// fenced into the shared PostgreSQL; `None` when either is missing.
async fn on_shared_redis(test: &'static str) -> Option<Cluster> {
    let target = postgres_url(test)?;
    let redis = redis_url(test)?;
    Some(Cluster::new(&target, Store::redis(&redis, test), test).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_is_replaced_within_the_lease_and_a_retry() {
    if let Some(cluster) = on_shared_redis("killed").await {
        fenced::scenarios::killed_leader_is_replaced(cluster).await;
    }
}

/// Redis expires the stopped leader's key by its own clock; continued, the
/// leader's next write is rejected by the fence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_past_its_lease_is_fenced_when_it_continues() {
    if let Some(cluster) = on_shared_redis("stopped").await {
        fenced::scenarios::stopped_past_the_lease(cluster).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_hands_over_at_the_next_try() {
    if let Some(cluster) = on_shared_redis("graceful").await {
        fenced::scenarios::graceful_stop_hands_over(cluster).await;
    }
}

/// The highest token the fence accepted before the restart is this: the
/// term counter had grown to `GROWN` (set before the cluster starts, as
/// after that many terms), so the first leader's token is `GROWN + 1`.
const GROWN: i64 = 4;

/// Redis restarted without persistence under a running cluster, as
/// docs/scale-out.md says: the leader's renew finds its lease gone and its
/// term ends; the token counter starts again from 1, so the fence turns
/// the new terms' writes away until their tokens reach the highest it
/// accepted; from then on the work goes on, and the accepted work of no
/// two terms overlapped. The writers heed a lost term and step down when
/// fenced, so that new terms keep coming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_the_cluster_stops_the_work_until_the_tokens_pass_the_fence() {
    let Some(target) = postgres_url("restart") else {
        return;
    };
    let Some(mut server) = RedisServer::start("restart") else {
        return;
    };
    let store = Store::redis(&server.url(), "restart");
    let Store::Redis(prefix) = &store else {
        unreachable!("a Redis store");
    };
    let counter = prefix.key(&format!("token:{}", fenced::LEASE));
    let _: () = redis::cmd("SET")
        .arg(&counter)
        .arg(GROWN)
        .query(&mut prefix.raw())
        .unwrap();
    let mut cluster = Cluster::new(&target, store, "restart").await;
    cluster.conduct(Conduct::Heeding);
    let (a, highest) = cluster.start_three();
    assert_eq!(highest, GROWN + 1, "the counter was {GROWN}");
    let before = cluster.until_written(highest).await;
    server.restart();
    cluster.wait_for(a, "lost the lead of `writer`");
    // The work goes on, under a term after the restart: one whose token
    // came round to the fence's highest again.
    let resumed = cluster
        .until_term(|term| term.token >= highest && term.term != before.term)
        .await;
    let terms = cluster.assert_no_overlap().await;
    let resumed = resumed.unwrap_or_else(|| panic!("no work after the restart: {terms:?}"));
    // The counter started again: the new terms' tokens began at 1, and
    // every one below the fence's highest was turned away.
    let leading = cluster.all_lines("LEADING ");
    let rejected = cluster.all_lines("REJECTED ");
    let token_of = |line: &String| -> i64 { line.split(' ').nth(1).unwrap().parse().unwrap() };
    assert!(
        leading.iter().any(|line| token_of(line) == 1),
        "no term of token 1 after the restart: {leading:?}"
    );
    let turned_away: Vec<i64> = rejected.iter().map(token_of).collect();
    assert!(
        !turned_away.is_empty() && turned_away.iter().all(|token| *token < highest),
        "the fence turned away {turned_away:?}, the highest accepted being {highest}"
    );
    // Every term that wrote carried a token at least the fence's highest.
    assert!(
        terms.iter().all(|term| term.token >= highest),
        "a term below {highest} wrote: {terms:?}"
    );
    println!(
        "restart: highest {highest}; after the restart, tokens {:?} turned away, term {} (token {}) resumed",
        turned_away, resumed.term, resumed.token
    );
    cluster.finish().await;
    drop(server);
}
