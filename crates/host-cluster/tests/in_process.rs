//! The in-process store keeps the lease store contract.

mod contract;

use std::sync::Arc;
use std::time::Duration;

use contract::Timings;
use host_cluster::{InProcessStore, LeaseStore};

const TIMINGS: Timings = Timings {
    ttl: Duration::from_secs(15),
    margin: Duration::from_millis(1),
};

#[tokio::test(start_paused = true)]
async fn the_in_process_store_keeps_the_contract() {
    contract::every_check(Arc::new(InProcessStore::new()), "in-process", TIMINGS).await;
}

#[tokio::test(start_paused = true)]
async fn the_in_process_store_keeps_the_claim_contract() {
    contract::claims::every_check(Arc::new(InProcessStore::new()), "in-process", TIMINGS).await;
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_leases_and_new_stores_share_nothing() {
    let store = InProcessStore::new();
    let clone = store.clone();
    store
        .try_acquire("billing", "a", TIMINGS.ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(
        clone
            .try_acquire("billing", "b", TIMINGS.ttl)
            .await
            .unwrap()
            .is_none()
    );
    let other = InProcessStore::new();
    assert!(
        other
            .try_acquire("billing", "b", TIMINGS.ttl)
            .await
            .unwrap()
            .is_some()
    );
}

#[test]
fn its_types_are_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<InProcessStore>();
    is_send_sync::<Arc<dyn LeaseStore>>();
    is_send_sync::<Arc<dyn host_cluster::ClaimStore>>();
    is_send_sync::<host_cluster::Claim>();
    is_send_sync::<host_cluster::Lease>();
    is_send_sync::<host_cluster::LeaseInfo>();
    is_send_sync::<host_cluster::ClusterError>();
}
