//! The lease store: one row per lease name, never deleted, so that its
//! token keeps growing across terms.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Executor as _, Row};

use super::PostgresStore;
use super::sql::{interval, text};
use crate::{ClusterError, FencingToken, Lease, LeaseInfo, LeaseStore};

impl PostgresStore {
    fn token(&self, row: &PgRow, column: &str) -> Result<FencingToken, ClusterError> {
        let token: i64 = row.try_get(column).map_err(|error| self.fail(error))?;
        Ok(FencingToken::new(token.unsigned_abs()))
    }
}

#[async_trait]
impl LeaseStore for PostgresStore {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError> {
        ClusterError::check("lease name", name)?;
        ClusterError::check("holder id", holder)?;
        // A free or expired row starts a new term (token + 1); the
        // holder's own valid row keeps its term; another's valid row is
        // left alone and nothing comes back. The row lock of the upsert
        // orders racing claimants: the first wins, the rest see its row.
        let sql = format!(
            "INSERT INTO {leases} AS l (name, holder, token, expires_at)
VALUES ({name}, {holder}, 1, clock_timestamp() + {ttl})
ON CONFLICT (name) DO UPDATE SET
    token = CASE WHEN l.holder = excluded.holder AND l.expires_at > clock_timestamp()
        THEN l.token ELSE l.token + 1 END,
    holder = excluded.holder,
    expires_at = excluded.expires_at
WHERE l.holder IS NULL OR l.holder = excluded.holder OR l.expires_at <= clock_timestamp()
RETURNING token",
            leases = self.inner.tables.leases,
            name = text(name),
            holder = text(holder),
            ttl = interval(ttl),
        );
        let row = self
            .timed(self.inner.pool.fetch_optional(sqlx::raw_sql(&sql)))
            .await?;
        row.map(|row| {
            Ok(Lease::new(
                Arc::from(name),
                Arc::from(holder),
                self.token(&row, "token")?,
            ))
        })
        .transpose()
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, ClusterError> {
        let sql = format!(
            "UPDATE {leases} SET expires_at = clock_timestamp() + {ttl}
WHERE name = {name} AND holder = {holder} AND token = {token}
    AND expires_at > clock_timestamp()",
            leases = self.inner.tables.leases,
            name = text(lease.name()),
            holder = text(lease.holder()),
            token = lease.token().get(),
            ttl = interval(ttl),
        );
        let done = self
            .timed(sqlx::raw_sql(&sql).execute(&self.inner.pool))
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, lease: &Lease) -> Result<(), ClusterError> {
        // The row stays, with its token, for the next term to count on.
        let sql = format!(
            "UPDATE {leases} SET holder = NULL, expires_at = clock_timestamp()
WHERE name = {name} AND holder = {holder} AND token = {token}",
            leases = self.inner.tables.leases,
            name = text(lease.name()),
            holder = text(lease.holder()),
            token = lease.token().get(),
        );
        self.timed(sqlx::raw_sql(&sql).execute(&self.inner.pool))
            .await?;
        Ok(())
    }

    async fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError> {
        ClusterError::check("lease name", name)?;
        // One reading of the clock for both the check and the time left.
        let sql = format!(
            "SELECT holder, token,
    (extract(epoch FROM expires_at - now) * 1000000)::bigint AS micros_left
FROM (SELECT *, clock_timestamp() AS now FROM {leases} WHERE name = {name}) AS l
WHERE holder IS NOT NULL AND expires_at > now",
            leases = self.inner.tables.leases,
            name = text(name),
        );
        let Some(row) = self
            .timed(self.inner.pool.fetch_optional(sqlx::raw_sql(&sql)))
            .await?
        else {
            return Ok(None);
        };
        let holder: String = row.try_get("holder").map_err(|error| self.fail(error))?;
        let micros: i64 = row
            .try_get("micros_left")
            .map_err(|error| self.fail(error))?;
        Ok(Some(LeaseInfo {
            holder: Arc::from(holder),
            token: self.token(&row, "token")?,
            expires_in: Duration::from_micros(micros.unsigned_abs()),
        }))
    }
}
