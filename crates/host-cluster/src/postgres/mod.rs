//! The PostgreSQL lease and claim store, its migrations, and the fence for
//! targets in PostgreSQL.
//!
//! [`PostgresStore`] keeps leases and claims in tables of one
//! [`Namespace`]. Every operation is one statement in its own implicit
//! transaction, sent as a simple query with no prepared statement, and
//! keeps no session state (no advisory lock, no `SET`): a backend that is
//! terminated takes nothing with it that an instance relies on, and the
//! store works through a transaction pooler such as PgBouncer. Expiry and
//! deadlines count on the database's clock (`clock_timestamp()`) only.
//!
//! # Fencing a write
//!
//! A lease keeps duplicates rare; the [`Fence`] makes a stale holder's
//! writes fail. In the write's own transaction, [`Fence::check`] records
//! the token as the highest accepted for the lease name, or turns it away
//! with [`FenceError::Stale`] if a higher one was accepted: the write
//! commits only together with its token's acceptance. It works whatever
//! store granted the lease, as long as the target is in PostgreSQL. With
//! the PostgreSQL store in the same database, [`Fence::check_lease`] reads
//! the lease row itself (`FOR SHARE`) instead.
//!
//! ```no_run
//! use std::time::Duration;
//! use host_cluster::postgres::{Fence, FenceError, PostgresStore};
//! use host_cluster::LeaseStore;
//!
//! # async fn run(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresStore::connect("postgres://app@db.internal/orders").await?;
//! let fence = store.fence();
//! if let Some(lease) = store.try_acquire("billing", "instance-a", Duration::from_secs(15)).await? {
//!     let mut tx = pool.begin().await?;
//!     match fence.check(&mut *tx, lease.name(), lease.token()).await {
//!         Ok(()) => {
//!             sqlx::query("UPDATE invoices SET sent = true WHERE id = $1")
//!                 .bind(42_i64)
//!                 .execute(&mut *tx)
//!                 .await?;
//!             tx.commit().await?;
//!         }
//!         // A newer term wrote already: this instance no longer leads.
//!         Err(FenceError::Stale { .. }) => tx.rollback().await?,
//!         Err(other) => return Err(other.into()),
//!     }
//! }
//! # Ok(()) }
//! ```

mod address;
mod claims;
mod fence;
mod lazy;
mod leases;
mod migrations;
mod namespace;
mod options;
mod sql;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::ClusterError;

pub use fence::{Fence, FenceError};
pub use lazy::LazyPostgresStore;
pub use namespace::Namespace;
pub use options::PostgresOptions;

/// Leases and claims in PostgreSQL tables, shared by every instance that
/// connects to the same database and namespace. Clones share the pool.
///
/// [`connect`](Self::connect) takes a URL and defaults;
/// [`PostgresOptions`] sets the namespace, the pool's bounds, and whether
/// to migrate at connect. `Debug` and every error show the address
/// (`postgres://user@host:port/db`), never the password.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    address: Arc<str>,
    namespace: Namespace,
    tables: namespace::Tables,
    timeout: Duration,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("address", &self.inner.address)
            .field("namespace", &self.inner.namespace)
            .field("operation_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects with [`PostgresOptions`]' defaults and applies the
    /// migrations.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Store`] naming the address: the URL does not parse,
    /// the database cannot be reached, or a migration failed.
    pub async fn connect(url: &str) -> Result<Self, ClusterError> {
        PostgresOptions::new(url)?.connect().await
    }

    fn from_parts(pool: PgPool, options: &PostgresOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                address: options.address.clone(),
                tables: options.namespace.tables(),
                namespace: options.namespace.clone(),
                timeout: options.operation_timeout,
            }),
        }
    }

    /// Applies the crate's migrations not yet recorded; a no-op when all
    /// are, and safe while other instances do the same.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Store`]: the database failed or refused a migration.
    pub async fn migrate(&self) -> Result<(), ClusterError> {
        migrations::run(&self.inner.pool, &self.inner.namespace, self.inner.timeout).await
    }

    /// The SQL of every migration for this store's namespace, to apply by
    /// hand (see [`Namespace::migration_sql`]).
    pub fn migration_sql(&self) -> String {
        self.inner.namespace.migration_sql()
    }

    /// The fence over this store's namespace: [`Fence::check_lease`] reads
    /// its lease rows.
    pub fn fence(&self) -> Fence {
        Fence::new(&self.inner.namespace)
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.inner.namespace
    }

    /// The pool, for an application's own queries in the same database
    /// (its fenced writes, say).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    async fn timed<T>(
        &self,
        work: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, ClusterError> {
        timed(&self.inner.address, self.inner.timeout, work).await
    }

    fn fail(&self, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ClusterError {
        address::store_error(&self.inner.address, error)
    }
}

impl Namespace {
    /// The SQL of every migration, as one idempotent script recorded in
    /// the crate's own migrations table; for applications that run
    /// migrations themselves (with
    /// [`migrate_on_connect(false)`](PostgresOptions::migrate_on_connect)).
    pub fn migration_sql(&self) -> String {
        migrations::script(self)
    }
}

/// Applies the crate's migrations to `namespace` through an application's
/// own pool: for [`Fence`] over a database whose leases live elsewhere.
///
/// # Errors
///
/// [`ClusterError::Store`] naming the pool's address: the database failed
/// or refused a migration.
pub async fn migrate(pool: &PgPool, namespace: &Namespace) -> Result<(), ClusterError> {
    migrations::run(pool, namespace, Duration::from_secs(30)).await
}

/// `work` bounded by `timeout`, its failure as the store's at `address`.
async fn timed<T>(
    address: &str,
    timeout: Duration,
    work: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result.map_err(|error| address::store_error(address, error)),
        Err(_) => Err(address::store_error(
            address,
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within the operation timeout of {timeout:?}"),
            ),
        )),
    }
}
