//! Fencing for targets in PostgreSQL: a write commits only together with
//! the acceptance of its lease's token, in the same transaction.

use sqlx::{Executor as _, PgConnection, Row};

use super::Namespace;
use super::namespace::Tables;
use super::sql::text;
use crate::{ClusterError, FencingToken, Lease};

/// Checks fencing tokens inside the caller's transaction, over the tables
/// of one [`Namespace`] (created by the crate's migrations: see
/// [`migrate`](super::migrate)). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Fence {
    tables: Tables,
}

/// Why a fenced write must not commit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FenceError {
    /// A newer term of the lease was accepted (or holds the lease): this
    /// term's holder no longer leads. Roll the transaction back.
    #[error("lease `{name}`: token {token} is stale, token {highest} was accepted or holds it")]
    Stale {
        /// The lease name.
        name: String,
        /// The token the write carried.
        token: FencingToken,
        /// The highest token accepted, or the current term's.
        highest: FencingToken,
    },
    /// The lease row says this term is over: it expired by the database's
    /// clock or was released, and no newer term began yet.
    #[error("lease `{name}`: the term of token {token} is over (expired or released)")]
    Lapsed {
        /// The lease name.
        name: String,
        /// The token the write carried.
        token: FencingToken,
    },
    /// The lease name is not one a store takes, or the token is larger
    /// than a `bigint` holds.
    #[error("lease `{name}`: cannot fence token {token}: {why}")]
    Invalid {
        /// The lease name.
        name: String,
        /// The token the write carried.
        token: FencingToken,
        /// What is wrong.
        why: String,
    },
    /// The database failed: whether the transaction can commit is
    /// unknown; roll it back.
    #[error("lease `{name}`: the fence check failed in the database: {source}")]
    Database {
        /// The lease name.
        name: String,
        /// What failed.
        #[source]
        source: sqlx::Error,
    },
}

impl Fence {
    /// The fence over `namespace`'s tables.
    pub fn new(namespace: &Namespace) -> Self {
        Self {
            tables: namespace.tables(),
        }
    }

    /// Accepts `token` for lease `name` if it is at least the highest
    /// accepted, recording it; otherwise [`FenceError::Stale`]. Call it in
    /// the write's transaction, before the write: the row stays locked
    /// until the transaction ends, so a newer term's check waits for it
    /// and this term's write cannot commit after a newer one's.
    ///
    /// # Errors
    ///
    /// [`FenceError::Stale`] for a token below the highest accepted;
    /// [`FenceError::Invalid`], [`FenceError::Database`].
    pub async fn check(
        &self,
        conn: &mut PgConnection,
        name: &str,
        token: FencingToken,
    ) -> Result<(), FenceError> {
        let value = checked(name, token)?;
        // Always the row back: the highest token after this statement.
        let sql = format!(
            "INSERT INTO {fences} AS f (name, token) VALUES ({name}, {value})
ON CONFLICT (name) DO UPDATE SET token = GREATEST(f.token, excluded.token)
RETURNING token",
            fences = self.tables.fences,
            name = text(name),
        );
        // Through the executor's own method, whose future is `Send` for any
        // caller: `RawSql`'s generic async methods are not provably so, and
        // a fence must work inside a spawned task or an `async_trait`.
        let row = (&mut *conn)
            .fetch_one(sqlx::raw_sql(&sql))
            .await
            .map_err(|source| database(name, source))?;
        let highest: i64 = row.try_get(0).map_err(|source| database(name, source))?;
        if highest > value {
            return Err(FenceError::Stale {
                name: name.to_owned(),
                token,
                highest: FencingToken::new(highest.unsigned_abs()),
            });
        }
        Ok(())
    }

    /// Checks `lease` against its row in the PostgreSQL lease store of
    /// this namespace, in the caller's transaction: the row must still
    /// carry this term (holder and token) and be valid by the database's
    /// clock. The row is read `FOR SHARE`, so no new term can begin until
    /// the transaction ends; the write still has to end within the time
    /// to live, since expiry needs no lock.
    ///
    /// # Errors
    ///
    /// [`FenceError::Stale`] when a newer term holds the row,
    /// [`FenceError::Lapsed`] when this term expired or was released;
    /// [`FenceError::Invalid`], [`FenceError::Database`].
    pub async fn check_lease(
        &self,
        conn: &mut PgConnection,
        lease: &Lease,
    ) -> Result<(), FenceError> {
        let (name, token) = (lease.name(), lease.token());
        let value = checked(name, token)?;
        let sql = format!(
            "SELECT token, holder, holder IS NOT NULL AND expires_at > clock_timestamp() AS valid
FROM {leases} WHERE name = {name} FOR SHARE",
            leases = self.tables.leases,
            name = text(name),
        );
        let row = (&mut *conn)
            .fetch_optional(sqlx::raw_sql(&sql))
            .await
            .map_err(|source| database(name, source))?;
        let lapsed = || FenceError::Lapsed {
            name: name.to_owned(),
            token,
        };
        let Some(row) = row else {
            return Err(lapsed());
        };
        let found: i64 = row
            .try_get("token")
            .map_err(|source| database(name, source))?;
        let holder: Option<String> = row
            .try_get("holder")
            .map_err(|source| database(name, source))?;
        let valid: bool = row
            .try_get("valid")
            .map_err(|source| database(name, source))?;
        if found > value {
            return Err(FenceError::Stale {
                name: name.to_owned(),
                token,
                highest: FencingToken::new(found.unsigned_abs()),
            });
        }
        if found != value || !valid || holder.as_deref() != Some(lease.holder()) {
            return Err(lapsed());
        }
        Ok(())
    }
}

/// The token as a `bigint`, for a lease name a store takes.
fn checked(name: &str, token: FencingToken) -> Result<i64, FenceError> {
    let invalid = |why: String| FenceError::Invalid {
        name: name.to_owned(),
        token,
        why,
    };
    ClusterError::check("lease name", name).map_err(|error| invalid(error.to_string()))?;
    i64::try_from(token.get()).map_err(|_| invalid("it is larger than a bigint holds".to_owned()))
}

fn database(name: &str, source: sqlx::Error) -> FenceError {
    FenceError::Database {
        name: name.to_owned(),
        source,
    }
}

#[cfg(test)]
mod send_tests {
    use super::*;

    /// A fenced write can run on a spawned task (as a service's `execute`,
    /// an `async_trait`, must be `Send`): this does not compile when the
    /// check's future is not `Send` for every borrow of the connection.
    #[allow(dead_code)]
    fn fenced_writes_can_be_spawned(fence: Fence, pool: sqlx::PgPool) {
        drop(tokio::spawn(async move {
            let mut tx = pool.begin().await?;
            fence
                .check(&mut tx, "x", FencingToken::new(1))
                .await
                .map_err(|_| sqlx::Error::RowNotFound)?;
            tx.commit().await
        }));
    }
}
