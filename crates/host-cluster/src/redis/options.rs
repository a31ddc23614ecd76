//! How to reach the server, and the store's bounds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::{Client, IntoConnectionInfo as _};

use super::prefix::Prefix;
use super::{RedisStore, address};
use crate::ClusterError;

/// How a [`RedisStore`] connects: the URL's host, port, database, user,
/// password and TLS (`rediss://`) as the `redis` crate reads them, plus
/// the key prefix and the bounds below.
///
/// ```no_run
/// use std::time::Duration;
/// use host_cluster::redis::RedisOptions;
///
/// # async fn run() -> Result<(), host_cluster::ClusterError> {
/// let store = RedisOptions::new("rediss://app:secret@cache.internal:6380/0")?
///     .prefix("orders:")?
///     .response_timeout(Duration::from_secs(2))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Clone)]
pub struct RedisOptions {
    pub(super) client: Client,
    pub(super) address: Arc<str>,
    pub(super) prefix: Prefix,
    pub(super) connect_timeout: Duration,
    pub(super) response_timeout: Duration,
    pub(super) operation_timeout: Duration,
    pub(super) reconnect_retries: usize,
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the client: its connection info holds the password.
        f.debug_struct("RedisOptions")
            .field("address", &self.address)
            .field("prefix", &self.prefix.as_str())
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .finish()
    }
}

impl RedisOptions {
    /// Options from a connection URL: `redis://[user[:password]@]host[:port][/db]`,
    /// `rediss://...` for TLS (the server's certificate checked against
    /// the Web PKI roots), or `redis+unix:///path?db=N`.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Store`] when the URL does not parse; the error
    /// shows the URL without its password or query.
    pub fn new(url: &str) -> Result<Self, ClusterError> {
        let info = url
            .into_connection_info()
            .map_err(|error| address::store_error(&address::of_url(url), error))?;
        let address = Arc::from(address::of_info(&info));
        let client = Client::open(info).map_err(|error| address::store_error(&address, error))?;
        Ok(Self {
            client,
            address,
            prefix: Prefix::default(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(10),
            reconnect_retries: 2,
        })
    }

    /// The prefix of every key the store writes, so that several
    /// applications share one database without meeting. Default `host:`.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Invalid`] naming the `redis key prefix`: it takes 1
    /// to 64 bytes of ASCII letters, digits and `: _ - . /` (no glob
    /// characters, so that `SCAN MATCH <prefix>*` finds the store's keys).
    pub fn prefix(mut self, prefix: &str) -> Result<Self, ClusterError> {
        self.prefix = Prefix::new(prefix)?;
        Ok(self)
    }

    /// How long one connection attempt may take. Default: 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the server may take to answer one command. Default: 5 s.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long an operation may take in all, connecting and reconnecting
    /// included. Default: 10 s. Keep it well below the leases' renew
    /// deadline.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How many times a lost connection is tried again (with a growing
    /// delay, at most 1 s) before an operation fails; the next operation
    /// starts over. Default: 2.
    pub fn reconnect_retries(mut self, retries: usize) -> Self {
        self.reconnect_retries = retries;
        self
    }

    /// A store that connects at its first use, and tries again at the next
    /// use after a failed connect: for a host built before the server
    /// answers. Needs no runtime.
    pub fn connect_lazily(self) -> RedisStore {
        RedisStore::new(self)
    }

    /// Connects now, to fail early.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Store`] naming the address (never the password):
    /// the server could not be reached within the operation timeout, or
    /// refused the login.
    pub async fn connect(self) -> Result<RedisStore, ClusterError> {
        let store = RedisStore::new(self);
        store
            .timed(async { store.connection().await.map(drop) })
            .await?;
        Ok(store)
    }
}
