//! Cluster singletons on the PostgreSQL lease store (and one test on the
//! file lock), as real processes (this test binary's `child` test) against
//! the real server (`HOST_TEST_POSTGRES_URL`; each test prints that it was
//! skipped when it is unset). The singleton's work writes through the
//! fence, so a stale leader's writes are rejected and counted; every test
//! ends by checking, from the writes that were accepted, that no two
//! terms' work overlapped. The harness is `common/fenced/`.
//!
//! Three instances each; short timings: lease 1 s, renew deadline 700 ms,
//! retry 200 ms.
#![cfg(unix)]

#[path = "common/fenced/mod.rs"]
mod fenced;

use std::time::{Duration, Instant};

use fenced::{Cluster, LEASE, OwnPostgres, Store, leading_as_configured, postgres_url};
use sqlx::Row;

#[test]
fn child() {
    fenced::child();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_is_replaced_within_the_lease_and_a_retry() {
    let Some(url) = postgres_url("killed") else {
        return;
    };
    let cluster = Cluster::new(&url, Store::postgres(&url), "killed").await;
    fenced::scenarios::killed_leader_is_replaced(cluster).await;
}

/// A leader stopped (SIGSTOP) past its lease loses it to another
/// instance; continued, it finds its term revoked, and the unit of work it
/// was in is rejected by the fence: at least one rejection observed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_past_its_lease_is_fenced_when_it_continues() {
    let Some(url) = postgres_url("stopped") else {
        return;
    };
    let cluster = Cluster::new(&url, Store::postgres(&url), "stopped").await;
    fenced::scenarios::stopped_past_the_lease(cluster).await;
}

/// The leader's database connections terminated: nothing is believed held
/// beyond the database's rows; work goes on under one leader at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_leave_one_leader_at_a_time() {
    let Some(url) = postgres_url("terminated") else {
        return;
    };
    let mut cluster = Cluster::new(&url, Store::postgres(&url), "terminated").await;
    let (a, _) = cluster.start_three();
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
    let before = cluster.last_write().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let terms = cluster.assert_no_overlap().await;
    assert!(
        cluster.last_write().await > before,
        "work went on: {terms:?}"
    );
    cluster.finish().await;
}

/// A graceful stop releases the lease once the work has returned: the
/// other instance leads at its next try, well within the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_hands_over_at_the_next_try() {
    let Some(url) = postgres_url("graceful") else {
        return;
    };
    let cluster = Cluster::new(&url, Store::postgres(&url), "graceful").await;
    fenced::scenarios::graceful_stop_hands_over(cluster).await;
}

/// The database restarted under the cluster: the leader cannot renew, its
/// term ends at the renew deadline, and once the server is back one
/// instance leads and the work goes on, with no two terms overlapping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_the_cluster_leaves_one_leader_after() {
    if postgres_url("restart").is_none() {
        return;
    }
    let Some(server) = OwnPostgres::start("restart") else {
        return;
    };
    let url = server.url();
    let mut cluster = Cluster::new(&url, Store::postgres(&url), "restart").await;
    let (a, first) = cluster.start_three();
    cluster.until_written(first).await;
    let last_before = cluster.last_write().await;
    assert!(server.ctl("stop"), "the server did not stop");
    // Down for longer than the renew deadline and the lease.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(server.ctl("start"), "the server did not start again");
    cluster.wait_for(a, "lost the lead of `writer`");
    // The work goes on after the restart, under one leader at a time.
    let resumed = cluster.until_work_after(last_before + 2.0).await;
    let terms = cluster.assert_no_overlap().await;
    assert!(resumed, "no work after the restart: {terms:?}");
    cluster.finish().await;
    drop(server);
}

/// One configuration key points a host's singletons at PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_points_singletons_at_postgres() {
    let Some(url) = postgres_url("configured") else {
        return;
    };
    let cluster = Cluster::new(&url, Store::postgres(&url), "configured").await;
    let (host, _) = leading_as_configured(&[
        format!("--cluster.postgres.url={url}"),
        format!("--cluster.postgres.schema={}", cluster.schema),
    ])
    .await;
    let rows = sqlx::raw_sql(&format!(
        "SELECT holder FROM {}.host_leases WHERE name = 'configured'",
        cluster.schema
    ))
    .fetch_all(&cluster.admin)
    .await
    .unwrap();
    let holder = rows.first().map(|row| row.get::<String, _>(0));
    assert_eq!(holder.as_deref(), Some("configured"));
    host.stop().await.unwrap();
    cluster.finish().await;
}

/// The file lock, three processes: a leader killed is replaced at the next
/// try (the OS frees its lock at once); one stopped (SIGSTOP) keeps the
/// lock, so nobody else works while it is stopped, and once continued the
/// work goes on under one leader at a time. The work is fenced in
/// PostgreSQL, and no two terms' work overlaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_file_lock_a_kill_hands_over_and_a_stop_keeps_the_lead() {
    let Some(url) = postgres_url("file_lock") else {
        return;
    };
    let mut cluster = Cluster::new(&url, Store::file_lock(), "file_lock").await;
    let (a, first) = cluster.start_three();
    cluster.until_written(first).await;
    let killed = Instant::now();
    cluster.signal(a, "KILL");
    cluster.until_written_after(first).await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The new leader, stopped for three leases: it keeps the lock, so
    // nobody else writes meanwhile.
    let Store::FileLock { root } = &cluster.store else {
        unreachable!("a file lock cluster");
    };
    let store = host_cluster::FileLockStore::new(host_cluster::FileLockStore::default_dir(root));
    let holder = host_cluster::LeaseStore::current(&store, LEASE)
        .await
        .unwrap()
        .expect("the new leader holds the lease");
    let leader = cluster
        .instances
        .iter()
        .position(|instance| instance.id == holder.holder())
        .expect("the holder is one of the instances");
    let names =
        |terms: Vec<fenced::Term>| terms.into_iter().map(|term| term.term).collect::<Vec<_>>();
    let terms = names(cluster.terms().await);
    cluster.signal(leader, "STOP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = names(cluster.terms().await);
    cluster.signal(leader, "CONT");
    assert_eq!(
        during, terms,
        "another term wrote while the leader was stopped"
    );
    // Work goes on after, under one leader at a time.
    let before = cluster.last_write().await;
    let resumed = cluster.until_work_after(before + 1.0).await;
    let terms = cluster.assert_no_overlap().await;
    assert!(resumed, "no work after the stop: {terms:?}");
    cluster.finish().await;
}
