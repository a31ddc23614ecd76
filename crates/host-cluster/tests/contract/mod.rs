//! The lease store contract (see `LeaseStore`), as checks every backend's
//! tests run against a store of their own. Time passes by `sleep`: on a
//! paused clock for the in-process store, really for the others, so the
//! time to live a test uses is short.
#![allow(dead_code, unreachable_pub)]

pub mod claims;

use std::sync::Arc;
use std::time::Duration;

use host_cluster::{ClusterError, LeaseStore};
use tokio::sync::Barrier;

/// The time to live the checks use, and how long to wait past it.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub ttl: Duration,
    /// Waited after the time to live for the lease to be expired by the
    /// store's clock (a database's clock runs apart from ours).
    pub margin: Duration,
}

/// Runs every check, each on lease names of its own under `prefix`.
pub async fn every_check(store: Arc<dyn LeaseStore>, prefix: &str, timings: Timings) {
    one_holder_at_a_time(&*store, &format!("{prefix}-one"), timings).await;
    renewing_keeps_it_and_a_lapse_loses_it(&*store, &format!("{prefix}-renew"), timings).await;
    tokens_grow_with_every_term(&*store, &format!("{prefix}-tokens"), timings).await;
    release_ends_only_its_own_term(&*store, &format!("{prefix}-release"), timings).await;
    one_of_sixteen_claimants_wins(store.clone(), &format!("{prefix}-race"), timings).await;
    bad_names_are_refused(&*store).await;
}

/// Acquire, a second holder refused and shown the first, the holder's own
/// acquire extends its term.
pub async fn one_holder_at_a_time(store: &dyn LeaseStore, name: &str, t: Timings) {
    let a = store
        .try_acquire(name, "a", t.ttl)
        .await
        .unwrap()
        .expect("a free lease");
    assert_eq!((a.name(), a.holder()), (name, "a"));
    assert!(store.try_acquire(name, "b", t.ttl).await.unwrap().is_none());
    let info = store.current(name).await.unwrap().expect("held");
    assert_eq!((info.holder(), info.token()), ("a", a.token()));
    assert!(info.expires_in() <= t.ttl);
    let again = store
        .try_acquire(name, "a", t.ttl)
        .await
        .unwrap()
        .expect("a's own");
    assert_eq!(again.token(), a.token(), "the same term");
    store.release(&a).await.unwrap();
}

/// Renewed within its time to live the lease stays; past it, it is lost
/// and renewing says so.
pub async fn renewing_keeps_it_and_a_lapse_loses_it(
    store: &dyn LeaseStore,
    name: &str,
    t: Timings,
) {
    let a = store.try_acquire(name, "a", t.ttl).await.unwrap().unwrap();
    for _ in 0..3 {
        tokio::time::sleep(t.ttl / 2).await;
        assert!(store.renew(&a, t.ttl).await.unwrap(), "renewed in time");
    }
    assert!(store.try_acquire(name, "b", t.ttl).await.unwrap().is_none());
    tokio::time::sleep(t.ttl + t.margin).await;
    assert!(store.current(name).await.unwrap().is_none(), "expired");
    assert!(
        !store.renew(&a, t.ttl).await.unwrap(),
        "a lapsed lease is lost"
    );
    // Lost for good, even though nobody took it meanwhile.
    assert!(store.current(name).await.unwrap().is_none());
}

/// Every new term's token is larger: after a release, after an expiry,
/// and whoever takes it.
pub async fn tokens_grow_with_every_term(store: &dyn LeaseStore, name: &str, t: Timings) {
    let mut last = None;
    for (round, holder) in ["a", "b", "a", "c"].into_iter().enumerate() {
        let lease = store
            .try_acquire(name, holder, t.ttl)
            .await
            .unwrap()
            .unwrap();
        if let Some(last) = last {
            assert!(
                lease.token() > last,
                "round {round}: {} after {last}",
                lease.token()
            );
        }
        last = Some(lease.token());
        if round % 2 == 0 {
            store.release(&lease).await.unwrap();
        } else {
            tokio::time::sleep(t.ttl + t.margin).await;
        }
    }
}

/// Releasing ends the term at once; a stale release (of a term another
/// holder has replaced) does nothing.
pub async fn release_ends_only_its_own_term(store: &dyn LeaseStore, name: &str, t: Timings) {
    let a = store.try_acquire(name, "a", t.ttl).await.unwrap().unwrap();
    store.release(&a).await.unwrap();
    assert!(store.current(name).await.unwrap().is_none());
    assert!(!store.renew(&a, t.ttl).await.unwrap(), "released is lost");
    let b = store
        .try_acquire(name, "b", t.ttl)
        .await
        .unwrap()
        .expect("free at once");
    store.release(&a).await.unwrap();
    let info = store
        .current(name)
        .await
        .unwrap()
        .expect("b still holds it");
    assert_eq!((info.holder(), info.token()), ("b", b.token()));
    store.release(&b).await.unwrap();
}

/// Sixteen claimants released together: exactly one wins.
pub async fn one_of_sixteen_claimants_wins(store: Arc<dyn LeaseStore>, name: &str, t: Timings) {
    let barrier = Arc::new(Barrier::new(16));
    let claims: Vec<_> = (0..16)
        .map(|i| {
            let (store, barrier, name) = (store.clone(), barrier.clone(), name.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .try_acquire(&name, &format!("claimant-{i}"), t.ttl)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for claim in futures::future::join_all(claims).await {
        if let Some(lease) = claim.unwrap().unwrap() {
            winners.push(lease.holder().to_owned());
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let info = store.current(name).await.unwrap().unwrap();
    assert_eq!(info.holder(), winners[0]);
}

/// Empty, overlong and control-character names and holders are refused,
/// naming what was wrong.
pub async fn bad_names_are_refused(store: &dyn LeaseStore) {
    let ttl = Duration::from_secs(1);
    let long = "x".repeat(256);
    for (name, holder, what) in [
        ("", "a", "lease name"),
        (long.as_str(), "a", "lease name"),
        ("ok", "", "holder id"),
        ("ok", "a\nb", "holder id"),
    ] {
        match store.try_acquire(name, holder, ttl).await {
            Err(ClusterError::Invalid { what: found, .. }) => assert_eq!(found, what),
            other => panic!("{name:?}/{holder:?}: {other:?}"),
        }
    }
}
