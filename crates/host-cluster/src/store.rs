//! The lease store contract every backend keeps.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{ClusterError, Lease, LeaseInfo};

/// Grants leases by name, with a time to live, each term fenced.
///
/// The contract, which every backend keeps and the crate's conformance
/// tests check:
///
/// 1. At most one valid lease per name at a time, by the store's clock.
/// 2. Each new term (an acquire of a free or expired lease) carries a
///    strictly larger [`FencingToken`](crate::FencingToken) than every
///    earlier term of that name, released and expired ones included.
/// 3. [`try_acquire`](Self::try_acquire) by the holder of a valid lease
///    extends it and keeps its term and token.
/// 4. [`renew`](Self::renew) extends the lease only while it is still this
///    term's: after it expired (whether or not another instance took it
///    since) it returns `false`, and the holder must stop acting on it.
/// 5. [`release`](Self::release) ends this term at once, and only this
///    term: releasing a lease another instance took since does nothing.
/// 6. [`current`](Self::current) tells every instance who holds a valid
///    lease.
///
/// Cancellation: a request dropped midway may or may not have reached the
/// store; a lease acquired by a request whose answer was lost expires after
/// its time to live.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes the lease `name` for `holder` for `ttl`, if it is free,
    /// expired, or already `holder`'s; `None` while another holds it.
    ///
    /// # Errors
    ///
    /// An invalid name or holder id, or the store failed.
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError>;

    /// Extends `lease` by `ttl` from now, if it is still valid and of its
    /// term; `false` when it was lost.
    ///
    /// # Errors
    ///
    /// The store failed: whether the lease is still held is unknown.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, ClusterError>;

    /// Ends `lease`'s term now, if it is still its term.
    ///
    /// # Errors
    ///
    /// The store failed: the lease expires after its time to live.
    async fn release(&self, lease: &Lease) -> Result<(), ClusterError>;

    /// Who holds the lease `name`, if anyone validly does.
    ///
    /// # Errors
    ///
    /// An invalid name, or the store failed.
    async fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError>;
}

/// A shared store is a store: the application keeps an `Arc` of it and
/// hands a clone to the host, or one `Arc<dyn LeaseStore>` serves several
/// hosts (as the instances of a test).
#[async_trait]
impl<T: LeaseStore + ?Sized> LeaseStore for Arc<T> {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError> {
        (**self).try_acquire(name, holder, ttl).await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, ClusterError> {
        (**self).renew(lease, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), ClusterError> {
        (**self).release(lease).await
    }

    async fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError> {
        (**self).current(name).await
    }
}
