//! The `HostedService` trait and the context each of its calls receives.

use std::any::{Any, type_name};
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::services::record::ServiceRecord;
use crate::{ApplicationLifetime, Phase, ServiceError};

/// A service the host starts and stops, as .NET's `IHostedService` with the
/// hooks of `IHostedLifecycleService`.
///
/// Every [`BackgroundService`](crate::BackgroundService) already implements
/// it (so implementing both is a conflicting implementation): for code at a
/// background service's start or stop, override its
/// [`before_start`](crate::BackgroundService::before_start) and
/// [`after_stop`](crate::BackgroundService::after_stop) instead.
///
/// The host calls, for every service and in this order: every `starting`,
/// every `start` (registration order), every `started`; then at shutdown
/// every `stopping` (reverse order), every `stop` (reverse order), every
/// `stopped`. `stop` is only ever called on a service whose `start`
/// completed. Errors and panics in any of them are caught and name the
/// service.
///
/// For one long-running loop, implement [`BackgroundService`](crate::BackgroundService)
/// instead: it implements this trait for you and never holds up the start.
///
/// # Examples
///
/// ```
/// use async_trait::async_trait;
/// use host_core::{HostedService, LifecycleContext, ServiceError};
///
/// struct Cache;
///
/// #[async_trait]
/// impl HostedService for Cache {
///     async fn start(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
///         tracing::info!(service = ctx.name(), "warming the cache");
///         Ok(())
///     }
///
///     async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), host_core::HostError> {
/// let mut builder = host_core::Host::builder();
/// builder.handle_signals(false).add_hosted_service_instance(Cache);
/// let mut host = builder.build()?;
/// host.start().await?;
/// host.stop().await?;
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a hosted service",
    label = "neither `BackgroundService` nor `HostedService`",
    note = "implement `BackgroundService` (one `execute` loop, started and stopped for you) \
            or `HostedService` (your own `start` and `stop`) for `{Self}`, with `#[async_trait]`"
)]
#[async_trait]
pub trait HostedService: Any + Send + Sync {
    /// The name used in logs, errors and service states. Default: the type's
    /// name, as `app::Worker`.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(type_name::<Self>())
    }

    /// Whether `start` spawns an `execute` (a
    /// [`BackgroundService`](crate::BackgroundService)); the host's adapter
    /// says so, and a sequential start gives those tasks a turn of the
    /// runtime before it starts a service of another kind. Leave it.
    #[doc(hidden)]
    fn is_background(&self) -> bool {
        false
    }

    no_op_hook!(
        /// Runs before any service's `start`.
        starting
    );

    /// Starts the service. Return promptly: long-running work belongs on a
    /// task of its own (see [`BackgroundService`](crate::BackgroundService)).
    /// The context's token fires when the startup timeout expires.
    async fn start(&self, ctx: &LifecycleContext) -> Result<(), ServiceError>;

    no_op_hook!(
        /// Runs after every service's `start` has returned.
        started
    );

    no_op_hook!(
        /// Runs at shutdown, before any service's `stop`.
        stopping
    );

    /// Stops the service. The context's token fires when the shutdown
    /// timeout expires; after that, the calls still running get a short
    /// overtime together (200 ms), and are then abandoned.
    async fn stop(&self, ctx: &LifecycleContext) -> Result<(), ServiceError>;

    no_op_hook!(
        /// Runs after every service's `stop` has returned.
        stopped
    );
}

/// The future of a hosted service's `start`, `stop` and hooks, as
/// `#[async_trait]` writes it: implement them as `async fn`.
pub type LifecycleFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ServiceError>> + Send + 'a>>;

/// A hook that does nothing, written out as `#[async_trait]` would write it
/// but returning an empty future, which needs no allocation: most services
/// override none of their hooks, and the host calls each of them.
macro_rules! no_op_hook {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        fn $name<'life0, 'life1, 'async_trait>(
            &'life0 self,
            _ctx: &'life1 LifecycleContext,
        ) -> LifecycleFuture<'async_trait>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            Self: 'async_trait,
        {
            $crate::services::hosted::no_op()
        }
    };
}
pub(crate) use no_op_hook;

/// What a default hook returns: an empty future, which needs no allocation.
///
/// Never inlined: `NoOp`'s vtable is then always the one made here, which
/// [`is_no_op`] looks for (a copy inlined into the service's crate would
/// carry a vtable of its own).
#[inline(never)]
pub(crate) fn no_op<'a>() -> LifecycleFuture<'a> {
    Box::pin(NoOp)
}

/// The future of a hook left at its default.
struct NoOp;

impl Future for NoOp {
    type Output = Result<(), ServiceError>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(()))
    }
}

/// Whether `call` is what [`no_op`] returns: a hook left at its default,
/// which runs no code of the service's, so the host need not enter the
/// service's span to poll it (with a subscriber, entering and leaving a span
/// costs more than the rest of such a call).
///
/// Compares the vtable with the one [`no_op`] makes (the addresses are set
/// equal): a future of any other type is never taken for a no-op; a no-op
/// whose vtable were a copy would merely be polled in the span as any call.
pub(crate) fn is_no_op(call: &LifecycleFuture<'_>) -> bool {
    let reference = no_op();
    let reference: *const (dyn Future<Output = Result<(), ServiceError>> + Send + '_) =
        reference.as_ref().get_ref();
    let call: *const (dyn Future<Output = Result<(), ServiceError>> + Send + '_) =
        call.as_ref().get_ref();
    #[allow(ambiguous_wide_pointer_comparisons)] // the vtables are what is compared
    std::ptr::eq(call, reference.with_addr(call.addr()))
}

/// What a hosted service's `start`, `stop` and hooks receive: the service's
/// name, the phase, a token that fires when the phase's deadline has passed,
/// and the application lifetime.
pub struct LifecycleContext {
    pub(crate) record: Arc<ServiceRecord>,
    phase: Arc<PhaseContext>,
}

/// What every call of one phase shares.
pub(crate) struct PhaseContext {
    phase: Phase,
    deadline: CancellationToken,
    lifetime: ApplicationLifetime,
}

impl PhaseContext {
    pub(crate) fn new(
        phase: Phase,
        deadline: CancellationToken,
        lifetime: ApplicationLifetime,
    ) -> Self {
        Self {
            phase,
            deadline,
            lifetime,
        }
    }
}

impl LifecycleContext {
    pub(crate) fn new(record: Arc<ServiceRecord>, phase: Arc<PhaseContext>) -> Self {
        Self { record, phase }
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// The phase this call belongs to.
    pub fn phase(&self) -> Phase {
        self.phase.phase
    }

    /// Completes when this phase's deadline has passed (the startup timeout
    /// during start, the shutdown timeout during stop), or when the start is
    /// abandoned because the host was asked to stop.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.phase.deadline.cancelled()
    }

    /// Whether this phase's deadline has passed.
    pub fn is_cancelled(&self) -> bool {
        self.phase.deadline.is_cancelled()
    }

    /// A token cancelled when this phase's deadline has passed, to hand to
    /// other work. Cancelling it does not affect the host.
    pub fn token(&self) -> CancellationToken {
        self.phase.deadline.child_token()
    }

    /// The application lifetime.
    pub fn lifetime(&self) -> &ApplicationLifetime {
        &self.phase.lifetime
    }
}

impl fmt::Debug for LifecycleContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LifecycleContext")
            .field("service", &self.name())
            .field("phase", &self.phase())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::{LifecycleFuture, is_no_op, no_op};
    use crate::ServiceError;

    /// Empty as `NoOp` is, but a service's own.
    struct Logs;

    impl Future for Logs {
        type Output = Result<(), ServiceError>;

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            tracing::info!("a service's own code");
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn only_a_default_hook_is_a_no_op() {
        assert!(is_no_op(&no_op()));
        let empty: LifecycleFuture<'_> = Box::pin(Logs);
        assert!(!is_no_op(&empty));
        let ready: LifecycleFuture<'_> = Box::pin(std::future::ready(Ok(())));
        assert!(!is_no_op(&ready));
        let written: LifecycleFuture<'_> = Box::pin(async { Ok(()) });
        assert!(!is_no_op(&written));
    }
}
