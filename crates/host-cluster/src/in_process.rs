//! The in-process lease store: for tests and single-process applications.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::{ClusterError, FencingToken, Lease, LeaseInfo, LeaseStore};

/// Leases held in this process's memory, on tokio's clock (so tests run on
/// paused time). Clones share the leases; two stores made with
/// [`new`](Self::new) share nothing (each is its own namespace).
///
/// Nothing outlives the process: for several processes on one machine use
/// the [`FileLockStore`](crate::FileLockStore), across machines a database.
#[derive(Debug, Clone, Default)]
pub struct InProcessStore {
    leases: Arc<Mutex<HashMap<Arc<str>, Entry>>>,
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
