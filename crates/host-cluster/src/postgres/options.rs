//! How to reach the database, and the store's bounds.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{LazyPostgresStore, Namespace, PostgresStore, address, migrations};
use crate::ClusterError;

/// How a [`PostgresStore`] connects: the URL's host, user, password, TLS
/// (`sslmode`, `sslrootcert`, ...) exactly as sqlx reads them, plus the
/// namespace and the bounds below.
///
/// ```no_run
/// use std::time::Duration;
/// use host_cluster::postgres::{Namespace, PostgresOptions};
///
/// # async fn run() -> Result<(), host_cluster::ClusterError> {
/// let store = PostgresOptions::new("postgres://app@db.internal/orders?sslmode=verify-full")?
///     .namespace(Namespace::new("scheduling", "host_")?)
///     .acquire_timeout(Duration::from_secs(3))
///     .migrate_on_connect(false)
///     .connect()
///     .await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Clone)]
pub struct PostgresOptions {
    pub(super) connect: PgConnectOptions,
    pub(super) address: Arc<str>,
    pub(super) namespace: Namespace,
    max_connections: u32,
    acquire_timeout: Duration,
    pub(super) operation_timeout: Duration,
    statement_timeout: Option<Duration>,
    migrate: bool,
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the connect options: their Debug shows the password.
        f.debug_struct("PostgresOptions")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl PostgresOptions {
    /// Options from a connection URL (`postgres://user:password@host:port/db?sslmode=...`).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Store`] when the URL does not parse; the error
    /// shows the URL without its password or query.
    pub fn new(url: &str) -> Result<Self, ClusterError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|error| address::store_error(&address::of_url(url), error))?;
        Ok(Self::from_connect_options(connect))
    }

    /// Options from sqlx's connect options, built however the application
    /// likes.
    pub fn from_connect_options(connect: PgConnectOptions) -> Self {
        let address = Arc::from(address::of_options(&connect));
        // An application_name from the URL or the options stays.
        let connect = match connect.get_application_name() {
            Some(_) => connect,
            None => connect.application_name("host-cluster"),
        };
        Self {
            connect,
            address,
            namespace: Namespace::default(),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(10),
            statement_timeout: Some(Duration::from_secs(5)),
            migrate: true,
        }
    }

    /// The schema and table prefix. Default: [`Namespace::default`]
    /// (`public`, `host_`).
    pub fn namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// The pool's largest number of connections, at least 1. Default: 4
    /// (each operation is one short statement).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long an operation waits for a connection, connecting included
    /// (it is also the connect timeout). Default: 5 s.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long an operation may take in all, on this side of the wire,
    /// even when the network or the server stalls. Default: 10 s. Keep it
    /// well below the leases' renew deadline.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The server-side `statement_timeout`, sent as a startup parameter
    /// (no `SET`); `None` leaves what the URL's `options` or the role says.
    /// Default: 5 s. PgBouncer drops startup `options`
    /// (`ignore_startup_parameters`): through it, set the timeout on the
    /// role or in PgBouncer; the operation timeout bounds the wait anyway.
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// The `application_name` the connections show in `pg_stat_activity`.
    /// Default: the URL's `application_name`, else `host-cluster`.
    pub fn application_name(mut self, name: &str) -> Self {
        self.connect = self.connect.application_name(name);
        self
    }

    /// Whether [`connect`](Self::connect) applies the crate's migrations.
    /// Default: `true`. Turn it off to run them yourself, from
    /// [`Namespace::migration_sql`] or [`PostgresStore::migrate`], and for
    /// a role that may not create tables (even `IF NOT EXISTS` checks that
    /// right).
    pub fn migrate_on_connect(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// A store that connects (and migrates) at its first use, and tries
    /// again at the next use after a failed connect: for a host built
    /// before the database answers.
    pub fn connect_lazily(self) -> LazyPostgresStore {
        LazyPostgresStore::new(self)
    }

    /// Connects (one connection at once, to fail early), then migrates
    /// unless told not to.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Store`] naming the address (never the password):
    /// the database could not be reached within the acquire timeout, or
    /// refused the login or a migration.
    pub async fn connect(self) -> Result<PostgresStore, ClusterError> {
        let mut connect = self.connect.clone();
        if let Some(timeout) = self.statement_timeout {
            let millis = timeout.as_millis().max(1).to_string();
            connect = connect.options([("statement_timeout", millis.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(Duration::from_secs(60))
            .connect_with(connect)
            .await
            .map_err(|error| address::store_error(&self.address, error))?;
        let store = PostgresStore::from_parts(pool, &self);
        if self.migrate {
            migrations::run(&store.inner.pool, &self.namespace, self.operation_timeout).await?;
        }
        Ok(store)
    }
}
