//! The scenarios every lease store with an expiry goes through in the
//! same way: a leader killed, stopped past its lease, stopped gracefully.

use std::time::{Duration, Instant};

use super::Cluster;

/// A leader killed (`kill -9`) is replaced within the lease and a retry:
/// the next term writes, and the two terms did not overlap.
pub async fn killed_leader_is_replaced(mut cluster: Cluster) {
    let (a, first) = cluster.start_three();
    cluster.until_written(first).await;
    let killed = Instant::now();
    cluster.signal(a, "KILL");
    let next = cluster.until_written_after(first).await;
    let took = killed.elapsed();
    // Lease (1 s) and a retry (200 ms, a fifth more); generous against a
    // loaded machine.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let terms = cluster.assert_no_overlap().await;
    let tokens: Vec<i64> = terms.iter().map(|term| term.token).collect();
    assert_eq!(tokens, [first, next.token], "{terms:?}");
    cluster.finish().await;
}

/// A leader stopped (SIGSTOP) past its lease loses it to another
/// instance; continued, it finds its term revoked, and the unit of work it
/// was in is rejected by the fence.
pub async fn stopped_past_the_lease(mut cluster: Cluster) {
    let (a, first) = cluster.start_three();
    cluster.until_written(first).await;
    cluster.signal(a, "STOP");
    let next = cluster.until_written_after(first).await;
    // The next term writes for a while as a stays stopped.
    tokio::time::sleep(Duration::from_millis(800)).await;
    cluster.signal(a, "CONT");
    cluster.wait_for(a, &format!("REJECTED {first} "));
    let terms = cluster.assert_no_overlap().await;
    let tokens: Vec<i64> = terms.iter().map(|term| term.token).collect();
    assert_eq!(
        tokens,
        [first, next.token],
        "{:?}",
        cluster.lines(a, "LEADING")
    );
    cluster.finish().await;
}

/// A graceful stop releases the lease once the work has returned: another
/// instance leads at its next try, well within the lease.
pub async fn graceful_stop_hands_over(mut cluster: Cluster) {
    let (a, first) = cluster.start_three();
    cluster.until_written(first).await;
    let stopped = Instant::now();
    cluster.signal(a, "TERM");
    let (code, _) = cluster.instances[a].process.wait_for_exit(stopped);
    cluster.instances[a].ended = true;
    assert_eq!(code, 0, "{}", cluster.instances[a].process.output());
    cluster.until_written_after(first).await;
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.assert_no_overlap().await;
    cluster.finish().await;
}
