//! Liveness: one task per host watches the heartbeat deadlines of the
//! services that declare one, and reports a service that misses its
//! deadline hung (and recovered, when it beats again).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::logging::LIFETIME_TARGET;
use crate::services::record::{Command, HostShared, ServiceRecord, lock};
use crate::services::state::ServiceState;

/// How often a hung service is looked at again, for its recovery, at most.
const RECOVERY_CHECK: Duration = Duration::from_millis(250);

/// Starts watching, if any service has a heartbeat deadline; the task ends
/// with the host's stop, or when the handle is dropped.
pub(crate) fn spawn(
    records: &[Arc<ServiceRecord>],
    shared: Arc<HostShared>,
) -> Option<AbortOnDropHandle<()>> {
    let watched: Vec<Arc<ServiceRecord>> = records
        .iter()
        .filter(|record| record.settings.heartbeat.is_some())
        .cloned()
        .collect();
    if watched.is_empty() {
        return None;
    }
    Some(AbortOnDropHandle::new(tokio::spawn(monitor(
        watched, shared,
    ))))
}

async fn monitor(records: Vec<Arc<ServiceRecord>>, shared: Arc<HostShared>) {
    loop {
        let mut woken = std::pin::pin!(shared.liveness.notified());
        woken.as_mut().enable();
        let now = Instant::now();
        let next = records.iter().filter_map(|record| check(record, now)).min();
        let sleep = async {
            match next {
                Some(next) => tokio::time::sleep_until(next).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = woken => {}
            () = shared.stop_began.cancelled() => return,
        }
    }
}

/// Looks at one service; returns when to look again.
fn check(record: &Arc<ServiceRecord>, now: Instant) -> Option<Instant> {
    let deadline = record.settings.heartbeat?;
    {
        let run = lock(&record.run);
        // No run in progress, or one being ended already.
        if run.number == 0 || run.stop_begun || run.command.is_some() || run.paused {
            return None;
        }
    }
    let state = record.state();
    let last = record.last_beat();
    let silent = now.saturating_duration_since(last);
    match state {
        ServiceState::Hung if silent < deadline => {
            tracing::info!(target: LIFETIME_TARGET, service = %record.name,
                "`{}` beats again; no longer hung", record.name);
            record.mending.store(false, Ordering::Release);
            let recovered = if record.is_ready() {
                ServiceState::Ready
            } else {
                ServiceState::Running
            };
            record.advance(|state| matches!(state, ServiceState::Hung), recovered);
            last.checked_add(deadline)
        }
        ServiceState::Hung => now.checked_add(RECOVERY_CHECK.min(deadline)),
        ServiceState::Starting | ServiceState::Running | ServiceState::Ready => {
            if silent < deadline {
                return last.checked_add(deadline);
            }
            hang(record, deadline, silent);
            now.checked_add(RECOVERY_CHECK.min(deadline))
        }
        _ => None,
    }
}

/// Reports a service hung, and has its policy restart it if it can.
fn hang(record: &Arc<ServiceRecord>, deadline: Duration, silent: Duration) {
    let restarts = record.settings.restart.restarts() && !record.shared.winding_down();
    record.mending.store(restarts, Ordering::Release);
    record.advance(
        |state| {
            matches!(
                state,
                ServiceState::Starting | ServiceState::Running | ServiceState::Ready
            )
        },
        ServiceState::Hung,
    );
    metrics::counter!(HUNG, "service" => record.name.clone()).increment(1);
    if restarts {
        tracing::warn!(target: LIFETIME_TARGET, service = %record.name,
            "`{}` missed its heartbeat deadline ({deadline:?}; silent for {silent:?}); \
             ending its run for its restart policy", record.name);
        record.end_run(Command::Hung, record.stop_timeout());
    } else {
        tracing::error!(target: LIFETIME_TARGET, service = %record.name,
            "`{}` missed its heartbeat deadline ({deadline:?}; silent for {silent:?}) and no \
             restart policy mends it: the host is no longer live", record.name);
    }
}

/// Counter: heartbeat deadlines missed.
const HUNG: &str = "host_service_hung_total";
