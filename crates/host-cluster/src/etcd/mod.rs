//! The etcd lease and claim store.
//!
//! [`EtcdStore`] keeps leases and claims in keys of an etcd v3 cluster
//! (etcd 3.4 or later) under one prefix (default `host/`). etcd is
//! linearizable: every write goes through its Raft log and is acknowledged
//! once a quorum of members has it, so the lease and claim contracts hold
//! across the loss of any member as long as a quorum lives. Expiry is
//! etcd's own (its leases, timed by the Raft leader); a lease's fencing
//! token is the revision at which its key was created, which etcd makes
//! strictly larger with every write.
//!
//! | key | holds |
//! |---|---|
//! | `<prefix>lease/<name>` | the holder, attached to the term's etcd lease; its create revision is the term's token |
//! | `<prefix>claim/<job>/<tick ms, 20 digits>` | a claim: attempt, finished, whether it has a deadline, holder; the revision that wrote it is its token |
//! | `<prefix>claim-live/<job>/<tick ms, 20 digits>` | present while a claim's deadline runs: attached to an etcd lease of the deadline |
//!
//! Names and job names appear with `%` and `/` percent-encoded. etcd
//! leases count whole seconds: a time to live or a deadline is rounded up
//! to a whole second (at least 1), and etcd raises it to its own minimum
//! (1.5 election timeouts, rounded up: 2 s with etcd's default timings).
//! [`renew`](crate::LeaseStore::renew) renews the term's etcd lease to the
//! time to live granted when the term began. Loss shows in two ways: etcd
//! answers a keep-alive with a time to live of 0 (the etcd lease is gone:
//! `renew` says `false`), or renews fail until host-core's election gives
//! up at its renew deadline, which it measures from when the last
//! successful renew was *sent*; etcd renewed at or after that moment for at
//! least the lease's time to live, so the leader stops before etcd can hand
//! the lease to another.
//!
//! The store reaches the members through one gRPC channel that spreads
//! requests over the members that answer, so one member down is
//! tolerated; each operation is bounded by the operation timeout.
//!
//! ```no_run
//! use std::time::Duration;
//! use host_cluster::etcd::EtcdOptions;
//! use host_cluster::LeaseStore;
//!
//! # async fn run() -> Result<(), host_cluster::ClusterError> {
//! let store = EtcdOptions::new("etcd://etcd-1:2379,etcd-2:2379,etcd-3:2379/orders/")?
//!     .connect_lazily();
//! if let Some(lease) = store.try_acquire("billing", "instance-a", Duration::from_secs(15)).await? {
//!     // Lead, renewing before 15 s pass; carry lease.token() on fenced writes.
//!     store.release(&lease).await?;
//! }
//! # Ok(()) }
//! ```

mod claims;
mod client;
mod keys;
mod leases;
mod ops;
mod options;
mod proto;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

use self::client::Client;
use crate::ClusterError;

pub use options::EtcdOptions;

/// Leases and claims in etcd keys, shared by every instance that connects
/// to the same cluster and prefix. Connects at its first use; clones share
/// the connection.
///
/// [`connect`](Self::connect) takes a URL and defaults; [`EtcdOptions`]
/// sets the prefix, credentials, TLS and timeouts. `Debug` and every error
/// show the members (`etcd://user@host:port,.../prefix`), never the
/// password.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

struct Inner {
    options: EtcdOptions,
    client: OnceCell<Client>,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = &self.inner.options;
        f.debug_struct("EtcdStore")
            .field("address", &options.address)
            .field("operation_timeout", &options.operation_timeout)
            .field("connected", &self.inner.client.initialized())
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects with [`EtcdOptions`]' defaults.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Invalid`]: the URL does not parse;
    /// [`ClusterError::Store`] naming the members: none answered, or the
    /// login was refused.
    pub async fn connect(url: &str) -> Result<Self, ClusterError> {
        EtcdOptions::new(url)?.connect().await
    }

    fn new(options: EtcdOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                client: OnceCell::new(),
            }),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        self.inner.options.prefix.as_str()
    }

    /// The address shown in errors and `Debug`: the members, without the
    /// password.
    pub fn address(&self) -> &str {
        &self.inner.options.address
    }

    /// One read, to find out whether a member answers.
    async fn probe(&self) -> Result<(), ClusterError> {
        let key = self.inner.options.prefix.lease("");
        let client = self.client().await;
        self.timed(async { client.get(&key).await.map(drop) }).await
    }

    /// The client, made at the first call (it connects at its first
    /// request).
    async fn client(&self) -> &Client {
        let options = &self.inner.options;
        self.inner
            .client
            .get_or_init(|| std::future::ready(Client::new(options)))
            .await
    }

    /// `work` bounded by the operation timeout, its failure as this
    /// store's.
    async fn timed<T>(
        &self,
        work: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, ClusterError> {
        let timeout = self.inner.options.operation_timeout;
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result.map_err(|status| self.fail(Failure(status))),
            Err(_) => Err(self.fail(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within the operation timeout of {timeout:?}"),
            ))),
        }
    }

    fn fail(&self, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ClusterError {
        crate::redact::store_error(&self.inner.options.address, error)
    }
}

/// A gRPC failure as etcd or the transport reported it: its code, message
/// and cause, without the metadata.
#[derive(Debug)]
struct Failure(tonic::Status);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.0.code(), self.0.message())?;
        let mut cause = std::error::Error::source(&self.0);
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// A key's value that this store did not write: the key named.
fn unexpected(key: &[u8]) -> tonic::Status {
    tonic::Status::data_loss(format!(
        "the key `{}` holds what this store does not write",
        String::from_utf8_lossy(key)
    ))
}

/// The longest etcd lease etcd grants, in seconds.
const LONGEST_SECONDS: u64 = 9_000_000_000;

/// `duration` in whole seconds for an etcd lease: rounded up, at least 1,
/// at most what etcd grants.
fn lease_seconds(duration: Duration) -> i64 {
    let seconds = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    i64::try_from(seconds.clamp(1, LONGEST_SECONDS)).unwrap_or(i64::MAX)
}

/// An etcd revision as a token (revisions start at 1).
fn token(revision: i64) -> crate::FencingToken {
    crate::FencingToken::new(revision.unsigned_abs())
}

/// The revision at which a transaction was applied.
fn revision(header: Option<&proto::ResponseHeader>) -> Result<i64, tonic::Status> {
    header
        .map(|header| header.revision)
        .filter(|revision| *revision > 0)
        .ok_or_else(|| tonic::Status::data_loss("etcd's answer carries no revision"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_to_live_round_up_to_whole_seconds() {
        assert_eq!(lease_seconds(Duration::ZERO), 1);
        assert_eq!(lease_seconds(Duration::from_millis(1)), 1);
        assert_eq!(lease_seconds(Duration::from_secs(1)), 1);
        assert_eq!(lease_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(lease_seconds(Duration::MAX), 9_000_000_000);
    }

    #[test]
    fn the_store_is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<EtcdStore>();
        shared::<EtcdOptions>();
    }
}
