//! A lease store that counts the operations it passes on, by kind: the
//! load an instance puts on its store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use host_cluster::{ClusterError, Lease, LeaseInfo, LeaseStore};
use host_core::async_trait;

/// The counts of one instance's operations.
#[derive(Debug, Default)]
pub(crate) struct Counted {
    try_acquire: AtomicU64,
    renew: AtomicU64,
    release: AtomicU64,
    current: AtomicU64,
}

impl Counted {
    fn all(&self) -> [&AtomicU64; 4] {
        [&self.try_acquire, &self.renew, &self.release, &self.current]
    }

    /// Every operation counted since the last reset.
    pub(crate) fn total(&self) -> u64 {
        self.all()
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum()
    }

    /// Starts counting again from zero.
    pub(crate) fn reset(&self) {
        for count in self.all() {
            count.store(0, Ordering::Relaxed);
        }
    }

    /// The counts by kind, for a line of output.
    pub(crate) fn describe(&self) -> String {
        let [acquire, renew, release, current] =
            self.all().map(|count| count.load(Ordering::Relaxed));
        format!("try_acquire {acquire}, renew {renew}, release {release}, current {current}")
    }
}

/// Passes every operation to `inner`, counting it in `counted`.
pub(crate) struct CountingStore {
    inner: Arc<dyn LeaseStore>,
    counted: Arc<Counted>,
}

impl CountingStore {
    pub(crate) fn new(inner: Arc<dyn LeaseStore>, counted: Arc<Counted>) -> Self {
        Self { inner, counted }
    }
}

#[async_trait]
impl LeaseStore for CountingStore {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError> {
        self.counted.try_acquire.fetch_add(1, Ordering::Relaxed);
        self.inner.try_acquire(name, holder, ttl).await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, ClusterError> {
        self.counted.renew.fetch_add(1, Ordering::Relaxed);
        self.inner.renew(lease, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), ClusterError> {
        self.counted.release.fetch_add(1, Ordering::Relaxed);
        self.inner.release(lease).await
    }

    async fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError> {
        self.counted.current.fetch_add(1, Ordering::Relaxed);
        self.inner.current(name).await
    }
}
