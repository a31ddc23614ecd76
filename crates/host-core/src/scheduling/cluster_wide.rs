//! Cluster-wide schedules: each tick of a cron schedule runs on one
//! instance of the application. [`ClusterWide`] is the option; the tick's
//! claim in the host's [`ClaimStore`], and the `<job>.running` lease that
//! keeps ticks from overlapping across the cluster, are taken here.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use host_cluster::{Claim, ClaimOutcome, ClaimStore, FencingToken, Lease, LeaseStore};
use serde::Deserialize;
use tokio_util::task::AbortOnDropHandle;

use super::events::{ScheduleEvents, SkipReason};
use super::schedule::Overlap;

/// The metric of cluster-wide ticks, by service and `outcome` (`claimed`,
/// `taken`, `skipped`, `recovered`, `failed`).
pub(crate) const TICKS_METRIC: &str = "host_cluster_ticks_total";

/// How long the `<job>.running` lease lasts unless renewed: how long an
/// instance that died mid-run keeps the next ticks from starting (the file
/// lock frees it at once).
const RUNNING_TTL: Duration = Duration::from_secs(5);
/// How often the `<job>.running` lease is renewed while the run lasts.
const RUNNING_RENEW: Duration = Duration::from_secs(1);
/// How often claim records past the retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Makes a periodic service cluster-wide: each tick of its cron schedule
/// runs on one instance of the application, whichever claims it first in
/// the host's claim store (see `docs/scheduling.md`).
///
/// ```
/// use std::time::Duration;
/// use host_core::ClusterWide;
///
/// let report = ClusterWide::new()
///     .job("nightly-report")
///     .at_least_once(Duration::from_secs(300))
///     .retention(Duration::from_secs(86_400));
/// assert_eq!(report.job_name(), Some("nightly-report"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterWide {
    job: Option<String>,
    at_least_once: Option<Duration>,
    retention: Duration,
}

impl ClusterWide {
    /// How long claim records are kept by default: 7 days.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);

    /// At most once, the job named as the service, records kept 7 days.
    pub fn new() -> Self {
        Self {
            job: None,
            at_least_once: None,
            retention: Self::DEFAULT_RETENTION,
        }
    }

    /// The job's name in the claim store, the same in every instance of
    /// the application. Default: the service's name.
    pub fn job(mut self, name: impl Into<String>) -> Self {
        self.job = Some(name.into());
        self
    }

    /// Recovers ticks whose run did not finish: a claim not finished within
    /// `claim_deadline` of being made (its instance died, or its run
    /// failed) is claimed again by another instance, as the next attempt
    /// with a larger fencing token. Without it (the default), a tick runs
    /// at most once.
    pub fn at_least_once(mut self, claim_deadline: Duration) -> Self {
        self.at_least_once = Some(claim_deadline);
        self
    }

    /// How long the claim records of past ticks are kept (7 days by
    /// default); older ones are purged about once an hour.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The job's name, if set.
    pub fn job_name(&self) -> Option<&str> {
        self.job.as_deref()
    }

    /// The claim deadline, when ticks are recovered (at least once).
    pub fn claim_deadline(&self) -> Option<Duration> {
        self.at_least_once
    }

    /// How long claim records are kept.
    pub fn retention_period(&self) -> Duration {
        self.retention
    }
}

impl Default for ClusterWide {
    fn default() -> Self {
        Self::new()
    }
}

/// `services.<name>.cluster_wide`: `true`, `false`, or a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterWideSection(pub(crate) Option<ClusterWide>);

/// The table form's keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterWideTable {
    #[serde(default)]
    job: Option<String>,
    #[serde(default, with = "host_config::duration::option")]
    at_least_once: Option<Duration>,
    #[serde(default, with = "host_config::duration::option")]
    retention: Option<Duration>,
}

impl<'de> Deserialize<'de> for ClusterWideSection {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ClusterWideSection;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "`true`, `false`, or a table with `job`, `at_least_once` and `retention`",
                )
            }

            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Self::Value, E> {
                Ok(ClusterWideSection(value.then(ClusterWide::new)))
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
                // Environment variables and command lines give text.
                match value {
                    "true" => self.visit_bool(true),
                    "false" => self.visit_bool(false),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(value), &self)),
                }
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let table = ClusterWideTable::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                let mut options = ClusterWide::new();
                options.job = table.job;
                options.at_least_once = table.at_least_once;
                if let Some(retention) = table.retention {
                    options.retention = retention;
                }
                Ok(ClusterWideSection(Some(options)))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// The claim a cluster-wide run holds on its tick
/// ([`RunContext::tick_claim`](crate::RunContext::tick_claim)): which job
/// and tick, the fencing token to carry on writes, the attempt, and a key
/// for idempotent effects, the same on every attempt of the tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickClaim {
    claim: Claim,
    key: Arc<str>,
}

impl TickClaim {
    pub(crate) fn new(claim: Claim) -> Self {
        let key = format!(
            "{}@{}",
            claim.job(),
            humantime::format_rfc3339_millis(claim.tick())
        );
        Self {
            claim,
            key: key.into(),
        }
    }

    /// The job's name.
    pub fn job(&self) -> &str {
        self.claim.job()
    }

    /// The tick, as the schedule computed it (without jitter), to the
    /// millisecond: the same on every instance.
    pub fn tick(&self) -> SystemTime {
        self.claim.tick()
    }

    /// The claim's fencing token: strictly larger for each claim of the
    /// job, a recovered tick's included.
    pub fn token(&self) -> FencingToken {
        self.claim.token()
    }

    /// 1 for the tick's first run, one more for each recovery.
    pub fn attempt(&self) -> u32 {
        self.claim.attempt()
    }

    /// `<job>@<tick in RFC 3339, to the millisecond>`, as
    /// `report@2026-01-01T03:00:00.000Z`: the same on every attempt.
    pub fn idempotency_key(&self) -> &str {
        &self.key
    }
}

/// A cluster-wide service's share of the host's store: what each tick is
/// claimed with.
pub(crate) struct ClusterTicks {
    pub(crate) claims: Arc<dyn ClaimStore>,
    pub(crate) leases: Arc<dyn LeaseStore>,
    pub(crate) service: Arc<str>,
    pub(crate) job: Arc<str>,
    /// `<job>.running`.
    pub(crate) running: Arc<str>,
    pub(crate) holder: Arc<str>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) retention: Duration,
}

/// A tick this instance runs: its claim, and the `<job>.running` lease
/// while the run lasts (under [`Overlap::Skip`]).
pub(crate) struct Admitted {
    pub(crate) claim: TickClaim,
    running: Option<(Lease, AbortOnDropHandle<()>)>,
}

/// Why a tick is claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Its time came (or it is the misfire looked at on start).
    Due,
    /// An earlier tick, whose claim may have passed its deadline unfinished.
    Recovery,
}

impl ClusterTicks {
    pub(crate) fn new(
        claims: Arc<dyn ClaimStore>,
        leases: Arc<dyn LeaseStore>,
        service: Arc<str>,
        options: &ClusterWide,
        holder: Arc<str>,
    ) -> Self {
        let job: Arc<str> = options.job.as_deref().unwrap_or(&service).into();
        Self {
            claims,
            leases,
            running: format!("{job}.running").into(),
            service,
            job,
            holder,
            deadline: options.at_least_once,
            retention: options.retention,
        }
    }

    fn count(&self, outcome: &'static str) {
        metrics::counter!(TICKS_METRIC, "service" => self.service.to_string(),
            "outcome" => outcome)
        .increment(1);
    }

    /// Claims `tick` (and, under [`Overlap::Skip`], the running lease):
    /// `Some` when this instance runs it.
    pub(crate) async fn admit(
        &self,
        tick: SystemTime,
        probe: Probe,
        overlap: Overlap,
        events: &dyn ScheduleEvents,
    ) -> Option<Admitted> {
        let at = humantime::format_rfc3339_millis(tick);
        let (service, job) = (&*self.service, &*self.job);
        let claim = match self
            .claims
            .try_claim(job, tick, &self.holder, self.deadline)
            .await
        {
            Ok(ClaimOutcome::Claimed(claim)) => claim,
            Ok(ClaimOutcome::Taken { holder, finished }) => {
                if probe == Probe::Due {
                    self.count("taken");
                    tracing::debug!(
                        service,
                        job,
                        "the tick of {at} is taken by `{holder}` (finished: {finished}); not run here"
                    );
                }
                return None;
            }
            Ok(_) => return None,
            Err(error) => {
                self.count("failed");
                tracing::warn!(
                    service,
                    job,
                    "claiming the tick of {at} of job `{job}` failed: {error}; the tick is skipped here"
                );
                return None;
            }
        };
        if probe == Probe::Recovery && claim.attempt() == 1 {
            // Nobody claimed it when it was due: that is a missed tick, which
            // the misfire policy has decided on; recovery reruns claims only.
            self.finish(&claim, &at).await;
            return None;
        }
        let running = if overlap == Overlap::Skip {
            match self.take_running(claim.attempt() > 1).await {
                Ok(Some(lease)) => {
                    let renewing = tokio::spawn(renew(
                        self.leases.clone(),
                        lease.clone(),
                        self.service.clone(),
                    ));
                    Some((lease, AbortOnDropHandle::new(renewing)))
                }
                Ok(None) if claim.attempt() > 1 => {
                    // Left unfinished: the tick is not done, and a later
                    // look may recover it again.
                    self.count("skipped");
                    tracing::warn!(
                        service,
                        job,
                        "the recovered tick of {at} could not take `{}` within {:?}; left \
                         for a later recovery",
                        self.running,
                        RUNNING_TTL + RUNNING_RENEW
                    );
                    return None;
                }
                Ok(None) => {
                    let holder = match self.leases.current(&self.running).await {
                        Ok(Some(info)) => format!("on `{}`", info.holder()),
                        _ => "elsewhere".to_owned(),
                    };
                    self.count("skipped");
                    events.skipped(1, SkipReason::Overlap);
                    tracing::info!(
                        service,
                        job,
                        skipped = 1,
                        "the tick of {at} skipped: the previous tick still runs {holder} \
                         (overlap: skip, across the cluster)"
                    );
                    // Skipping is this tick's outcome: it is not recovered.
                    self.finish(&claim, &at).await;
                    return None;
                }
                Err(error) => {
                    self.count("failed");
                    tracing::warn!(
                        service,
                        job,
                        "taking the lease `{}` for the tick of {at} failed: {error}; the tick \
                         is skipped here",
                        self.running
                    );
                    return None;
                }
            }
        } else {
            None
        };
        if claim.attempt() > 1 {
            self.count("recovered");
            tracing::warn!(service, job, attempt = claim.attempt(), token = %claim.token(),
                "recovered the tick of {at}: its earlier claim was not finished within its \
                 deadline; running it again (attempt {})", claim.attempt());
        } else {
            self.count("claimed");
            tracing::debug!(service, job, token = %claim.token(), "claimed the tick of {at}");
        }
        Some(Admitted {
            claim: TickClaim::new(claim),
            running,
        })
    }

    /// After the run: the lease released; the claim finished if the run
    /// succeeded (a failed run's stays open, for recovery).
    pub(crate) async fn done(&self, admitted: Admitted, succeeded: bool) {
        let Admitted { claim, running } = admitted;
        let at = humantime::format_rfc3339_millis(claim.tick());
        if let Some((lease, renewing)) = running {
            drop(renewing);
            if let Err(error) = self.leases.release(&lease).await {
                tracing::warn!(service = %self.service, job = %self.job,
                    "releasing the lease `{}` after the tick of {at} failed: {error}; it \
                     expires within {RUNNING_TTL:?}", self.running);
            }
        }
        if succeeded {
            self.finish(&claim.claim, &at).await;
        } else {
            self.count("failed");
        }
    }

    async fn finish(&self, claim: &Claim, at: &impl fmt::Display) {
        if let Err(error) = self.claims.finish(claim).await {
            tracing::warn!(service = %self.service, job = %self.job,
                "marking the tick of {at} finished failed: {error}");
        }
    }

    /// Deletes the job's records older than the retention: now, then about
    /// once an hour, until dropped.
    pub(crate) async fn purge_loop(self: Arc<Self>) {
        loop {
            if let Some(before) = SystemTime::now().checked_sub(self.retention) {
                match self.claims.purge(&self.job, before).await {
                    Ok(purged) => tracing::debug!(service = %self.service, job = %self.job,
                        purged, "purged the claim records of ticks before {}",
                        humantime::format_rfc3339_seconds(before)),
                    Err(error) => tracing::warn!(service = %self.service, job = %self.job,
                        "purging the claim records of job `{}` failed: {error}", self.job),
                }
            }
            tokio::time::sleep(PURGE_EVERY).await;
        }
    }
}

impl ClusterTicks {
    /// Takes the `<job>.running` lease. A recovered tick (`wait`) waits for
    /// it, up to one lease and a renew: the run it recovers from died
    /// holding it, so it frees by then unless another tick runs, which the
    /// recovered one then follows instead of overlapping.
    async fn take_running(&self, wait: bool) -> Result<Option<Lease>, host_cluster::ClusterError> {
        let give_up = tokio::time::Instant::now() + RUNNING_TTL + RUNNING_RENEW;
        loop {
            let taken = self
                .leases
                .try_acquire(&self.running, &self.holder, RUNNING_TTL)
                .await?;
            if taken.is_some() || !wait || tokio::time::Instant::now() >= give_up {
                return Ok(taken);
            }
            tokio::time::sleep(RUNNING_RENEW / 4).await;
        }
    }
}

/// Renews the running lease every few seconds while the run lasts.
async fn renew(leases: Arc<dyn LeaseStore>, lease: Lease, service: Arc<str>) {
    loop {
        tokio::time::sleep(RUNNING_RENEW).await;
        match leases.renew(&lease, RUNNING_TTL).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(service = %service,
                    "the lease `{}` expired while the run lasts: another instance may start \
                     the next tick", lease.name());
                return;
            }
            Err(error) => tracing::warn!(service = %service,
                "renewing the lease `{}` failed: {error}; retrying", lease.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml: &str) -> Result<ClusterWideSection, String> {
        #[derive(Deserialize)]
        struct Wrapper {
            cluster_wide: ClusterWideSection,
        }
        let value: serde_json::Value = serde_json::from_str(toml).map_err(|e| e.to_string())?;
        serde_json::from_value::<Wrapper>(value)
            .map(|w| w.cluster_wide)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_bool_or_a_table() {
        assert_eq!(
            section(r#"{"cluster_wide": true}"#).unwrap(),
            ClusterWideSection(Some(ClusterWide::new()))
        );
        assert_eq!(
            section(r#"{"cluster_wide": false}"#).unwrap(),
            ClusterWideSection(None)
        );
        assert_eq!(
            section(r#"{"cluster_wide": {"job": "r", "at_least_once": "5m", "retention": "1d"}}"#)
                .unwrap(),
            ClusterWideSection(Some(
                ClusterWide::new()
                    .job("r")
                    .at_least_once(Duration::from_secs(300))
                    .retention(Duration::from_secs(86_400))
            ))
        );
        let error = section(r#"{"cluster_wide": {"jobs": "r"}}"#).unwrap_err();
        assert!(error.contains("jobs"), "{error}");
        let error = section(r#"{"cluster_wide": 3}"#).unwrap_err();
        assert!(error.contains("`true`, `false`, or a table"), "{error}");
    }

    #[test]
    fn the_key_is_the_job_and_the_tick_in_rfc_3339() {
        let store = host_cluster::InProcessStore::new();
        let tick = SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_236_400_250);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let ClaimOutcome::Claimed(claim) = runtime
            .block_on(store.try_claim("report", tick, "a", None))
            .unwrap()
        else {
            panic!("a free tick");
        };
        let claim = TickClaim::new(claim);
        assert_eq!(claim.idempotency_key(), "report@2026-01-01T03:00:00.250Z");
        assert_eq!(
            (claim.job(), claim.tick(), claim.attempt()),
            ("report", tick, 1)
        );
    }
}
