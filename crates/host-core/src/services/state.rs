//! The state of every hosted service, queryable by other services.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use tokio::sync::watch;

use crate::ServiceFailure;
use crate::services::record::ServiceRecord;
use crate::supervision::events::{EventHub, ServiceEvents};

/// Where a hosted service is in its life.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServiceState {
    /// Registered; its `start` has not been called.
    NotStarted,
    /// Its `starting` hook or `start` is running (for a background service
    /// something waits on, until it reports ready).
    Starting,
    /// `start` returned; a background service's `execute` is running.
    Running,
    /// A background service's `execute` reported ready
    /// ([`ServiceContext::ready`](crate::ServiceContext::ready)).
    Ready,
    /// A background service's `execute` ended and its restart policy
    /// restarts it: `attempt` (from 1 since it last ran stably) begins at
    /// `at`.
    #[non_exhaustive]
    Restarting {
        /// The attempt about to begin.
        attempt: u32,
        /// When it begins (wall clock, for display).
        at: SystemTime,
    },
    /// A background service missed its heartbeat deadline.
    Hung,
    /// Paused through [`ServiceControl::pause`](crate::ServiceControl::pause):
    /// its `execute` returned and it stays stopped while the host runs.
    Paused,
    /// A background service's `execute` returned `Ok` before the host stopped.
    Completed,
    /// It returned an error or panicked.
    Failed(ServiceFailure),
    /// Its `stopping` hook or `stop` is running.
    Stopping,
    /// A cluster singleton that another instance leads: it campaigns, and
    /// runs `execute` once it leads (see [`ServiceStatus::leadership`]).
    Standby,
    /// Its `stop` returned, or it was aborted at the shutdown timeout, or its
    /// start never completed and the host has stopped (its `stop` is never
    /// called).
    Stopped,
}

impl ServiceState {
    /// Every state's name, as [`as_str`](Self::as_str) gives them (for a
    /// metric's label, a check of a name a test or a tool is given).
    pub const NAMES: [&'static str; 12] = [
        "not_started",
        "starting",
        "running",
        "ready",
        "restarting",
        "hung",
        "paused",
        "completed",
        "failed",
        "stopping",
        "stopped",
        "standby",
    ];

    /// The state's name: `not_started`, `starting`, `running`, `ready`,
    /// `restarting`, `hung`, `paused`, `completed`, `failed`, `stopping`,
    /// `stopped` or `standby`.
    pub fn as_str(&self) -> &'static str {
        Self::NAMES[self.index()]
    }

    /// The position of its name in [`NAMES`](Self::NAMES).
    pub(crate) fn index(&self) -> usize {
        match self {
            ServiceState::NotStarted => 0,
            ServiceState::Starting => 1,
            ServiceState::Running => 2,
            ServiceState::Ready => 3,
            ServiceState::Restarting { .. } => 4,
            ServiceState::Hung => 5,
            ServiceState::Paused => 6,
            ServiceState::Completed => 7,
            ServiceState::Failed(_) => 8,
            ServiceState::Stopping => 9,
            ServiceState::Stopped => 10,
            ServiceState::Standby => 11,
        }
    }

    /// Whether the service is doing what it should: running, ready,
    /// paused on purpose, completed without error, or standing by while
    /// another instance leads it.
    pub fn is_healthy(&self) -> bool {
        matches!(
            self,
            ServiceState::Running
                | ServiceState::Ready
                | ServiceState::Paused
                | ServiceState::Completed
                | ServiceState::Standby
        )
    }

    /// The failure, when the state is [`Failed`](ServiceState::Failed).
    pub fn failure(&self) -> Option<&ServiceFailure> {
        match self {
            ServiceState::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hosted service's name and its state at one moment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceStatus {
    /// The service's name, unique within the host.
    pub name: Arc<str>,
    /// Its state.
    pub state: ServiceState,
    /// The last failure, kept after the service has moved on (restarted or
    /// stopped, say).
    pub last_failure: Option<ServiceFailure>,
    /// How often its `execute` was restarted (by its policy, a missed
    /// heartbeat or the control handle).
    pub restarts: u32,
    /// When a periodic service runs next (wall clock), while it is
    /// scheduled.
    pub next_run: Option<SystemTime>,
    /// Whether `/health/ready` waits for it (the registration's
    /// `required_for_readiness`, default `true`).
    pub required_for_readiness: bool,
    /// Whether it is hung with no restart coming to mend it (none in its
    /// policy, or its policy gave up): `/health/live` fails and systemd's
    /// watchdog is no longer fed.
    pub hung_beyond_policy: bool,
    /// For a cluster singleton: who leads it, as this instance last saw.
    pub leadership: Option<Leadership>,
}

/// A cluster singleton's leadership, as one instance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leadership {
    /// The singleton's (its lease's) name.
    pub singleton: Arc<str>,
    /// This instance's holder id.
    pub instance: Arc<str>,
    /// Whether this instance leads.
    pub leading: bool,
    /// Who leads, when known: this instance, or the holder the store
    /// reported at the last try.
    pub leader: Option<Arc<str>>,
    /// The fencing token of the leader's term, when known.
    pub token: Option<u64>,
}

/// The states of the host's hosted services, in registration order.
///
/// Resolvable from the container, so that other services (health endpoints,
/// say) can ask how each service is doing. Cheap to clone.
///
/// # Examples
///
/// ```
/// # use host_core::{Host, ServiceStates};
/// # let mut builder = Host::builder();
/// # builder.handle_signals(false).default_logging(false);
/// let host = builder.build().unwrap();
/// let states: ServiceStates = host.service_states();
/// for status in states.snapshot() {
///     println!("{}: {}", status.name, status.state);
/// }
/// ```
#[derive(Clone)]
pub struct ServiceStates {
    inner: Arc<Inner>,
}

struct Inner {
    records: OnceLock<Vec<Arc<ServiceRecord>>>,
    changed: Arc<watch::Sender<u64>>,
    events: Arc<EventHub>,
}

impl ServiceStates {
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                records: OnceLock::new(),
                changed: Arc::new(watch::Sender::new(0)),
                events: EventHub::new(),
            }),
        }
    }

    pub(crate) fn hub(&self) -> Arc<EventHub> {
        self.inner.events.clone()
    }

    pub(crate) fn change_notifier(&self) -> Arc<watch::Sender<u64>> {
        self.inner.changed.clone()
    }

    pub(crate) fn set_records(&self, records: Vec<Arc<ServiceRecord>>) {
        // Set once, by `build()`, before any service runs.
        let _ = self.inner.records.set(records);
    }

    fn records(&self) -> &[Arc<ServiceRecord>] {
        self.inner.records.get().map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every hosted service's name and state, in registration order.
    pub fn snapshot(&self) -> Vec<ServiceStatus> {
        self.records()
            .iter()
            .map(|record| record.status())
            .collect()
    }

    /// The state of the service called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<ServiceState> {
        self.records()
            .iter()
            .find(|record| &*record.name == name)
            .map(|record| record.state())
    }

    /// The status of the service called `name` (its state, restarts,
    /// leadership...), if there is one.
    pub fn status(&self, name: &str) -> Option<ServiceStatus> {
        self.records()
            .iter()
            .find(|record| &*record.name == name)
            .map(|record| record.status())
    }

    /// The names of the services whose state is `wanted`, in registration
    /// order: the stragglers a timeout or a status line names.
    pub(crate) fn names_where(&self, wanted: impl Fn(&ServiceState) -> bool) -> Vec<String> {
        self.records()
            .iter()
            .filter(|record| wanted(&record.state()))
            .map(|record| record.name.to_string())
            .collect()
    }

    /// Whether every service is running or has completed without error.
    pub fn all_healthy(&self) -> bool {
        self.records()
            .iter()
            .all(|record| record.state().is_healthy())
    }

    /// Whether the host is live: no service is hung with no restart coming
    /// to mend it (see [`ServiceStatus::hung_beyond_policy`]). What
    /// `/health/live` answers and what feeds systemd's watchdog.
    pub fn is_live(&self) -> bool {
        self.records()
            .iter()
            .all(|record| !record.status().hung_beyond_policy)
    }

    /// Every state transition from now on, as a stream of [`ServiceEvent`](crate::ServiceEvent)s.
    pub fn events(&self) -> ServiceEvents {
        self.inner.events.subscribe()
    }

    /// Waits until the service called `name` is in a state `wanted`
    /// accepts, and returns that state; `None` if no service is called
    /// `name`. Cancellation-safe.
    pub async fn wait_for(
        &self,
        name: &str,
        wanted: impl Fn(&ServiceState) -> bool,
    ) -> Option<ServiceState> {
        let record = self
            .records()
            .iter()
            .find(|record| &*record.name == name)?
            .clone();
        let mut changed = self.subscribe();
        loop {
            let state = record.state();
            if wanted(&state) {
                return Some(state);
            }
            if changed.changed().await.is_err() {
                return None;
            }
        }
    }

    /// A receiver that sees a new value whenever any service's state changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }
}

impl fmt::Debug for ServiceStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.snapshot()).finish()
    }
}
