//! Periodic services: the `PeriodicService` trait, what each run receives,
//! and the background service the host makes of one (its `execute` is the
//! schedule loop).

use std::any::type_name;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::FutureExt;
use host_di::ServiceProvider;
use tokio::sync::{Notify, watch};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::AbortOnDropHandle;

use super::clock::SystemClock;
use super::cluster_wide::{ClusterTicks, Probe, TickClaim};
use super::events::{ScheduleEvents, SkipReason};
use super::runner::{RunInfo, ScheduleInputs, Trigger, run_schedule};
use super::timetable::Timetable;
use crate::logging::LIFETIME_TARGET;
use crate::services::record::ServiceRecord;
use crate::supervision::events::names;
use crate::{ApplicationLifetime, BackgroundService, Schedule, ServiceContext, ServiceError};

/// A unit of work the host runs on a [`Schedule`]: every interval, or at
/// the times of a cron expression, never overlapping itself.
///
/// Register it with [`HostBuilder::add_periodic`](crate::HostBuilder::add_periodic)
/// (built by the container) or
/// [`add_periodic_instance`](crate::HostBuilder::add_periodic_instance). A
/// failing run (an error or a panic) follows the service's restart policy
/// (by default, as a failing `execute`, it goes to the host's failure
/// behaviour); the schedule then starts again. The
/// [control handle](crate::ServiceControl) can run it now, pause and resume
/// it; its [state](crate::ServiceStatus::next_run) shows the next run.
///
/// # Examples
///
/// ```
/// use host_core::{Host, PeriodicService, RunContext, Schedule, ServiceError, async_trait};
///
/// struct Cleanup;
///
/// #[async_trait]
/// impl PeriodicService for Cleanup {
///     async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
///         tracing::info!(run = ctx.number(), "cleaning up");
///         Ok(())
///     }
/// }
///
/// let mut builder = Host::builder();
/// builder.add_periodic_instance(Cleanup, Schedule::cron("0 */5 * * * *"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a periodic service",
    label = "does not implement `PeriodicService`",
    note = "implement `PeriodicService` (one `run` per tick) for `{Self}`, with `#[async_trait]`; \
            a service with a loop of its own is a `BackgroundService`"
)]
#[async_trait]
pub trait PeriodicService: Send + Sync + 'static {
    /// The name used in logs, errors and service states. Default: the type's
    /// name, as `app::Cleanup`.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(type_name::<Self>())
    }

    /// One run. Return when it is done, or soon after
    /// [`ctx.stopping()`](RunContext::stopping) completes (the host is
    /// stopping, or [`Overlap::CancelRunning`](crate::Overlap::CancelRunning)
    /// makes way for a newer run).
    async fn run(&self, ctx: RunContext) -> Result<(), ServiceError>;
}

/// What one run of a [`PeriodicService`] receives.
pub struct RunContext {
    name: Arc<str>,
    info: RunInfo,
    lifetime: ApplicationLifetime,
    services: Option<ServiceProvider>,
    claim: Option<TickClaim>,
}

impl RunContext {
    /// A context for calling `run` yourself, in a test.
    pub fn new(
        name: impl Into<Arc<str>>,
        stopping: CancellationToken,
        lifetime: ApplicationLifetime,
    ) -> Self {
        Self {
            name: name.into(),
            info: RunInfo {
                number: 1,
                scheduled: SystemTime::now(),
                trigger: Trigger::Schedule,
                token: stopping,
                tick: None,
                earlier: Vec::new(),
                overlap: crate::Overlap::Skip,
            },
            lifetime,
            services: None,
            claim: None,
        }
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which run this is: 1 for the first since the schedule started (it
    /// starts again after a restart), counting runs made on request.
    pub fn number(&self) -> u64 {
        self.info.number
    }

    /// When the run was due (wall clock, jitter included): its tick's
    /// time, or when "run now" was asked.
    pub fn scheduled(&self) -> SystemTime {
        self.info.scheduled
    }

    /// Whether it runs because [`ServiceControl::run_now`](crate::ServiceControl::run_now)
    /// asked, not on schedule.
    pub fn is_run_now(&self) -> bool {
        self.info.trigger == Trigger::RunNow
    }

    /// Completes when the run should end: the host is stopping the
    /// service, or a newer run cancels it.
    pub fn stopping(&self) -> WaitForCancellationFuture<'_> {
        self.info.token.cancelled()
    }

    /// Whether the run should end.
    pub fn is_stopping(&self) -> bool {
        self.info.token.is_cancelled()
    }

    /// The run's token, to hand to other work.
    pub fn stopping_token(&self) -> CancellationToken {
        self.info.token.clone()
    }

    /// The application lifetime.
    pub fn lifetime(&self) -> &ApplicationLifetime {
        &self.lifetime
    }

    /// The services: the run's own scope when the registration asked for
    /// one ([`ServiceOptions::scope_per_run`](crate::ServiceOptions::scope_per_run)),
    /// closed (its services disposed) when the run ends; otherwise the
    /// host's container. `None` in a context made by hand.
    pub fn services(&self) -> Option<&ServiceProvider> {
        self.services.as_ref()
    }

    /// For a run of a cluster-wide schedule
    /// ([`ServiceOptions::cluster_wide`](crate::ServiceOptions::cluster_wide)):
    /// the claim this instance holds on the tick, with its fencing token,
    /// its attempt and an idempotency key. `None` for a service that is not
    /// cluster-wide, and for "run now" (which runs here without a claim).
    pub fn tick_claim(&self) -> Option<&TickClaim> {
        self.claim.as_ref()
    }
}

impl fmt::Debug for RunContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext")
            .field("service", &self.name)
            .field("number", &self.info.number)
            .field("scheduled", &self.info.scheduled)
            .field("run_now", &self.is_run_now())
            .field("stopping", &self.is_stopping())
            .field("tick_claim", &self.claim)
            .finish()
    }
}

/// The background service the host makes of a [`PeriodicService`]: its
/// `execute` runs the schedule loop. Registering a periodic service
/// registers this; [`ServiceOptions<Periodic<T>>`](crate::ServiceOptions)
/// is where its options are set.
pub struct Periodic<T: ?Sized> {
    inner: Arc<T>,
    schedule: Schedule,
}

impl<T: PeriodicService> Periodic<T> {
    pub(crate) fn new(inner: Arc<T>, schedule: Schedule) -> Self {
        Self { inner, schedule }
    }

    /// The periodic service itself.
    pub fn service(&self) -> &Arc<T> {
        &self.inner
    }

    /// The schedule it was registered with (the configuration may
    /// override it).
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
}

impl<T: ?Sized> fmt::Debug for Periodic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Periodic")
            .field("service", &type_name::<T>())
            .field("schedule", &self.schedule)
            .finish()
    }
}

#[async_trait]
impl<T: PeriodicService> BackgroundService for Periodic<T> {
    fn name(&self) -> Cow<'static, str> {
        self.inner.name()
    }

    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let record = ctx.record().cloned();
        let slot = ctx.record().and_then(|record| {
            let slot = record.schedule()?;
            Some((record.clone(), slot))
        });
        let (timetable, run_now, events, scope_per_run, services, cluster): (
            watch::Receiver<Timetable>,
            Arc<Notify>,
            Arc<dyn ScheduleEvents>,
            bool,
            Option<ServiceProvider>,
            Option<Arc<ClusterTicks>>,
        ) = match slot {
            Some((record, slot)) => (
                slot.timetable.subscribe(),
                slot.run_now.clone(),
                Arc::new(RecordEvents {
                    record: record.clone(),
                }),
                record.settings.scope_per_run,
                record.shared.provider(),
                slot.cluster.get().cloned(),
            ),
            // Called by hand, outside a host.
            None => (
                watch::channel(self.schedule.compile(ctx.name())?).1,
                Arc::new(Notify::new()),
                Arc::new(()),
                false,
                None,
                None,
            ),
        };
        // Claim records past their retention go, now and then hourly.
        let _purging = cluster
            .clone()
            .map(|cluster| AbortOnDropHandle::new(tokio::spawn(cluster.purge_loop())));
        let inner = self.inner.clone();
        let name: Arc<str> = ctx.name().into();
        let lifetime = ctx.lifetime().clone();
        let inputs = ScheduleInputs {
            timetable,
            clock: Arc::new(SystemClock),
            stopping: ctx.stopping_token(),
            run_now,
            events: events.clone(),
            misfire_on_start: cluster.is_some(),
            recovery: cluster.as_ref().and_then(|cluster| cluster.deadline),
        };
        let ran = run_schedule(inputs, move |info| {
            let run = OneRun {
                inner: inner.clone(),
                name: name.clone(),
                lifetime: lifetime.clone(),
                services: services.clone(),
                scope_per_run,
            };
            let cluster = cluster.clone();
            let events = events.clone();
            Box::pin(async move {
                let (Some(cluster), Some(tick)) = (cluster, info.tick) else {
                    return run.run(info, None).await;
                };
                // Earlier ticks left unfinished first, then this one.
                let earlier = info.earlier.iter().map(|&at| (at, Probe::Recovery));
                for (at, probe) in earlier.chain([(tick, Probe::Due)]) {
                    if info.token.is_cancelled() {
                        break;
                    }
                    let Some(admitted) = cluster.admit(at, probe, info.overlap, &*events).await
                    else {
                        continue;
                    };
                    let mut this = info.clone();
                    if probe == Probe::Recovery {
                        this.scheduled = admitted.claim.tick();
                    }
                    let claim = admitted.claim.clone();
                    // A panic still releases the running lease (the loop
                    // makes the panic the run's error).
                    let result = std::panic::AssertUnwindSafe(run.run(this, Some(claim)))
                        .catch_unwind()
                        .await;
                    let succeeded = matches!(result, Ok(Ok(())));
                    cluster.done(admitted, succeeded).await;
                    match result {
                        Ok(result) => result?,
                        Err(payload) => std::panic::resume_unwind(payload),
                    }
                }
                Ok(())
            })
        })
        .await;
        // No longer scheduled: no next run to show.
        if let Some(record) = record {
            record.set_next_run(None);
        }
        ran
    }
}

/// One run of the service, with its scope if it asked for one.
struct OneRun<T: ?Sized> {
    inner: Arc<T>,
    name: Arc<str>,
    lifetime: ApplicationLifetime,
    services: Option<ServiceProvider>,
    scope_per_run: bool,
}

impl<T: PeriodicService + ?Sized> OneRun<T> {
    async fn run(&self, info: RunInfo, claim: Option<TickClaim>) -> Result<(), ServiceError> {
        let scope = self
            .services
            .as_ref()
            .filter(|_| self.scope_per_run)
            .map(ServiceProvider::create_scope);
        let run_services = match &scope {
            Some(scope) => Some(scope.provider().clone()),
            None => self.services.clone(),
        };
        let context = RunContext {
            name: self.name.clone(),
            info,
            lifetime: self.lifetime.clone(),
            services: run_services,
            claim,
        };
        let result = self.inner.run(context).await;
        if let Some(scope) = scope {
            let report = scope.close().await;
            for (service, message) in report.panicked() {
                tracing::error!(target: LIFETIME_TARGET, service = %self.name,
                    "disposing `{service}` at the end of a run panicked: {message}");
            }
        }
        result
    }
}

/// What a periodic service registered for the host holds: its compiled
/// schedule (replaced on a configuration reload), its "run now" bell, and,
/// when it is cluster-wide, its share of the host's store.
pub(crate) struct ScheduleSlot {
    pub(crate) timetable: watch::Sender<Timetable>,
    pub(crate) run_now: Arc<Notify>,
    /// Set when the host is built, for a cluster-wide service.
    pub(crate) cluster: std::sync::OnceLock<Arc<ClusterTicks>>,
    /// The schedule the timetable was compiled from.
    schedule: std::sync::Mutex<Schedule>,
    /// When it runs next (wall clock), while it is scheduled: here rather
    /// than in every service's record.
    pub(crate) next_run: std::sync::Mutex<Option<std::time::SystemTime>>,
}

impl ScheduleSlot {
    pub(crate) fn new(schedule: Schedule, timetable: Timetable) -> Self {
        Self {
            timetable: watch::Sender::new(timetable),
            run_now: Arc::new(Notify::new()),
            cluster: std::sync::OnceLock::new(),
            schedule: std::sync::Mutex::new(schedule),
            next_run: std::sync::Mutex::new(None),
        }
    }

    /// The schedule in force.
    pub(crate) fn schedule(&self) -> Schedule {
        crate::services::record::lock(&self.schedule).clone()
    }

    /// Puts `schedule` in force: the loop computes its next tick from it.
    pub(crate) fn replace(&self, schedule: Schedule, timetable: Timetable) {
        *crate::services::record::lock(&self.schedule) = schedule;
        self.timetable.send_replace(timetable);
    }
}

impl fmt::Debug for ScheduleSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScheduleSlot")
            .field("schedule", &self.timetable.borrow().description())
            .finish()
    }
}

/// The loop's reports, into the service's record and the metrics.
struct RecordEvents {
    record: Arc<ServiceRecord>,
}

impl ScheduleEvents for RecordEvents {
    fn next_tick(&self, at: Option<SystemTime>) {
        self.record.set_next_run(at);
    }

    fn run_started(&self, _run: &RunInfo, lateness: Duration) {
        metrics::histogram!(names::LATENESS_SECONDS, "service" => self.record.name.clone())
            .record(lateness.as_secs_f64());
    }

    fn skipped(&self, count: u64, reason: SkipReason) {
        let reason = match reason {
            SkipReason::Overlap => "overlap",
            SkipReason::Missed { .. } => "missed",
        };
        metrics::counter!(names::SKIPPED, "service" => self.record.name.clone(),
            "reason" => reason)
        .increment(count);
    }
}
