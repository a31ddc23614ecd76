//! Per-service options, set with the registration: restart policy,
//! timeouts, dependencies, readiness and liveness.

use std::any::{TypeId, type_name};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use host_di::{DiError, Disposer, Injectable, ServiceProvider};
use std::time::Duration;

use crate::{
    BackgroundService, ClusterWide, HostedService, Periodic, PeriodicService, Restart, Schedule,
    Singleton,
};

/// The options of one hosted service, set where it is registered
/// ([`add_hosted_service_with`](crate::HostBuilder::add_hosted_service_with))
/// and overridden by the `services.<name>` configuration section (see
/// `docs/supervision.md`).
///
/// The methods for what only a background service has (a restart policy, a
/// heartbeat, readiness it reports itself) exist only when `T` is a
/// [`BackgroundService`]: asking a plain [`HostedService`] to restart does
/// not compile.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use host_core::{BackgroundService, Host, Restart, ServiceContext, ServiceError, async_trait};
///
/// struct Database;
/// struct Billing;
///
/// #[async_trait]
/// impl BackgroundService for Database {
///     async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
///         ctx.ready(); // connected
///         ctx.stopping().await;
///         Ok(())
///     }
/// }
///
/// #[async_trait]
/// impl BackgroundService for Billing {
///     async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
///         while ctx.delay(Duration::from_secs(1)).await {
///             ctx.heartbeat();
///         }
///         Ok(())
///     }
/// }
///
/// let mut builder = Host::builder();
/// builder
///     .add_hosted_service_instance(Database)
///     .add_hosted_service_instance_with(Billing, |billing| {
///         billing
///             .restart(Restart::on_failure().backoff(Duration::from_millis(100), Duration::from_secs(30)))
///             .after_ready::<Database>()
///             .heartbeat(Duration::from_secs(10))
///             .stop_timeout(Duration::from_secs(5))
///     });
/// ```
pub struct ServiceOptions<T: ?Sized> {
    pub(crate) settings: ServiceSettings,
    service: PhantomData<fn() -> Box<T>>,
}

/// What a registration asks of the host, whatever the service's type.
#[derive(Clone, Default)]
pub(crate) struct ServiceSettings {
    pub(crate) restart: Restart,
    pub(crate) start_timeout: Option<Duration>,
    pub(crate) stop_timeout: Option<Duration>,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) after: Vec<After>,
    /// Whether `/health/ready` waits for this service. `None`: yes.
    pub(crate) required_for_readiness: Option<bool>,
    /// Starts after every other service and stops first; nothing may
    /// depend on it (the web server).
    pub(crate) last: bool,
    /// A periodic service's schedule.
    pub(crate) schedule: Option<Schedule>,
    /// A periodic service's runs each get a scope of their own.
    pub(crate) scope_per_run: bool,
    /// Makes a new instance for each restart, from the container.
    pub(crate) fresh: Option<FreshInstance>,
    /// Runs `execute` only while this instance leads the singleton.
    pub(crate) singleton: Option<Singleton>,
    /// A periodic service whose each tick runs on one instance.
    pub(crate) cluster_wide: Option<ClusterWide>,
}

/// Makes a fresh instance of a background service, with its disposal.
pub(crate) type FreshInstance = Arc<
    dyn Fn(&ServiceProvider) -> Result<(Arc<dyn BackgroundService>, Option<Disposer>), DiError>
        + Send
        + Sync,
>;

/// One "starts after" of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct After {
    pub(crate) target: Target,
    /// Only once the other has reported ready (`ctx.ready()`).
    pub(crate) ready: bool,
}

/// A service named in a dependency: by its type or by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Type { id: TypeId, name: &'static str },
    Name(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Type { name, .. } => f.write_str(name),
            Target::Name(name) => f.write_str(name),
        }
    }
}

impl<T: ?Sized> ServiceOptions<T> {
    pub(crate) fn new() -> Self {
        Self {
            settings: ServiceSettings::default(),
            service: PhantomData,
        }
    }

    pub(crate) fn into_settings(self) -> ServiceSettings {
        self.settings
    }
}

impl<T: HostedService> ServiceOptions<T> {
    /// How long this service's `start` may take (a background service's:
    /// `before_start`, and its readiness when something waits for it),
    /// within the host's own
    /// [`startup_timeout`](crate::HostOptions::startup_timeout). Past it,
    /// the start fails, naming the service.
    pub fn start_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.settings.start_timeout = Some(timeout);
        self
    }

    /// How long this service's `stop` may take (a background service's:
    /// until `execute` has returned, and `after_stop`), within the host's
    /// [`shutdown_timeout`](crate::HostOptions::shutdown_timeout); also how
    /// long a restart waits for `execute` to return. Past it, the service
    /// is aborted and named, and the others go on stopping.
    pub fn stop_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.settings.stop_timeout = Some(timeout);
        self
    }

    /// Starts after `U` has started (and stops before it). For a background
    /// service, "started" means its `execute` was spawned; use
    /// [`after_ready`](Self::after_ready) to wait until it reports ready.
    /// `U` must be registered; a cycle is a build error.
    pub fn after<U: HostedService>(&mut self) -> &mut Self {
        self.depend(
            Target::Type {
                id: TypeId::of::<U>(),
                name: type_name::<U>(),
            },
            false,
        )
    }

    /// Starts after the service called `name` has started (its
    /// [`name`](HostedService::name), or the last part of it: `Database`
    /// for `app::Database`).
    pub fn after_named(&mut self, name: impl Into<String>) -> &mut Self {
        self.depend(Target::Name(name.into()), false)
    }

    /// Starts once `U` has reported ready ([`ServiceContext::ready`](crate::ServiceContext::ready)),
    /// as systemd's `Type=notify`: `U`'s start then lasts until it does,
    /// and fails if it has not within its start timeout.
    pub fn after_ready<U: BackgroundService>(&mut self) -> &mut Self {
        self.depend(
            Target::Type {
                id: TypeId::of::<U>(),
                name: type_name::<U>(),
            },
            true,
        )
    }

    /// [`after_ready`](Self::after_ready) by name.
    pub fn after_ready_named(&mut self, name: impl Into<String>) -> &mut Self {
        self.depend(Target::Name(name.into()), true)
    }

    /// Whether `/health/ready` answers 503 while this service is starting,
    /// restarting, hung or failed. Default: `true`.
    pub fn required_for_readiness(&mut self, required: bool) -> &mut Self {
        self.settings.required_for_readiness = Some(required);
        self
    }

    /// Starts after every other service and stops before them, as the web
    /// server does (so that it serves only while everything else runs). No
    /// service may depend on it.
    pub fn last(&mut self) -> &mut Self {
        self.settings.last = true;
        self
    }

    fn depend(&mut self, target: Target, ready: bool) -> &mut Self {
        match self
            .settings
            .after
            .iter_mut()
            .find(|after| after.target == target)
        {
            Some(after) => after.ready |= ready,
            None => self.settings.after.push(After { target, ready }),
        }
        self
    }
}

impl<T: BackgroundService> ServiceOptions<T> {
    /// The restart policy of its `execute`. Default: [`Restart::never`].
    pub fn restart(&mut self, policy: Restart) -> &mut Self {
        self.settings.restart = policy;
        self
    }

    /// A heartbeat deadline: `execute` proves progress with
    /// [`ServiceContext::heartbeat`](crate::ServiceContext::heartbeat) at
    /// least this often. A service that misses it is reported hung (its
    /// state, a log line, an event; `/health/live` fails and systemd's
    /// watchdog is no longer fed while no restart mends it) and its restart
    /// policy applies. The deadline counts from the start of each run.
    pub fn heartbeat(&mut self, deadline: Duration) -> &mut Self {
        self.settings.heartbeat = Some(deadline);
        self
    }

    /// Makes it a cluster singleton: every instance of the application
    /// campaigns for the lease `singleton` names, in the host's lease store
    /// (the `cluster` configuration section; a file lock under the content
    /// root by default), and only the leader runs `execute`. Its context
    /// carries the fencing token of its term
    /// ([`ServiceContext::fencing_token`](crate::ServiceContext::fencing_token)),
    /// and its stopping token is also cancelled when the term is lost, at
    /// the renew deadline at the latest. See [`Singleton`] for the timings
    /// and `docs/scale-out.md` for what a lease can and cannot promise.
    ///
    /// ```
    /// # use host_core::{BackgroundService, Host, ServiceContext, ServiceError, async_trait};
    /// # struct Billing;
    /// # #[async_trait]
    /// # impl BackgroundService for Billing {
    /// #     async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> { Ok(()) }
    /// # }
    /// let mut builder = Host::builder();
    /// builder.add_hosted_service_instance_with(Billing, |billing| billing.cluster_singleton("billing"));
    /// ```
    pub fn cluster_singleton(&mut self, singleton: impl Into<Singleton>) -> &mut Self {
        self.settings.singleton = Some(singleton.into());
        self
    }
}

impl<T: BackgroundService + Injectable> ServiceOptions<T> {
    /// Runs each restart's `execute` on a new instance the container
    /// builds (with its dependencies resolved again), instead of keeping
    /// the registered one and whatever state it holds. The lifecycle hooks
    /// (`before_start`, `after_stop`) stay with the registered instance;
    /// each fresh one is disposed (`#[injectable(dispose)]`) when the next
    /// replaces it, and the last when the service stops.
    pub fn fresh_instance_on_restart(&mut self) -> &mut Self {
        self.settings.fresh = Some(Arc::new(|provider| {
            let created =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| T::create(provider)))
                    .unwrap_or_else(|payload| {
                        Err(DiError::custom(FreshPanicked(format!(
                            "constructing a fresh `{}` panicked: {}",
                            type_name::<T>(),
                            crate::services::failure::panic_message(payload.as_ref())
                        ))))
                    })?;
            let instance = Arc::new(created);
            let disposer = T::disposer(&instance);
            Ok((instance as Arc<dyn BackgroundService>, disposer))
        }));
        self
    }
}

/// A fresh instance's constructor panicked.
#[derive(Debug)]
struct FreshPanicked(String);

impl fmt::Display for FreshPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FreshPanicked {}

impl<T: PeriodicService> ServiceOptions<Periodic<T>> {
    /// Gives each run a DI scope of its own ([`RunContext::services`](crate::RunContext::services)),
    /// closed when the run ends, so that scoped services (a unit of work, a
    /// database transaction) live for one run.
    pub fn scope_per_run(&mut self) -> &mut Self {
        self.settings.scope_per_run = true;
        self
    }

    /// The schedule, replacing the one given at registration.
    pub fn schedule(&mut self, schedule: Schedule) -> &mut Self {
        self.settings.schedule = Some(schedule);
        self
    }

    /// Makes the schedule cluster-wide: each tick runs on one instance of
    /// the application. Every instance claims the tick in the host's store
    /// ([`HostBuilder::cluster_store`](crate::HostBuilder::cluster_store); a
    /// file lock under the content root by default) and the one whose claim
    /// succeeds runs it; the run sees its claim in
    /// [`RunContext::tick_claim`](crate::RunContext::tick_claim). Only a
    /// cron schedule can be cluster-wide (an interval counts from each
    /// instance's start): an interval is a build error. See
    /// `docs/scheduling.md` for the misfire, overlap and recovery rules.
    ///
    /// ```
    /// # use host_core::{ClusterWide, Host, PeriodicService, RunContext, Schedule, ServiceError, async_trait};
    /// # struct Report;
    /// # #[async_trait]
    /// # impl PeriodicService for Report {
    /// #     async fn run(&self, _ctx: RunContext) -> Result<(), ServiceError> { Ok(()) }
    /// # }
    /// let mut builder = Host::builder();
    /// builder.add_periodic_instance_with(Report, Schedule::cron("0 0 3 * * *"), |report| {
    ///     report.cluster_wide(ClusterWide::new().job("nightly-report"))
    /// });
    /// ```
    ///
    /// A service that is not periodic has no ticks, and no such option:
    ///
    /// ```compile_fail
    /// # use host_core::{BackgroundService, ClusterWide, Host, ServiceContext, ServiceError, async_trait};
    /// # struct Billing;
    /// # #[async_trait]
    /// # impl BackgroundService for Billing {
    /// #     async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> { Ok(()) }
    /// # }
    /// let mut builder = Host::builder();
    /// builder.add_hosted_service_instance_with(Billing, |billing| {
    ///     billing.cluster_wide(ClusterWide::new())
    /// });
    /// ```
    pub fn cluster_wide(&mut self, cluster_wide: ClusterWide) -> &mut Self {
        self.settings.cluster_wide = Some(cluster_wide);
        self
    }
}

impl<T: ?Sized> fmt::Debug for ServiceOptions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.settings, f)
    }
}

impl fmt::Debug for ServiceSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceOptions")
            .field("restart", &self.restart)
            .field("start_timeout", &self.start_timeout)
            .field("stop_timeout", &self.stop_timeout)
            .field("heartbeat", &self.heartbeat)
            .field("after", &self.after)
            .field("required_for_readiness", &self.required_for_readiness)
            .field("last", &self.last)
            .field("schedule", &self.schedule)
            .field("scope_per_run", &self.scope_per_run)
            .field("fresh_instance_on_restart", &self.fresh.is_some())
            .field("cluster_singleton", &self.singleton)
            .field("cluster_wide", &self.cluster_wide)
            .finish()
    }
}
