//! Waiting for a service's state, bounded so that a hang fails the test.

use std::time::Duration;

use host_core::{ServiceState, ServiceStates};

use crate::events::EventLog;

/// How long [`TestHost::wait_for`](crate::TestHost::wait_for) waits by
/// default, on the tokio clock: generous, so that only a hang fails a
/// test. Under paused time an idle runtime skips to it at once; on a real
/// clock a busy machine is far within it. Change it with
/// [`TestHostBuilder::wait_limit`](crate::TestHostBuilder::wait_limit).
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// The first state of `name`, from now on, that `wanted` accepts: its
/// current state if accepted, else the first state it enters afterwards
/// that is, even if it has moved on by the time this task runs.
///
/// # Panics
///
/// No service is called `name`, or none is accepted within `limit`.
pub(crate) async fn wait_for(
    states: &ServiceStates,
    events: &EventLog,
    limit: Duration,
    name: &str,
    wanted: impl Fn(&ServiceState) -> bool,
) -> ServiceState {
    if states.get(name).is_none() {
        let names: Vec<String> = states
            .snapshot()
            .into_iter()
            .map(|status| format!("`{}`", status.name))
            .collect();
        panic!(
            "wait_for(`{name}`): no service is called `{name}`; the services: {}",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
    }
    // Subscribed before anything is read, so that no change in between goes
    // unnoticed.
    let mut changed = states.subscribe();
    let from = events.len();
    if let Some(state) = states.get(name).filter(|state| wanted(state)) {
        return state;
    }
    let waited = tokio::time::timeout(limit, async {
        loop {
            if let Some(state) = events.first_entered_since(from, name, &wanted) {
                return state;
            }
            // Events a lagging stream lost still show in the state itself.
            if let Some(state) = states.get(name).filter(|state| wanted(state)) {
                return state;
            }
            if changed.changed().await.is_err() {
                // The host is gone: nothing will change; the limit decides.
                std::future::pending::<()>().await;
            }
        }
    })
    .await;
    match waited {
        Ok(state) => state,
        Err(_) => panic!(
            "wait_for(`{name}`): no state it accepts within {limit:?} on the tokio clock; \
             it is {}\nevents seen:\n{}",
            describe(states.get(name)),
            events.report()
        ),
    }
}

/// A state as a failing wait names it: with the failure, if it failed.
fn describe(state: Option<ServiceState>) -> String {
    match state {
        Some(ServiceState::Failed(failure)) => format!("`failed` ({failure})"),
        Some(state) => format!("`{state}`"),
        None => "gone".to_owned(),
    }
}
