//! The claim store: one row per (job, tick in milliseconds), and one per
//! job holding its token counter.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresStore;
use super::sql::{interval, text};
use crate::claims::{claim_args, tick_millis, tick_time};
use crate::{Claim, ClaimOutcome, ClaimStore, ClusterError};

#[async_trait]
impl ClaimStore for PostgresStore {
    async fn try_claim(
        &self,
        job: &str,
        tick: SystemTime,
        holder: &str,
        deadline: Option<Duration>,
    ) -> Result<ClaimOutcome, ClusterError> {
        let millis = claim_args(job, holder, tick)?;
        let t = &self.inner.tables;
        let deadline = deadline.map_or_else(
            || "NULL::timestamptz".to_owned(),
            |deadline| format!("clock_timestamp() + {}", interval(deadline)),
        );
        // The job's counter gives this claim its token (its row lock
        // orders the job's claims). The tick's row is inserted, or on a
        // conflict updated to itself unless recovery applies; either way
        // it comes back, and it is ours when it carries our token. The
        // recovery test is read once, so every column agrees.
        let sql = format!(
            "WITH next AS (
    INSERT INTO {jobs} AS j (job, token) VALUES ({job}, 1)
    ON CONFLICT (job) DO UPDATE SET token = j.token + 1
    RETURNING token
), claim AS (
    INSERT INTO {claims} AS c (job, tick_ms, holder, token, attempt, finished, deadline)
    SELECT {job}, {millis}, {holder}, next.token, 1, false, {deadline} FROM next
    ON CONFLICT (job, tick_ms) DO UPDATE SET (holder, token, attempt, finished, deadline) = (
        SELECT CASE WHEN r THEN excluded.holder ELSE c.holder END,
            CASE WHEN r THEN excluded.token ELSE c.token END,
            CASE WHEN r THEN c.attempt + 1 ELSE c.attempt END,
            CASE WHEN r THEN false ELSE c.finished END,
            CASE WHEN r THEN excluded.deadline ELSE c.deadline END
        FROM (SELECT COALESCE(excluded.deadline IS NOT NULL AND NOT c.finished
            AND c.deadline <= clock_timestamp(), false) AS r) AS recovery
    )
    RETURNING c.holder, c.token, c.attempt, c.finished
)
SELECT claim.holder, claim.token, claim.attempt, claim.finished, next.token AS ours
FROM claim, next",
            jobs = t.claim_jobs,
            claims = t.claims,
            job = text(job),
            holder = text(holder),
        );
        let row = self
            .timed(sqlx::raw_sql(&sql).fetch_one(&self.inner.pool))
            .await?;
        let found: String = row.try_get("holder").map_err(|error| self.fail(error))?;
        let token: i64 = row.try_get("token").map_err(|error| self.fail(error))?;
        let ours: i64 = row.try_get("ours").map_err(|error| self.fail(error))?;
        if token != ours {
            return Ok(ClaimOutcome::Taken {
                holder: found,
                finished: row.try_get("finished").map_err(|error| self.fail(error))?,
            });
        }
        let attempt: i32 = row.try_get("attempt").map_err(|error| self.fail(error))?;
        Ok(ClaimOutcome::Claimed(Claim::new(
            Arc::from(job),
            tick_time(millis),
            Arc::from(found),
            crate::FencingToken::new(token.unsigned_abs()),
            attempt.unsigned_abs(),
        )))
    }

    async fn finish(&self, claim: &Claim) -> Result<(), ClusterError> {
        let sql = format!(
            "UPDATE {claims} SET finished = true
WHERE job = {job} AND tick_ms = {millis} AND token = {token}",
            claims = self.inner.tables.claims,
            job = text(claim.job()),
            millis = tick_millis(claim.tick())?,
            token = claim.token().get(),
        );
        self.timed(sqlx::raw_sql(&sql).execute(&self.inner.pool))
            .await?;
        Ok(())
    }

    async fn purge(&self, job: &str, before: SystemTime) -> Result<u64, ClusterError> {
        ClusterError::check("job name", job)?;
        // The job's counter row stays: the tokens go on growing.
        let sql = format!(
            "DELETE FROM {claims} WHERE job = {job} AND tick_ms < {before}",
            claims = self.inner.tables.claims,
            job = text(job),
            before = tick_millis(before)?,
        );
        let done = self
            .timed(sqlx::raw_sql(&sql).execute(&self.inner.pool))
            .await?;
        Ok(done.rows_affected())
    }
}
