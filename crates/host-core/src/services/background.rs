//! The `BackgroundService` trait: one long-running `execute`, spawned on its
//! own task, with start and stop handled by the host.

use std::any::type_name;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use host_cluster::FencingToken;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::services::hosted::{is_no_op, no_op, no_op_hook};
use crate::services::record::ServiceRecord;
use crate::services::state::ServiceState;
use crate::{ApplicationLifetime, HostedService, LifecycleContext, LifecycleFuture, ServiceError};

/// A long-running service, as .NET's `BackgroundService`: implement
/// [`execute`](Self::execute) and the host does the rest.
///
/// There is no `start` or `stop` to override here (writing one is "not a
/// member of trait"): code to run before `execute` is spawned goes in
/// [`before_start`](Self::before_start), code after it has returned in
/// [`after_stop`](Self::after_stop). Nor implement
/// [`HostedService`](crate::HostedService) for the same type: this trait
/// implements it.
///
/// At start the host spawns `execute` as a task of its own and returns at
/// once: **`start` never polls `execute`**, so not even a synchronous prefix
/// before its first `.await` can hold up other services or a web server. At
/// stop the host cancels the context's stopping token and waits for
/// `execute` to return, within the shutdown timeout.
///
/// `execute` returning `Ok` early is not a failure: the service is
/// *completed* and the host keeps running. An `Err` or a panic is a failure:
/// it is logged with the service's name and, by default, stops the host with
/// exit code 1 (see [`BackgroundServiceFailure`](crate::BackgroundServiceFailure)).
///
/// Blocking work (file I/O, CPU-bound loops, blocking client libraries)
/// belongs in [`tokio::task::spawn_blocking`], never directly in `execute`:
/// a blocked worker thread can neither notice its token nor be aborted.
///
/// The lifecycle hooks `starting`, `started`, `stopping` and `stopped` are
/// there too.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use host_core::{BackgroundService, ServiceContext, ServiceError};
///
/// struct Worker;
///
/// #[async_trait]
/// impl BackgroundService for Worker {
///     async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
///         while ctx.delay(Duration::from_secs(1)).await {
///             tracing::info!("working");
///         }
///         Ok(()) // asked to stop
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), host_core::HostError> {
/// let mut builder = host_core::Host::builder();
/// builder.handle_signals(false).add_hosted_service_instance(Worker);
/// let mut host = builder.build()?;
/// host.start().await?; // returns at once: `execute` runs on its own task
/// host.stop().await?; // cancels `ctx.stopping()` and waits for `execute`
/// # Ok(()) }
/// ```
#[async_trait]
pub trait BackgroundService: Send + Sync + 'static {
    /// The name used in logs, errors and service states. Default: the type's
    /// name, as `app::Worker`.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(type_name::<Self>())
    }

    /// The service's work. Return when `ctx.stopping()` completes.
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError>;

    no_op_hook!(
        /// Runs inside `start`, before `execute` is spawned. An error here fails
        /// the host's start (and `execute` never runs).
        before_start
    );

    no_op_hook!(
        /// Runs inside `stop`, after `execute` has returned.
        after_stop
    );

    no_op_hook!(
        /// Runs before any service's `start`.
        starting
    );

    no_op_hook!(
        /// Runs after every service's `start` has returned.
        started
    );

    no_op_hook!(
        /// Runs at shutdown, before any service's `stop`.
        stopping
    );

    no_op_hook!(
        /// Runs after every service's `stop` has returned.
        stopped
    );
}

/// Forwards a hook of `HostedService` to the same hook of
/// `BackgroundService`, returning its future as it is (no second box).
macro_rules! forward_hook {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        fn $name<'life0, 'life1, 'async_trait>(
            &'life0 self,
            ctx: &'life1 LifecycleContext,
        ) -> LifecycleFuture<'async_trait>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            Self: 'async_trait,
        {
            BackgroundService::$name(self, ctx)
        }
    };
}

#[async_trait]
impl<T: BackgroundService> HostedService for T {
    fn name(&self) -> Cow<'static, str> {
        BackgroundService::name(self)
    }

    fn is_background(&self) -> bool {
        true
    }

    forward_hook!(starting);

    fn start<'life0, 'life1, 'async_trait>(
        &'life0 self,
        ctx: &'life1 LifecycleContext,
    ) -> LifecycleFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        // In the span as when `start` was an `async fn`: a hand-written hook
        // may do its work in the call itself.
        let before_start = ctx
            .record
            .span
            .in_scope(|| BackgroundService::before_start(self, ctx));
        if ctx
            .record
            .waits_ready
            .load(std::sync::atomic::Ordering::Acquire)
        {
            // Something starts only once this service is ready: its start
            // lasts until then.
            return Box::pin(async move {
                before_start.await?;
                spawn_execute::<T>(ctx)?;
                until_ready(&ctx.record).await
            });
        }
        if is_no_op(&before_start) {
            // Nothing of the service's runs before `execute`: spawn it now.
            // The host polls every `start` it calls at once, so this is when
            // the first poll would have spawned it, without a future to
            // allocate or poll in the service's span.
            return match spawn_execute::<T>(ctx) {
                Ok(()) => no_op(),
                Err(error) => Box::pin(std::future::ready(Err(error))),
            };
        }
        Box::pin(async move {
            before_start.await?;
            spawn_execute::<T>(ctx)
        })
    }

    forward_hook!(started);

    forward_hook!(stopping);

    async fn stop(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        ctx.record.stop_execute().await;
        BackgroundService::after_stop(self, ctx).await
    }

    forward_hook!(stopped);
}

/// Spawns the `execute` of the background service `ctx` is for.
fn spawn_execute<T: BackgroundService>(ctx: &LifecycleContext) -> Result<(), ServiceError> {
    let this = ctx.record.instance::<T>()?;
    ctx.record.spawn_execute(this)
}

/// Completes when the service has reported ready; fails if it ends (for
/// good: a restart keeps the wait going) before it does.
async fn until_ready(record: &ServiceRecord) -> Result<(), ServiceError> {
    let ended =
        |state: &ServiceState| matches!(state, ServiceState::Failed(_) | ServiceState::Completed);
    match record.until_ready(|state| !ended(state)).await {
        Ok(()) => Ok(()),
        Err(ServiceState::Failed(failure)) => {
            anyhow::bail!("it failed before it reported ready: {}", failure.cause())
        }
        Err(_) => anyhow::bail!("its `execute` returned before it reported ready (`ctx.ready()`)"),
    }
}

/// What a background service's `execute` receives: its stopping token and
/// the application lifetime.
#[derive(Clone)]
pub struct ServiceContext {
    name: Arc<str>,
    stopping: CancellationToken,
    lifetime: ApplicationLifetime,
    /// The host's record of the service; `None` in a context made by hand.
    record: Option<Arc<ServiceRecord>>,
}

impl ServiceContext {
    /// A context for calling `execute` yourself, in a test: cancel `stopping`
    /// to ask it to return.
    pub fn new(
        name: impl Into<Arc<str>>,
        stopping: CancellationToken,
        lifetime: ApplicationLifetime,
    ) -> Self {
        Self {
            name: name.into(),
            stopping,
            lifetime,
            record: None,
        }
    }

    /// The context of one run under the host's supervisor.
    pub(crate) fn supervised(
        record: Arc<ServiceRecord>,
        stopping: CancellationToken,
        lifetime: ApplicationLifetime,
    ) -> Self {
        Self {
            name: record.name.clone(),
            stopping,
            lifetime,
            record: Some(record),
        }
    }

    /// Reports that the service is ready, as systemd's `READY=1` for a
    /// `Type=notify` unit: services registered to start
    /// [`after_ready`](crate::ServiceOptions::after_ready) this one start
    /// now, and its state becomes [`Ready`](crate::ServiceState::Ready).
    /// Each run (after a restart) reports again. Cheap; calling it again
    /// does nothing.
    pub fn ready(&self) {
        if let Some(record) = &self.record {
            record.report_ready();
        }
    }

    /// Proves progress, for a service registered with a
    /// [`heartbeat`](crate::ServiceOptions::heartbeat) deadline: a service
    /// that goes longer than the deadline without calling it is reported
    /// hung. A hung service that beats again has recovered. Cheap (one
    /// clock read and one atomic store); does nothing without a deadline.
    pub fn heartbeat(&self) {
        if let Some(record) = &self.record
            && record.settings.heartbeat.is_some()
        {
            record.beat();
        }
    }

    /// The host's record of the service, when the host runs it.
    pub(crate) fn record(&self) -> Option<&Arc<ServiceRecord>> {
        self.record.as_ref()
    }

    /// The fencing token of the term this instance leads, for a cluster
    /// singleton ([`ServiceOptions::cluster_singleton`](crate::ServiceOptions::cluster_singleton))
    /// that leads; `None` otherwise. Write it beside every effect the work
    /// makes, and have the target reject a token lower than the highest it
    /// has seen: a lease alone cannot stop a leader that was paused past it.
    pub fn fencing_token(&self) -> Option<FencingToken> {
        self.record
            .as_ref()
            .and_then(|record| record.fencing_token())
            .map(FencingToken::new)
    }

    /// Steps down from leading this cluster singleton: the stopping token
    /// is cancelled, and once `execute` has returned the lease is released
    /// and this instance waits two retry periods before campaigning
    /// again, so that another instance takes over. Does nothing for a
    /// service that does not lead.
    pub fn step_down(&self) {
        if let Some(record) = &self.record {
            record.step_down();
        }
    }

    /// How often the service's `execute` has been restarted so far (0 in
    /// its first run).
    pub fn restarts(&self) -> u32 {
        self.record.as_ref().map_or(0, |record| record.restarts())
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Completes when the host asks this service to stop.
    pub fn stopping(&self) -> WaitForCancellationFuture<'_> {
        self.stopping.cancelled()
    }

    /// Whether the host has asked this service to stop.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Sleeps for `duration`, ending early when the host asks this service
    /// to stop: `true` if it slept the whole `duration`, `false` if the
    /// service is stopping (at once if it already was). The shape of a
    /// periodic loop, as .NET's `await Task.Delay(period, stoppingToken)`
    /// inside `while (!stoppingToken.IsCancellationRequested)`:
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let ctx = host_core::ServiceContext::new("app::Worker", Default::default(), host_core::ApplicationLifetime::new());
    /// # ctx.stopping_token().cancel();
    /// while ctx.delay(Duration::from_secs(1)).await {
    ///     tracing::info!("tick");
    /// }
    /// // the service is stopping: return from `execute`
    /// # }
    /// ```
    ///
    /// Cancellation-safe: it holds nothing, and dropping it (in a
    /// `select!`, say) just ends the sleep.
    pub async fn delay(&self, duration: Duration) -> bool {
        tokio::select! {
            // Stopping first: once asked to stop, a loop runs no further
            // round, even if the sleep ended at the same moment.
            biased;
            () = self.stopping.cancelled() => false,
            () = tokio::time::sleep(duration) => true,
        }
    }

    /// A ticker that ticks every `period`, the first time one `period` from
    /// now, and stops ticking when the host asks this service to stop.
    /// Unlike a [`delay`](Self::delay) per round, the period does not drift
    /// by the time each round takes; a round longer than `period` delays
    /// the next tick rather than bunching ticks up.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let ctx = host_core::ServiceContext::new("app::Worker", Default::default(), host_core::ApplicationLifetime::new());
    /// # ctx.stopping_token().cancel();
    /// let mut every = ctx.every(Duration::from_secs(1));
    /// while every.tick().await {
    ///     tracing::info!("tick");
    /// }
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub fn every(&self, period: Duration) -> Ticker {
        assert!(
            !period.is_zero(),
            "ServiceContext::every({period:?}) in service `{}`: the period must not be zero",
            self.name
        );
        // A period too long to add to now never ticks: the first tick is
        // as far in the future as tokio's timer goes.
        let first = Instant::now()
            .checked_add(period)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400 * 365 * 30));
        let mut interval = tokio::time::interval_at(first, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ticker {
            interval,
            stopping: self.stopping.clone(),
        }
    }

    /// The stopping token, to hand to other work (child tasks, clients that
    /// take a token). Cancelled when the host asks this service to stop.
    pub fn stopping_token(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// The application lifetime: started, stopping and stopped events, and
    /// [`stop_application`](ApplicationLifetime::stop_application).
    pub fn lifetime(&self) -> &ApplicationLifetime {
        &self.lifetime
    }
}

/// Ticks every period until the service is asked to stop: see
/// [`ServiceContext::every`].
pub struct Ticker {
    interval: Interval,
    stopping: CancellationToken,
}

impl Ticker {
    /// Waits for the next tick: `true` at the tick, `false` once the host
    /// has asked the service to stop (at once if it already has).
    ///
    /// Cancellation-safe: if it is dropped before it completes, no tick is
    /// lost; the next call waits for the same tick.
    pub async fn tick(&mut self) -> bool {
        tokio::select! {
            biased;
            () = self.stopping.cancelled() => false,
            _ = self.interval.tick() => true,
        }
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.interval.period()
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker")
            .field("period", &self.period())
            .field("stopping", &self.stopping.is_cancelled())
            .finish()
    }
}

impl fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceContext")
            .field("service", &self.name)
            .field("stopping", &self.is_stopping())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;

    use super::ServiceContext;
    use crate::ApplicationLifetime;

    fn context() -> (ServiceContext, CancellationToken) {
        let stopping = CancellationToken::new();
        let ctx = ServiceContext::new("app::Worker", stopping.clone(), ApplicationLifetime::new());
        (ctx, stopping)
    }

    #[tokio::test(start_paused = true)]
    async fn delay_sleeps_the_whole_duration_when_not_stopping() {
        let (ctx, _stopping) = context();
        let began = Instant::now();
        assert!(ctx.delay(Duration::from_secs(5)).await);
        assert_eq!(began.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn delay_ends_early_when_the_service_is_asked_to_stop() {
        let (ctx, stopping) = context();
        let began = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            stopping.cancel();
        });
        assert!(!ctx.delay(Duration::from_secs(3600)).await);
        assert_eq!(began.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn delay_returns_false_at_once_when_already_stopping() {
        let (ctx, stopping) = context();
        stopping.cancel();
        let began = Instant::now();
        // Even a zero delay, which is over at once, reports the stop.
        assert!(!ctx.delay(Duration::ZERO).await);
        assert!(!ctx.delay(Duration::from_secs(1)).await);
        assert_eq!(began.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_is_cancellation_safe() {
        let (ctx, _stopping) = context();
        // Dropped midway: nothing is left behind, and a new delay sleeps in full.
        let dropped =
            tokio::time::timeout(Duration::from_secs(1), ctx.delay(Duration::from_secs(5)));
        assert!(dropped.await.is_err());
        let began = Instant::now();
        assert!(ctx.delay(Duration::from_secs(5)).await);
        assert_eq!(began.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn every_ticks_each_period_from_one_period_on_until_stopping() {
        let (ctx, stopping) = context();
        let began = Instant::now();
        let mut every = ctx.every(Duration::from_secs(1));
        assert_eq!(every.period(), Duration::from_secs(1));
        let mut ticks = Vec::new();
        while every.tick().await {
            ticks.push(began.elapsed().as_secs());
            // A round that takes some time does not shift the next tick.
            tokio::time::sleep(Duration::from_millis(300)).await;
            if ticks.len() == 3 {
                stopping.cancel();
            }
        }
        assert_eq!(ticks, [1, 2, 3]);
        assert_eq!(began.elapsed(), Duration::from_millis(3300));
    }

    #[tokio::test(start_paused = true)]
    async fn every_stops_midway_through_a_period() {
        let (ctx, stopping) = context();
        let mut every = ctx.every(Duration::from_secs(60));
        let began = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            stopping.cancel();
        });
        assert!(!every.tick().await);
        assert_eq!(began.elapsed(), Duration::from_secs(5));
        // And stays stopped.
        assert!(!every.tick().await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_round_delays_the_next_tick_rather_than_bunching_ticks() {
        let (ctx, _stopping) = context();
        let began = Instant::now();
        let mut every = ctx.every(Duration::from_secs(1));
        assert!(every.tick().await);
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(every.tick().await); // the missed tick, at once
        assert_eq!(began.elapsed(), Duration::from_millis(4500));
        assert!(every.tick().await); // then one period later, not at once
        assert_eq!(began.elapsed(), Duration::from_millis(5500));
    }

    #[tokio::test(start_paused = true)]
    async fn tick_is_cancellation_safe() {
        let (ctx, _stopping) = context();
        let began = Instant::now();
        let mut every = ctx.every(Duration::from_secs(2));
        // Dropped before the tick: the next call gets that same tick.
        assert!(
            tokio::time::timeout(Duration::from_secs(1), every.tick())
                .await
                .is_err()
        );
        assert!(every.tick().await);
        assert_eq!(began.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_period_too_long_to_add_never_ticks_and_still_stops() {
        let (ctx, stopping) = context();
        let mut every = ctx.every(Duration::MAX);
        stopping.cancel();
        assert!(!every.tick().await);
    }

    #[test]
    #[should_panic(
        expected = "ServiceContext::every(0ns) in service `app::Worker`: the period must not be zero"
    )]
    fn a_zero_period_is_refused_naming_the_service() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let (ctx, _stopping) = context();
        let _ = ctx.every(Duration::ZERO);
    }
}
