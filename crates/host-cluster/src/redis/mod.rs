//! The Redis lease and claim store.
//!
//! [`RedisStore`] keeps leases and claims in keys under one prefix
//! (default `host:`) of one Redis database. Every operation is one Lua
//! script, which Redis runs atomically; expiry is Redis's own (`PX`) and
//! claim deadlines count on the server's `TIME`, so only the server's
//! clock matters. A lease's fencing token comes from a counter per name
//! (`INCR <prefix>token:<name>`) in the very script that takes the lease.
//!
//! | key | holds |
//! |---|---|
//! | `<prefix>lease:<name>` | `<token>:<holder>` while held, with the lease's expiry |
//! | `<prefix>token:<name>` | the lease's term counter, never deleted |
//! | `<prefix>claim:<job>:<tick ms>` | a claim: holder, token, attempt, finished, deadline; no expiry, [`purge`](crate::ClaimStore::purge) deletes it |
//! | `<prefix>claim-token:<job>` | the job's claim counter, never deleted |
//! | `<prefix>claim-ticks:<job>` | the job's claimed ticks (a sorted set), for purge |
//!
//! The store connects at its first use through a [`ConnectionManager`],
//! which reconnects after a lost connection; each operation is bounded by
//! the operation timeout. It needs a single Redis instance (or a primary with replicas),
//! not a Redis Cluster: a script touches keys of several hash slots.
//!
//! # The guarantee: efficiency-grade
//!
//! On one instance that keeps its data, the store keeps the lease and
//! claim contracts. But Redis acknowledges a write before its replicas (or
//! its append-only file) have it: a failover to a replica, or a restart
//! without persistence, can lose a lease key and its token counter. Then a
//! second instance may take a lease the first still believes it holds, and
//! the counter starts again from 1, repeating tokens already handed out
//! (and a claimed tick may run again). Leases from this store make
//! duplicate work rare; for effects that must happen once, fence the writes
//! with a target that keeps its own highest token, such as the PostgreSQL
//! `Fence`. After a counter loss such a fence turns the new leaders' writes
//! away until their tokens come round to the highest one the fence
//! accepted (a token equal to it is taken): the work stops rather than
//! running twice, until the counter has grown to that token, or is set to
//! it by hand.
//!
//! ```no_run
//! use std::time::Duration;
//! use host_cluster::redis::RedisOptions;
//! use host_cluster::LeaseStore;
//!
//! # async fn run() -> Result<(), host_cluster::ClusterError> {
//! let store = RedisOptions::new("redis://cache.internal:6379/0")?
//!     .prefix("orders:")?
//!     .connect_lazily();
//! if let Some(lease) = store.try_acquire("billing", "instance-a", Duration::from_secs(15)).await? {
//!     // Lead, renewing before 15 s pass; carry lease.token() on fenced writes.
//!     store.release(&lease).await?;
//! }
//! # Ok(()) }
//! ```

mod address;
mod claims;
mod leases;
mod options;
mod prefix;
mod scripts;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::ClusterError;

pub use options::RedisOptions;

/// Leases and claims in Redis keys, shared by every instance that connects
/// to the same database and prefix. Connects at its first use; clones
/// share the connection.
///
/// [`connect`](Self::connect) takes a URL and defaults; [`RedisOptions`]
/// sets the prefix and the timeouts. `Debug` and every error show the
/// address (`redis://user@host:port/db`), never the password.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    options: RedisOptions,
    connection: OnceCell<ConnectionManager>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = &self.inner.options;
        f.debug_struct("RedisStore")
            .field("address", &options.address)
            .field("prefix", &options.prefix.as_str())
            .field("operation_timeout", &options.operation_timeout)
            .field("connected", &self.inner.connection.initialized())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects with [`RedisOptions`]' defaults.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Store`] naming the address: the URL does not parse,
    /// or the server cannot be reached or refused the login.
    pub async fn connect(url: &str) -> Result<Self, ClusterError> {
        RedisOptions::new(url)?.connect().await
    }

    fn new(options: RedisOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                connection: OnceCell::new(),
            }),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        self.inner.options.prefix.as_str()
    }

    /// The address shown in errors and `Debug`: the URL without its
    /// password.
    pub fn address(&self) -> &str {
        &self.inner.options.address
    }

    /// The connection, made at the first call (and again after a failed
    /// one); the manager reconnects by itself after that.
    async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let options = &self.inner.options;
        let manager = self
            .inner
            .connection
            .get_or_try_init(|| {
                install_crypto_provider(options);
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(options.connect_timeout))
                    .set_response_timeout(Some(options.response_timeout))
                    .set_number_of_retries(options.reconnect_retries)
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_with_config(options.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    /// `work` on the connection, bounded by the operation timeout, its
    /// failure as this store's.
    async fn timed<T>(
        &self,
        work: impl Future<Output = Result<T, redis::RedisError>>,
    ) -> Result<T, ClusterError> {
        let options = &self.inner.options;
        match tokio::time::timeout(options.operation_timeout, work).await {
            Ok(result) => result.map_err(|error| self.fail(error)),
            Err(_) => Err(self.fail(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no answer within the operation timeout of {:?}",
                    options.operation_timeout
                ),
            ))),
        }
    }

    /// Runs `invocation` of a script (built on the connection made first).
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, ClusterError> {
        self.timed(async {
            let mut connection = self.connection().await?;
            invocation.invoke_async(&mut connection).await
        })
        .await
    }

    fn fail(&self, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ClusterError {
        address::store_error(&self.inner.options.address, error)
    }

    /// An answer of a script that is not what the script returns: someone
    /// else wrote the key.
    fn unexpected(&self, key: &str, found: impl fmt::Debug) -> ClusterError {
        self.fail(format!(
            "the key `{key}` holds what this store does not write: {found:?}"
        ))
    }
}

/// The longest time to live or deadline the store passes on: 100 years.
/// Longer ones are taken as this, as they never end in practice, and
/// Redis's expiry (and a Lua number holding a deadline) has a range.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `duration` in whole milliseconds, at most [`LONGEST`].
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.min(LONGEST).as_millis()).unwrap_or(u64::MAX)
}

/// `rediss://` needs a rustls crypto provider: the process's default if
/// the application installed one, else ring (as sqlx uses). rustls picks
/// one by itself only when exactly one was built in; another crate that
/// turns on `aws-lc-rs` too would leave it none. Installing fails
/// harmlessly when one is installed already.
fn install_crypto_provider(options: &RedisOptions) {
    if matches!(
        options.client.get_connection_info().addr(),
        redis::ConnectionAddr::TcpTls { .. }
    ) && rustls::crypto::CryptoProvider::get_default().is_none()
    {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
