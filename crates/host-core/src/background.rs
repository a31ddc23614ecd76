//! The `BackgroundService` trait: one long-running `execute`, spawned on its
//! own task, with start and stop handled by the host.

use std::any::type_name;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::hosted::no_op_hook;
use crate::{ApplicationLifetime, HostedService, LifecycleContext, LifecycleFuture, ServiceError};

/// A long-running service, as .NET's `BackgroundService`: implement
/// [`execute`](Self::execute) and the host does the rest.
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
/// Rather than overriding `start` and `stop` (which would lose the spawn),
/// use [`before_start`](Self::before_start) and
/// [`after_stop`](Self::after_stop); the lifecycle hooks `starting`,
/// `started`, `stopping` and `stopped` are there too.
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
///         let mut every = tokio::time::interval(Duration::from_secs(1));
///         loop {
///             tokio::select! {
///                 _ = ctx.stopping() => return Ok(()),
///                 _ = every.tick() => tracing::info!("working"),
///             }
///         }
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

    forward_hook!(starting);

    async fn start(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        BackgroundService::before_start(self, ctx).await?;
        let this = ctx.record.instance::<T>()?;
        ctx.record.spawn_execute(this, ctx.lifetime().clone())
    }

    forward_hook!(started);

    forward_hook!(stopping);

    async fn stop(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        ctx.record.stop_execute().await;
        BackgroundService::after_stop(self, ctx).await
    }

    forward_hook!(stopped);
}

/// What a background service's `execute` receives: its stopping token and
/// the application lifetime.
#[derive(Clone)]
pub struct ServiceContext {
    name: Arc<str>,
    stopping: CancellationToken,
    lifetime: ApplicationLifetime,
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
        }
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

impl fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceContext")
            .field("service", &self.name)
            .field("stopping", &self.is_stopping())
            .finish()
    }
}
