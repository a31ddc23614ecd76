//! The in-process lease store: for tests and single-process applications.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::time::Instant;

use crate::claims::{claim_args, tick_millis, tick_time};
use crate::{
    Claim, ClaimOutcome, ClaimStore, ClusterError, FencingToken, Lease, LeaseInfo, LeaseStore,
};

/// Leases held in this process's memory, on tokio's clock (so tests run on
/// paused time). Clones share the leases; two stores made with
/// [`new`](Self::new) share nothing (each is its own namespace).
///
/// Nothing outlives the process: for several processes on one machine use
/// the [`FileLockStore`](crate::FileLockStore), across machines a database.
#[derive(Debug, Clone, Default)]
pub struct InProcessStore {
    leases: Arc<Mutex<HashMap<Arc<str>, Entry>>>,
    jobs: Arc<Mutex<HashMap<Arc<str>, Job>>>,
}

/// One job's claims, by tick (milliseconds since the epoch).
#[derive(Debug, Default)]
struct Job {
    /// The last claim's token; the next claim's is larger.
    token: u64,
    ticks: BTreeMap<i64, TickClaim>,
}

#[derive(Debug)]
struct TickClaim {
    holder: Arc<str>,
    token: u64,
    attempt: u32,
    finished: bool,
    /// Past it an unfinished claim may be recovered; never without one.
    deadline: Option<Instant>,
}

/// One lease name: its last term, held or not.
#[derive(Debug)]
struct Entry {
    holder: Option<Arc<str>>,
    /// The last term's token; the next term's is larger.
    token: u64,
    expires: Instant,
}

impl Entry {
    fn valid(&self, now: Instant) -> Option<&Arc<str>> {
        self.holder.as_ref().filter(|_| now < self.expires)
    }
}

impl InProcessStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_leases<T>(&self, f: impl FnOnce(&mut HashMap<Arc<str>, Entry>) -> T) -> T {
        // Every change below is one assignment: a poisoned map is whole.
        f(&mut self.leases.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn with_jobs<T>(&self, f: impl FnOnce(&mut HashMap<Arc<str>, Job>) -> T) -> T {
        f(&mut self.jobs.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// `now + ttl` on tokio's clock, or as far as an instant goes.
fn until(now: Instant, ttl: Duration) -> Instant {
    Instant::from_std(crate::lease::until(now.into_std(), ttl))
}

#[async_trait]
impl LeaseStore for InProcessStore {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError> {
        ClusterError::check("lease name", name)?;
        ClusterError::check("holder id", holder)?;
        let now = Instant::now();
        Ok(self.with_leases(|leases| {
            let entry = leases.entry(Arc::from(name)).or_insert(Entry {
                holder: None,
                token: 0,
                expires: now,
            });
            match entry.valid(now) {
                Some(current) if &**current != holder => return None,
                Some(_) => {}
                None => {
                    entry.token += 1;
                    entry.holder = Some(Arc::from(holder));
                }
            }
            entry.expires = until(now, ttl);
            Some(Lease::new(
                Arc::from(name),
                Arc::from(holder),
                FencingToken::new(entry.token),
            ))
        }))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, ClusterError> {
        let now = Instant::now();
        Ok(self.with_leases(|leases| {
            let Some(entry) = leases.get_mut(lease.name()) else {
                return false;
            };
            let ours = entry.token == lease.token().get()
                && entry
                    .valid(now)
                    .is_some_and(|holder| &**holder == lease.holder());
            if ours {
                entry.expires = until(now, ttl);
            }
            ours
        }))
    }

    async fn release(&self, lease: &Lease) -> Result<(), ClusterError> {
        let now = Instant::now();
        self.with_leases(|leases| {
            if let Some(entry) = leases.get_mut(lease.name())
                && entry.token == lease.token().get()
                && entry.holder.as_deref() == Some(lease.holder())
            {
                entry.holder = None;
                entry.expires = now;
            }
        });
        Ok(())
    }

    async fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError> {
        ClusterError::check("lease name", name)?;
        let now = Instant::now();
        Ok(self.with_leases(|leases| {
            let entry = leases.get(name)?;
            let holder = entry.valid(now)?.clone();
            Some(LeaseInfo {
                holder,
                token: FencingToken::new(entry.token),
                expires_in: entry.expires - now,
            })
        }))
    }
}

#[async_trait]
impl ClaimStore for InProcessStore {
    async fn try_claim(
        &self,
        job: &str,
        tick: SystemTime,
        holder: &str,
        deadline: Option<Duration>,
    ) -> Result<ClaimOutcome, ClusterError> {
        let millis = claim_args(job, holder, tick)?;
        let now = Instant::now();
        Ok(self.with_jobs(|jobs| {
            let entry = jobs.entry(Arc::from(job)).or_default();
            let attempt = match entry.ticks.get(&millis) {
                None => 1,
                Some(earlier) => {
                    let recoverable = deadline.is_some()
                        && !earlier.finished
                        && earlier.deadline.is_some_and(|at| at <= now);
                    if !recoverable {
                        return ClaimOutcome::Taken {
                            holder: earlier.holder.to_string(),
                            finished: earlier.finished,
                        };
                    }
                    earlier.attempt + 1
                }
            };
            entry.token += 1;
            let holder: Arc<str> = Arc::from(holder);
            entry.ticks.insert(
                millis,
                TickClaim {
                    holder: holder.clone(),
                    token: entry.token,
                    attempt,
                    finished: false,
                    deadline: deadline.map(|deadline| until(now, deadline)),
                },
            );
            ClaimOutcome::Claimed(Claim::new(
                Arc::from(job),
                tick_time(millis),
                holder,
                FencingToken::new(entry.token),
                attempt,
            ))
        }))
    }

    async fn finish(&self, claim: &Claim) -> Result<(), ClusterError> {
        let millis = tick_millis(claim.tick())?;
        self.with_jobs(|jobs| {
            if let Some(record) = jobs
                .get_mut(claim.job())
                .and_then(|job| job.ticks.get_mut(&millis))
                && record.token == claim.token().get()
            {
                record.finished = true;
            }
        });
        Ok(())
    }

    async fn purge(&self, job: &str, before: SystemTime) -> Result<u64, ClusterError> {
        ClusterError::check("job name", job)?;
        let before = tick_millis(before)?;
        Ok(self.with_jobs(|jobs| {
            let Some(entry) = jobs.get_mut(job) else {
                return 0;
            };
            let kept = entry.ticks.split_off(&before);
            let purged = std::mem::replace(&mut entry.ticks, kept).len();
            u64::try_from(purged).unwrap_or(u64::MAX)
        }))
    }
}
