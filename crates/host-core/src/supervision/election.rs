//! Leader election for one cluster singleton: campaigning for its lease,
//! and renewing it while leading, on the leader's own monotonic clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_cluster::{FencingToken, Lease, LeaseInfo, LeaseStore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::Singleton;
use crate::logging::LIFETIME_TARGET;
use crate::services::record::lock;
use crate::supervision::balance::Balance;

/// The metric of leadership changes, by singleton and `to` (`leader`,
/// `standby`).
pub(crate) const TRANSITIONS_METRIC: &str = "host_leadership_transitions_total";
/// The metric of how long a renew took, by singleton.
pub(crate) const RENEW_METRIC: &str = "host_lease_renew_seconds";

/// One singleton's campaign: its lease store, its timings and this
/// instance's holder id.
pub(crate) struct Election {
    pub(crate) store: Arc<dyn LeaseStore>,
    pub(crate) singleton: Singleton,
    pub(crate) holder: Arc<str>,
    /// The group that spreads this host's singletons over the instances,
    /// when it runs two or more and `cluster.balance` is on.
    pub(crate) balance: Option<Arc<Balance>>,
}

/// Why a leader stopped leading without choosing to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lost {
    /// The store said the lease is no longer this term's: it expired, or
    /// another instance took it.
    Expired,
    /// No renew succeeded within the renew deadline (the store unreachable,
    /// or too slow); the last error, if one was returned.
    RenewDeadline(Option<String>),
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Expired => f.write_str("the lease expired or was taken"),
            Lost::RenewDeadline(None) => {
                f.write_str("no renew succeeded within the renew deadline")
            }
            Lost::RenewDeadline(Some(error)) => write!(
                f,
                "no renew succeeded within the renew deadline (connection lost: {error})"
            ),
        }
    }
}

/// A term as leader: the lease, and a token cancelled when it is lost.
/// Dropping it stops renewing (it does not release the lease).
pub(crate) struct Term {
    pub(crate) lease: Lease,
    /// Cancelled when the term is lost, at the renew deadline at the latest.
    pub(crate) revoked: CancellationToken,
    lost: Arc<Mutex<Option<Lost>>>,
    _renewing: AbortOnDropHandle<()>,
}

impl Term {
    pub(crate) fn token(&self) -> FencingToken {
        self.lease.token()
    }

    /// Why it was lost, once it was.
    pub(crate) fn lost(&self) -> Option<Lost> {
        lock(&self.lost).clone()
    }
}

/// How one round of campaigning went.
pub(crate) enum Round {
    Leading(Term),
    /// Another instance leads (if the store said who).
    Standby(Option<LeaseInfo>),
    /// Nobody leads: a look without a try found the lease free.
    Free,
    /// The store failed or did not answer within the retry period.
    Failed(String),
}

impl Election {
    /// One try to take the lease.
    pub(crate) async fn try_lead(&self) -> Round {
        let name = self.singleton.name();
        let retry = self.singleton.retry_period_duration();
        let sent = Instant::now();
        let acquired = tokio::time::timeout(
            retry,
            self.store
                .try_acquire(name, &self.holder, self.singleton.lease_duration()),
        )
        .await;
        match acquired {
            Ok(Ok(Some(lease))) => Round::Leading(self.lead(lease, sent)),
            Ok(Ok(None)) => match tokio::time::timeout(retry, self.store.current(name)).await {
                Ok(Ok(info)) => Round::Standby(info),
                _ => Round::Standby(None),
            },
            Ok(Err(error)) => Round::Failed(error.to_string()),
            Err(_) => Round::Failed(format!("the lease store did not answer within {retry:?}")),
        }
    }

    /// One look at who leads, without trying to take the lease.
    pub(crate) async fn look(&self) -> Round {
        let retry = self.singleton.retry_period_duration();
        match tokio::time::timeout(retry, self.store.current(self.singleton.name())).await {
            Ok(Ok(Some(info))) => Round::Standby(Some(info)),
            Ok(Ok(None)) => Round::Free,
            Ok(Err(error)) => Round::Failed(error.to_string()),
            Err(_) => Round::Failed(format!("the lease store did not answer within {retry:?}")),
        }
    }

    /// Releases `lease`, within the retry period; a failure only delays
    /// the next leader until the lease expires.
    pub(crate) async fn release(&self, lease: &Lease) {
        let retry = self.singleton.retry_period_duration();
        match tokio::time::timeout(retry, self.store.release(lease)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(target: LIFETIME_TARGET,
                singleton = %self.singleton.name(),
                "releasing the lease of `{}` failed: {error}; it expires in at most {:?}",
                self.singleton.name(), self.singleton.lease_duration()),
            Err(_) => tracing::warn!(target: LIFETIME_TARGET,
                singleton = %self.singleton.name(),
                "releasing the lease of `{}` took over {retry:?}; it expires in at most {:?}",
                self.singleton.name(), self.singleton.lease_duration()),
        }
    }

    /// Starts renewing a lease taken by a request sent at `sent`: the
    /// store counts its time to live from no earlier than that, so the
    /// renew deadline counts from there too.
    fn lead(&self, lease: Lease, sent: Instant) -> Term {
        let revoked = CancellationToken::new();
        let lost = Arc::new(Mutex::new(None));
        let renewing = tokio::spawn(renew(
            self.store.clone(),
            self.singleton.clone(),
            lease.clone(),
            sent,
            revoked.clone(),
            lost.clone(),
        ));
        Term {
            lease,
            revoked,
            lost,
            _renewing: AbortOnDropHandle::new(renewing),
        }
    }
}

/// Renews every retry period until a renew fails for good or the renew
/// deadline passes since the last success; then records why and revokes.
async fn renew(
    store: Arc<dyn LeaseStore>,
    singleton: Singleton,
    lease: Lease,
    mut last_ok: Instant,
    revoked: CancellationToken,
    lost: Arc<Mutex<Option<Lost>>>,
) {
    let retry = singleton.retry_period_duration();
    let deadline_after = singleton.renew_deadline_duration();
    let mut last_error = None;
    let reason = loop {
        let deadline = last_ok + deadline_after;
        tokio::time::sleep_until((Instant::now() + retry).min(deadline)).await;
        if Instant::now() >= deadline {
            break Lost::RenewDeadline(last_error);
        }
        let sent = Instant::now();
        let renewed =
            tokio::time::timeout_at(deadline, store.renew(&lease, singleton.lease_duration()))
                .await;
        metrics::histogram!(RENEW_METRIC, "singleton" => singleton.name().to_owned())
            .record(sent.elapsed().as_secs_f64());
        match renewed {
            Ok(Ok(true)) => {
                last_ok = sent;
                last_error = None;
            }
            Ok(Ok(false)) => break Lost::Expired,
            Ok(Err(error)) => {
                tracing::warn!(target: LIFETIME_TARGET, singleton = %singleton.name(),
                    "renewing the lease of `{}` failed: {error}; retrying until the renew \
                     deadline", singleton.name());
                last_error = Some(error.to_string());
            }
            Err(_) => break Lost::RenewDeadline(last_error),
        }
    };
    *lock(&lost) = Some(reason);
    revoked.cancel();
}

/// A holder id unique to this process: the host name, the process id and
/// a random part (a restarted container has the same host name and pid).
pub(crate) fn holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// The wait between two rounds of campaigning: the retry period and up to
/// a fifth more, so that instances started together spread out.
pub(crate) fn campaign_pause(retry: Duration) -> Duration {
    retry.mul_f64(1.0 + fastrand::f64() * 0.2)
}

#[cfg(test)]
mod tests {
    use host_cluster::InProcessStore;

    use super::*;

    fn election(store: &InProcessStore, holder: &str) -> Election {
        Election {
            store: Arc::new(store.clone()),
            singleton: Singleton::new("billing")
                .lease(Duration::from_secs(15))
                .renew_deadline(Duration::from_secs(10))
                .retry_period(Duration::from_secs(2)),
            holder: holder.into(),
            balance: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_leads_the_other_stands_by_seeing_who_leads() {
        let store = InProcessStore::new();
        let Round::Leading(term) = election(&store, "a").try_lead().await else {
            panic!("a free lease");
        };
        match election(&store, "b").try_lead().await {
            Round::Standby(Some(info)) => {
                assert_eq!((info.holder(), info.token()), ("a", term.token()));
            }
            _ => panic!("b stands by"),
        }
        // Renewed every retry period, the term outlives its lease.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!term.revoked.is_cancelled());
        assert!(matches!(
            election(&store, "b").try_lead().await,
            Round::Standby(_)
        ));
    }

    /// A store that stops answering: the term is revoked at the renew
    /// deadline counted from the last renew, before the lease expires.
    #[tokio::test(start_paused = true)]
    async fn a_silent_store_revokes_the_term_at_the_renew_deadline() {
        let store = InProcessStore::new();
        let hanging = Hanging {
            inner: store.clone(),
            from: Instant::now() + Duration::from_secs(5),
        };
        let leader = Election {
            store: Arc::new(hanging),
            ..election(&store, "a")
        };
        let Round::Leading(term) = leader.try_lead().await else {
            panic!("a free lease");
        };
        let began = Instant::now();
        term.revoked.cancelled().await;
        // Renewed at 2 s and 4 s; then nothing answers: 4 s + 10 s.
        assert_eq!(began.elapsed(), Duration::from_secs(14));
        assert_eq!(term.lost(), Some(Lost::RenewDeadline(None)));
        // Still before the lease (renewed at 4 s for 15 s) expires.
        assert!(store.current("billing").await.unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_taken_over_is_lost_at_the_next_renew() {
        let store = InProcessStore::new();
        let Round::Leading(term) = election(&store, "a").try_lead().await else {
            panic!("a free lease");
        };
        store.release(&term.lease).await.unwrap();
        let Round::Leading(_other) = election(&store, "b").try_lead().await else {
            panic!("free once released");
        };
        term.revoked.cancelled().await;
        assert_eq!(term.lost(), Some(Lost::Expired));
    }

    /// Answers as `inner` until `from`, then never.
    struct Hanging {
        inner: InProcessStore,
        from: Instant,
    }

    #[async_trait::async_trait]
    impl LeaseStore for Hanging {
        async fn try_acquire(
            &self,
            name: &str,
            holder: &str,
            ttl: Duration,
        ) -> Result<Option<Lease>, host_cluster::ClusterError> {
            self.inner.try_acquire(name, holder, ttl).await
        }
        async fn renew(
            &self,
            lease: &Lease,
            ttl: Duration,
        ) -> Result<bool, host_cluster::ClusterError> {
            if Instant::now() >= self.from {
                std::future::pending::<()>().await;
            }
            self.inner.renew(lease, ttl).await
        }
        async fn release(&self, lease: &Lease) -> Result<(), host_cluster::ClusterError> {
            self.inner.release(lease).await
        }
        async fn current(
            &self,
            name: &str,
        ) -> Result<Option<LeaseInfo>, host_cluster::ClusterError> {
            self.inner.current(name).await
        }
    }

    #[test]
    fn holder_ids_differ_between_elections_of_one_process() {
        assert_ne!(holder_id(), holder_id());
        assert!(holder_id().contains(&std::process::id().to_string()));
    }
}
