//! The claim store contract (see `ClaimStore`), as checks every backend's
//! tests run against a store of their own, each on job names of its own.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use host_cluster::{Claim, ClaimOutcome, ClaimStore, ClusterError};
use tokio::sync::Barrier;

use super::Timings;

/// Runs every check; `t.ttl` serves as the claims' recovery deadline.
pub async fn every_check(store: Arc<dyn ClaimStore>, prefix: &str, t: Timings) {
    one_claim_per_tick(&*store, &format!("{prefix}-once")).await;
    tokens_grow_with_every_claim(&*store, &format!("{prefix}-tokens"), t).await;
    without_a_deadline_never_again(&*store, &format!("{prefix}-at-most"), t).await;
    an_unfinished_claim_is_recovered_past_its_deadline(&*store, &format!("{prefix}-least"), t)
        .await;
    one_of_sixteen_claims_wins(store.clone(), &format!("{prefix}-race")).await;
    purge_deletes_only_earlier_ticks(&*store, &format!("{prefix}-purge")).await;
    bad_jobs_and_ticks_are_refused(&*store).await;
}

/// A tick `n` seconds after a fixed time, to the millisecond.
pub fn tick(n: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + n)
}

fn claimed(outcome: ClaimOutcome) -> Claim {
    match outcome {
        ClaimOutcome::Claimed(claim) => claim,
        other => panic!("expected a claim, found {other:?}"),
    }
}

fn taken(outcome: ClaimOutcome) -> (String, bool) {
    match outcome {
        ClaimOutcome::Taken { holder, finished } => (holder, finished),
        other => panic!("expected the tick taken, found {other:?}"),
    }
}

/// The first claim of a tick wins and says what it claimed; a later one
/// finds it taken, then finished.
pub async fn one_claim_per_tick(store: &dyn ClaimStore, job: &str) {
    let claim = claimed(store.try_claim(job, tick(1), "a", None).await.unwrap());
    assert_eq!(
        (claim.job(), claim.tick(), claim.holder(), claim.attempt()),
        (job, tick(1), "a", 1)
    );
    let found = taken(store.try_claim(job, tick(1), "b", None).await.unwrap());
    assert_eq!(found, ("a".to_owned(), false));
    store.finish(&claim).await.unwrap();
    let found = taken(store.try_claim(job, tick(1), "b", None).await.unwrap());
    assert_eq!(found, ("a".to_owned(), true));
    // Another tick is another record.
    claimed(store.try_claim(job, tick(2), "b", None).await.unwrap());
}

/// Every claim of a job carries a larger token than the ones before, a
/// recovered tick's included.
pub async fn tokens_grow_with_every_claim(store: &dyn ClaimStore, job: &str, t: Timings) {
    let first = claimed(
        store
            .try_claim(job, tick(1), "a", Some(t.ttl))
            .await
            .unwrap(),
    );
    let second = claimed(store.try_claim(job, tick(2), "b", None).await.unwrap());
    assert!(second.token() > first.token(), "{second:?} after {first:?}");
    tokio::time::sleep(t.ttl + t.margin).await;
    let recovered = claimed(
        store
            .try_claim(job, tick(1), "c", Some(t.ttl))
            .await
            .unwrap(),
    );
    assert!(
        recovered.token() > second.token(),
        "{recovered:?} after {second:?}"
    );
}

/// A claim made without a deadline is never claimed again, finished or not.
pub async fn without_a_deadline_never_again(store: &dyn ClaimStore, job: &str, t: Timings) {
    claimed(store.try_claim(job, tick(1), "a", None).await.unwrap());
    tokio::time::sleep(t.ttl + t.margin).await;
    let found = taken(
        store
            .try_claim(job, tick(1), "b", Some(t.ttl))
            .await
            .unwrap(),
    );
    assert_eq!(found, ("a".to_owned(), false));
}

/// An unfinished claim with a deadline is recovered past it, not before,
/// as the next attempt; the recovered-from claim can no longer finish it,
/// and a finished claim is never recovered.
pub async fn an_unfinished_claim_is_recovered_past_its_deadline(
    store: &dyn ClaimStore,
    job: &str,
    t: Timings,
) {
    let first = claimed(
        store
            .try_claim(job, tick(1), "a", Some(t.ttl))
            .await
            .unwrap(),
    );
    let found = taken(
        store
            .try_claim(job, tick(1), "b", Some(t.ttl))
            .await
            .unwrap(),
    );
    assert_eq!(found, ("a".to_owned(), false), "not before its deadline");
    tokio::time::sleep(t.ttl + t.margin).await;
    let found = taken(store.try_claim(job, tick(1), "b", None).await.unwrap());
    assert_eq!(
        found,
        ("a".to_owned(), false),
        "only a claim with a deadline recovers"
    );
    let second = claimed(
        store
            .try_claim(job, tick(1), "b", Some(t.ttl))
            .await
            .unwrap(),
    );
    assert_eq!((second.holder(), second.attempt()), ("b", 2));
    store.finish(&first).await.unwrap();
    let found = taken(store.try_claim(job, tick(1), "c", None).await.unwrap());
    assert_eq!(
        found,
        ("b".to_owned(), false),
        "a stale finish does nothing"
    );
    store.finish(&second).await.unwrap();
    tokio::time::sleep(t.ttl + t.margin).await;
    let found = taken(
        store
            .try_claim(job, tick(1), "c", Some(t.ttl))
            .await
            .unwrap(),
    );
    assert_eq!(found, ("b".to_owned(), true), "finished for good");
}

/// Sixteen instances claim one tick together: exactly one wins.
pub async fn one_of_sixteen_claims_wins(store: Arc<dyn ClaimStore>, job: &str) {
    let barrier = Arc::new(Barrier::new(16));
    let claims: Vec<_> = (0..16)
        .map(|i| {
            let (store, barrier, job) = (store.clone(), barrier.clone(), job.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .try_claim(&job, tick(7), &format!("instance-{i}"), None)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for outcome in futures::future::join_all(claims).await {
        if let ClaimOutcome::Claimed(claim) = outcome.unwrap().unwrap() {
            winners.push(claim.holder().to_owned());
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
}

/// Purging deletes the records of earlier ticks only (a purged tick could
/// be claimed again: retention must outlast the misfire window), and the
/// tokens go on growing.
pub async fn purge_deletes_only_earlier_ticks(store: &dyn ClaimStore, job: &str) {
    let mut last = None;
    for n in 1..=3 {
        last = Some(claimed(
            store.try_claim(job, tick(n), "a", None).await.unwrap(),
        ));
    }
    assert_eq!(store.purge(job, tick(3)).await.unwrap(), 2);
    assert_eq!(store.purge(job, tick(3)).await.unwrap(), 0);
    taken(store.try_claim(job, tick(3), "b", None).await.unwrap());
    let again = claimed(store.try_claim(job, tick(1), "b", None).await.unwrap());
    assert!(again.token() > last.unwrap().token());
}

/// Empty or control-character jobs and holders, and ticks before 1970, are
/// refused, naming what was wrong.
pub async fn bad_jobs_and_ticks_are_refused(store: &dyn ClaimStore) {
    let before_1970 = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
    for (job, at, holder, what) in [
        ("", tick(1), "a", "job name"),
        ("ok", tick(1), "a\nb", "holder id"),
        ("ok", before_1970, "a", "tick"),
    ] {
        match store.try_claim(job, at, holder, None).await {
            Err(ClusterError::Invalid { what: found, .. }) => assert_eq!(found, what),
            other => panic!("{job:?}/{holder:?}: {other:?}"),
        }
    }
}
