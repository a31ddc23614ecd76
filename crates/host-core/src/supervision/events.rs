//! The lifecycle event stream: every state transition of every service, to
//! subscribers, to tracing and to the `metrics` facade.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use futures::Stream;
use tokio::sync::broadcast;

use crate::ServiceState;
use crate::services::state::Leadership;

/// The tracing target of every state transition (at `debug`):
/// `logging.level."host::services" = "debug"` shows them.
pub const SERVICES_TARGET: &str = "host::services";

/// How many events a subscriber may fall behind before it misses some.
const CAPACITY: usize = 1024;

/// One state transition of one hosted service.
///
/// Published to every [`ServiceEvents`] subscriber, logged at `debug` on
/// the `host::services` target ([`SERVICES_TARGET`]) (restarts, hangs and failures at `warn` and
/// `error` by the supervisor itself), and counted through the `metrics`
/// facade (see `docs/supervision.md` for the names).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceEvent {
    /// The service's name.
    pub service: Arc<str>,
    /// The state it left.
    pub from: ServiceState,
    /// The state it entered.
    pub to: ServiceState,
    /// When (wall clock).
    pub at: SystemTime,
    /// For the end of a `start` or a `stop` (into running, ready, failed
    /// or stopped), how long that call took.
    pub duration: Option<Duration>,
    /// Restarts so far.
    pub restarts: u32,
    /// For a cluster singleton: its leadership as it entered the state
    /// (who leads, with which token; `standby` and `running` follow it).
    pub leadership: Option<Leadership>,
}

/// A subscription to the lifecycle events of a host's services, from
/// [`ServiceStates::events`](crate::ServiceStates::events): every
/// transition from the moment of subscribing, in order.
///
/// A subscriber that falls more than 1 024 events behind misses the oldest
/// ones; [`missed`](Self::missed) counts them.
///
/// # Examples
///
/// ```
/// # use host_core::Host;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_core::HostError> {
/// # let mut builder = Host::builder();
/// # builder.handle_signals(false).default_logging(false);
/// let mut host = builder.build()?;
/// let mut events = host.service_states().events();
/// host.start().await?;
/// host.stop().await?;
/// drop(host);
/// while let Some(event) = events.next().await {
///     println!("{}: {} -> {}", event.service, event.from, event.to);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ServiceEvents {
    receiver: broadcast::Receiver<ServiceEvent>,
    /// The hub's count of subscribers (not the hub: holding its sender
    /// would keep the stream from ever ending).
    subscribers: Arc<AtomicUsize>,
    missed: u64,
}

impl ServiceEvents {
    /// The next event; `None` once the host and everything holding its
    /// states are gone. Cancellation-safe: an event is never lost to a
    /// dropped call.
    pub async fn next(&mut self) -> Option<ServiceEvent> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => self.missed += missed,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<ServiceEvent> {
        loop {
            match self.receiver.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(missed)) => self.missed += missed,
                Err(_) => return None,
            }
        }
    }

    /// How many events this subscriber missed by falling behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The events as a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = ServiceEvent> + Send + 'static {
        futures::stream::unfold(self, |mut events| async move {
            let event = events.next().await?;
            Some((event, events))
        })
    }
}

impl Drop for ServiceEvents {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where transitions are published.
#[derive(Debug)]
pub(crate) struct EventHub {
    /// Made by the first subscriber: a channel holds room for all the
    /// events a subscriber may fall behind by, which most hosts never use.
    sender: OnceLock<broadcast::Sender<ServiceEvent>>,
    /// Our own count: the channel's takes a lock to read, and most hosts
    /// have no subscriber at all.
    subscribers: Arc<AtomicUsize>,
    /// The host's metric handles, registered at its first transition (so
    /// with the recorder the application installed before starting it):
    /// building a key per transition would cost more than the rest of it.
    metrics: OnceLock<Handles>,
}

/// The metrics every transition records, labelled by state, not service.
struct Handles {
    /// By the state entered, in [`ServiceState::NAMES`] order.
    transitions: Vec<metrics::Counter>,
    start: metrics::Histogram,
    stop: metrics::Histogram,
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles").finish_non_exhaustive()
    }
}

impl Handles {
    fn register() -> Self {
        Self {
            transitions: ServiceState::NAMES
                .iter()
                .map(|to| metrics::counter!(names::TRANSITIONS, "to" => *to))
                .collect(),
            start: metrics::histogram!(names::START_SECONDS),
            stop: metrics::histogram!(names::STOP_SECONDS),
        }
    }
}

impl EventHub {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            sender: OnceLock::new(),
            subscribers: Arc::new(AtomicUsize::new(0)),
            metrics: OnceLock::new(),
        })
    }

    pub(crate) fn subscribe(self: &Arc<Self>) -> ServiceEvents {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        ServiceEvents {
            receiver: self
                .sender
                .get_or_init(|| broadcast::Sender::new(CAPACITY))
                .subscribe(),
            subscribers: self.subscribers.clone(),
            missed: 0,
        }
    }

    /// Whether anything subscribed: most hosts never do.
    pub(crate) fn has_subscribers(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    fn record_metrics(
        &self,
        service: &Arc<str>,
        from: &ServiceState,
        to: &ServiceState,
        duration: Option<Duration>,
    ) {
        let handles = self.metrics.get_or_init(Handles::register);
        handles.transitions[to.index()].increment(1);
        if matches!(to, ServiceState::Restarting { .. }) {
            // Rare: labelled by service.
            metrics::counter!(names::RESTARTS, "service" => service.clone()).increment(1);
        }
        if let Some(duration) = duration {
            let histogram = if matches!(from, ServiceState::Stopping) {
                &handles.stop
            } else {
                &handles.start
            };
            histogram.record(duration.as_secs_f64());
        }
    }

    /// Publishes one transition: to subscribers, tracing and metrics.
    pub(crate) fn publish(
        &self,
        service: &Arc<str>,
        from: &ServiceState,
        to: &ServiceState,
        duration: Option<Duration>,
        restarts: u32,
        leadership: Option<Leadership>,
    ) {
        tracing::debug!(target: SERVICES_TARGET, service = %service, from = from.as_str(),
            to = to.as_str(), duration = ?duration, "service state changed");
        self.record_metrics(service, from, to, duration);
        if self.has_subscribers()
            && let Some(sender) = self.sender.get()
        {
            let _ = sender.send(ServiceEvent {
                service: service.clone(),
                from: from.clone(),
                to: to.clone(),
                at: SystemTime::now(),
                duration,
                restarts,
                leadership,
            });
        }
    }
}

/// The metric names, documented in `docs/supervision.md`.
pub(crate) mod names {
    /// Counter: state transitions, by the state entered (`to`).
    pub(crate) const TRANSITIONS: &str = "host_service_transitions_total";
    /// Counter: restarts of a service's `execute`.
    pub(crate) const RESTARTS: &str = "host_service_restarts_total";
    /// Histogram: how long a service's `start` took, in seconds.
    pub(crate) const START_SECONDS: &str = "host_service_start_duration_seconds";
    /// Histogram: how long a service's `stop` took, in seconds.
    pub(crate) const STOP_SECONDS: &str = "host_service_stop_duration_seconds";
    /// Histogram: how late a periodic service's run began, in seconds.
    pub(crate) const LATENESS_SECONDS: &str = "host_schedule_lateness_seconds";
    /// Counter: a periodic service's ticks that got no run of their own,
    /// by reason (`overlap`, `missed`).
    pub(crate) const SKIPPED: &str = "host_schedule_skipped_total";
}
