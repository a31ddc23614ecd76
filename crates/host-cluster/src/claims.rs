//! Claims on the ticks of cluster-wide schedules: one record per (job, tick),
//! so that each tick runs on one instance.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::{ClusterError, FencingToken, LeaseStore};

/// A tick of a job claimed by one instance: run it, then
/// [`finish`](ClaimStore::finish) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    job: Arc<str>,
    tick: SystemTime,
    holder: Arc<str>,
    token: FencingToken,
    attempt: u32,
}

impl Claim {
    /// A claim as a store made it: `tick` as the store keeps it (whole
    /// milliseconds since the Unix epoch).
    pub(crate) fn new(
        job: Arc<str>,
        tick: SystemTime,
        holder: Arc<str>,
        token: FencingToken,
        attempt: u32,
    ) -> Self {
        Self {
            job,
            tick,
            holder,
            token,
            attempt,
        }
    }

    /// The job's name.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// The tick claimed, as the schedule computed it (never when a run
    /// began), to the millisecond. With the job's name, a key the work can
    /// use for idempotency: a recovered tick runs again under the same key.
    pub fn tick(&self) -> SystemTime {
        self.tick
    }

    /// Who claimed it.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Strictly larger for each claim of the same job, a recovered tick's
    /// included: a fenced target turns away the writes of a claim that
    /// was recovered from.
    pub fn token(&self) -> FencingToken {
        self.token
    }

    /// 1 for the first claim of the tick, then one more for each recovery.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimOutcome {
    /// This instance claimed the tick: it runs it.
    Claimed(Claim),
    /// Another claim holds the tick: it runs there, ran there, or (at most
    /// once) will never run again.
    Taken {
        /// Who claimed it last.
        holder: String,
        /// Whether that claim was finished.
        finished: bool,
    },
}

/// Keeps one record per (job, tick), shared by every instance.
///
/// The contract, which every backend keeps and the conformance tests check:
///
/// 1. Of all the claims of one (job, tick), exactly one succeeds, whatever
///    the number of instances racing, unless recovery applies (3).
/// 2. Each successful claim of a job carries a strictly larger
///    [`FencingToken`] than every earlier claim of that job.
/// 3. Recovery (at least once): a claim made with a deadline that was not
///    finished by then may be claimed again, by a claim that also asks for
///    recovery; the new claim's attempt is one more. A claim without a
///    deadline is never claimed again (at most once).
/// 4. [`finish`](Self::finish) marks only its own claim: finishing a claim
///    that was recovered from does nothing.
/// 5. [`purge`](Self::purge) deletes the records of a job's ticks before a
///    time; the token keeps growing.
///
/// Times are the store's: the deadline counts on the store's clock.
#[async_trait]
pub trait ClaimStore: Send + Sync + 'static {
    /// Claims `tick` of `job` for `holder`. With `deadline`, the claim may
    /// be recovered by another claim with a deadline if it is not finished
    /// within it; without, it never is.
    ///
    /// # Errors
    ///
    /// An invalid job name or holder id, or the store failed (whether the
    /// claim was made is unknown: without a deadline the tick may be lost).
    async fn try_claim(
        &self,
        job: &str,
        tick: SystemTime,
        holder: &str,
        deadline: Option<Duration>,
    ) -> Result<ClaimOutcome, ClusterError>;

    /// Marks `claim` finished, if it is still the tick's claim.
    ///
    /// # Errors
    ///
    /// The store failed: with a deadline the tick may run again.
    async fn finish(&self, claim: &Claim) -> Result<(), ClusterError>;

    /// Deletes `job`'s records of ticks before `before`; returns how many.
    ///
    /// # Errors
    ///
    /// An invalid job name, or the store failed.
    async fn purge(&self, job: &str, before: SystemTime) -> Result<u64, ClusterError>;
}

/// A store that keeps both leases and claims, as a host with cluster
/// singletons and cluster-wide schedules uses one store for both. Every
/// type that is both a [`LeaseStore`] and a [`ClaimStore`] is one.
pub trait ClusterStore: LeaseStore + ClaimStore {}

impl<T: LeaseStore + ClaimStore> ClusterStore for T {}

/// Checks a claim's job name and holder id, and gives its tick in whole
/// milliseconds since the Unix epoch: what every store's `try_claim` does
/// first.
pub(crate) fn claim_args(job: &str, holder: &str, tick: SystemTime) -> Result<i64, ClusterError> {
    ClusterError::check("job name", job)?;
    ClusterError::check("holder id", holder)?;
    tick_millis(tick)
}

/// `tick` to whole milliseconds since the Unix epoch, as every store keeps
/// it; a tick before the epoch is refused.
pub(crate) fn tick_millis(tick: SystemTime) -> Result<i64, ClusterError> {
    tick.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|since| i64::try_from(since.as_millis()).ok())
        .ok_or_else(|| ClusterError::Invalid {
            what: "tick",
            value: format!("{tick:?}"),
            why: "it is before 1970 or too far ahead",
        })
}

/// The tick a store keeps, back as a time.
pub(crate) fn tick_time(millis: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(millis.unsigned_abs())
}
