//! The state of every hosted service, queryable by other services.

use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use crate::ServiceFailure;
use crate::services::record::ServiceRecord;

/// Where a hosted service is in its life.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServiceState {
    /// Registered; its `start` has not been called.
    NotStarted,
    /// Its `starting` hook or `start` is running.
    Starting,
    /// `start` returned; a background service's `execute` is running.
    Running,
    /// A background service's `execute` returned `Ok` before the host stopped.
    Completed,
    /// It returned an error or panicked.
    Failed(ServiceFailure),
    /// Its `stopping` hook or `stop` is running.
    Stopping,
    /// Its `stop` returned, or it was aborted at the shutdown timeout, or its
    /// start never completed and the host has stopped (its `stop` is never
    /// called).
    Stopped,
}

impl ServiceState {
    /// The state's name: `not_started`, `starting`, `running`, `completed`,
    /// `failed`, `stopping` or `stopped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ServiceState::NotStarted => "not_started",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Completed => "completed",
            ServiceState::Failed(_) => "failed",
            ServiceState::Stopping => "stopping",
            ServiceState::Stopped => "stopped",
        }
    }

    /// Whether the service is doing what it should: running, or completed
    /// without error.
    pub fn is_healthy(&self) -> bool {
        matches!(self, ServiceState::Running | ServiceState::Completed)
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
    /// The last failure, kept after the service has moved on (stopped, say).
    pub last_failure: Option<ServiceFailure>,
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
}

impl ServiceStates {
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                records: OnceLock::new(),
                changed: Arc::new(watch::Sender::new(0)),
            }),
        }
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
