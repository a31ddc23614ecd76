//! A PostgreSQL store that connects at its first use: a host can be built
//! (synchronously) while the database is down, and its singletons stand by
//! until it answers.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{PostgresOptions, PostgresStore};
use crate::{Claim, ClaimOutcome, ClaimStore, ClusterError, Lease, LeaseInfo, LeaseStore};

/// [`PostgresStore`] connected (and migrated) by the first call that
/// needs it; a failed connect is the call's error, and the next call tries
/// again. Made by [`PostgresOptions::connect_lazily`].
#[derive(Debug)]
pub struct LazyPostgresStore {
    options: PostgresOptions,
    store: OnceCell<PostgresStore>,
}

impl LazyPostgresStore {
    pub(super) fn new(options: PostgresOptions) -> Self {
        Self {
            options,
            store: OnceCell::new(),
        }
    }

    /// The connected store, connecting first if need be.
    ///
    /// # Errors
    ///
    /// As [`PostgresOptions::connect`].
    pub async fn store(&self) -> Result<&PostgresStore, ClusterError> {
        self.store
            .get_or_try_init(|| self.options.clone().connect())
            .await
    }
}

#[async_trait]
impl LeaseStore for LazyPostgresStore {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError> {
        self.store().await?.try_acquire(name, holder, ttl).await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, ClusterError> {
        self.store().await?.renew(lease, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), ClusterError> {
        self.store().await?.release(lease).await
    }

    async fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError> {
        self.store().await?.current(name).await
    }
}

#[async_trait]
impl ClaimStore for LazyPostgresStore {
    async fn try_claim(
        &self,
        job: &str,
        tick: SystemTime,
        holder: &str,
        deadline: Option<Duration>,
    ) -> Result<ClaimOutcome, ClusterError> {
        self.store()
            .await?
            .try_claim(job, tick, holder, deadline)
            .await
    }

    async fn finish(&self, claim: &Claim) -> Result<(), ClusterError> {
        self.store().await?.finish(claim).await
    }

    async fn purge(&self, job: &str, before: SystemTime) -> Result<u64, ClusterError> {
        self.store().await?.purge(job, before).await
    }
}
