//! Health: `HealthCheck`s registered through DI, and the live, startup and
//! ready endpoints that report them with every hosted service's state.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use host_core::{ApplicationLifetime, ServiceStates, ServiceStatus};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

use crate::time;

/// How healthy something is; the worst of all decides the endpoint's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working.
    Healthy,
    /// Working, not at its best: readiness still answers 200.
    Degraded,
    /// Not working: readiness answers 503.
    Unhealthy,
}

/// What one health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckResult {
    status: HealthStatus,
    description: Option<String>,
}

impl HealthCheckResult {
    /// All is well.
    pub fn healthy() -> Self {
        Self {
            status: HealthStatus::Healthy,
            description: None,
        }
    }

    /// Working, not at its best; `description` says how (shown only when
    /// detailed errors are on).
    pub fn degraded(description: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Degraded,
            description: Some(description.into()),
        }
    }

    /// Not working; `description` says why (shown only when detailed
    /// errors are on).
    pub fn unhealthy(description: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Unhealthy,
            description: Some(description.into()),
        }
    }

    /// The status.
    pub fn status(&self) -> HealthStatus {
        self.status
    }

    /// Why, if the check said.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

/// A check of something the application depends on (a database, a queue),
/// run by `/health/ready` with a timeout. Its result is kept for
/// [`cache_for`](crate::HealthOptions::cache_for), and a check never runs
/// twice at once: requests that come while it runs share that run. Register
/// it with
/// [`WebHostBuilderExt::add_health_check`](crate::WebHostBuilderExt::add_health_check).
///
/// ```
/// use host_web::{HealthCheck, HealthCheckResult, WebHostBuilderExt, async_trait};
///
/// struct QueueDepth(std::sync::atomic::AtomicUsize);
///
/// #[async_trait]
/// impl HealthCheck for QueueDepth {
///     async fn check(&self) -> HealthCheckResult {
///         match self.0.load(std::sync::atomic::Ordering::Relaxed) {
///             0..100 => HealthCheckResult::healthy(),
///             depth => HealthCheckResult::degraded(format!("{depth} items waiting")),
///         }
///     }
/// }
///
/// let mut builder = host_core::Host::builder();
/// builder.add_health_check_instance(QueueDepth(Default::default()));
/// ```
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// The check's name in the report. Default: the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(std::any::type_name::<Self>())
    }

    /// Runs the check. A panic or the timeout counts as unhealthy.
    async fn check(&self) -> HealthCheckResult;
}

/// What the endpoints need to answer.
pub(crate) struct Health {
    pub(crate) lifetime: Arc<ApplicationLifetime>,
    pub(crate) states: Arc<ServiceStates>,
    pub(crate) checks: Vec<CheckSlot>,
    pub(crate) timeout: Duration,
    /// How long a check's result is reused; zero: every request runs it
    /// (though never twice at once).
    pub(crate) cache_for: Duration,
    pub(crate) detailed: bool,
}

/// One health check, its last result and its run in flight. The endpoint
/// is unauthenticated: without these, each request would run every check,
/// an amplifier against the database a check queries.
pub(crate) struct CheckSlot {
    check: Arc<dyn HealthCheck>,
    state: Mutex<SlotState>,
}

impl CheckSlot {
    pub(crate) fn new(check: Arc<dyn HealthCheck>) -> Self {
        Self {
            check,
            state: Mutex::new(SlotState::default()),
        }
    }
}

#[derive(Default)]
struct SlotState {
    last: Option<Ran>,
    /// Shared by every request that comes while it runs; polled by them
    /// (no task of its own), so it pauses if they all go away and the next
    /// request resumes it.
    running: Option<Shared<BoxFuture<'static, Ran>>>,
}

/// A check's report and when its run ended.
#[derive(Clone)]
struct Ran {
    ended: Instant,
    report: CheckReport,
}

#[derive(Serialize)]
struct Report {
    status: HealthStatus,
    host: &'static str,
    services: Vec<ServiceReport>,
    checks: Vec<CheckReport>,
}

/// `/health/live`'s body: the services that keep it failing, when some do.
#[derive(Serialize)]
struct LiveReport {
    status: HealthStatus,
    /// The services hung with no restart coming.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hung: Vec<String>,
}

/// `/health/startup`'s body.
#[derive(Serialize)]
struct StartupReport {
    status: HealthStatus,
    host: &'static str,
}

/// One hosted service in the readiness report.
#[derive(Serialize)]
struct ServiceReport {
    name: String,
    state: &'static str,
    /// Whether its state counts for readiness.
    required: bool,
    /// How often its `execute` was restarted.
    restarts: u32,
    /// When a periodic service runs next, in RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_run: Option<String>,
    /// The current failure, when the service is failed (detailed only).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The last failure, kept after a restart (detailed only).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    /// A cluster singleton's leadership, as this instance sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    leadership: Option<LeadershipReport>,
}

/// Who leads a cluster singleton.
#[derive(Serialize)]
struct LeadershipReport {
    singleton: String,
    /// This instance's id.
    instance: String,
    leading: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    leader: Option<String>,
    /// The fencing token of the leader's term.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<u64>,
}

impl ServiceReport {
    fn new(status: &ServiceStatus, detailed: bool) -> Self {
        Self {
            name: status.name.to_string(),
            state: status.state.as_str(),
            required: status.required_for_readiness,
            restarts: status.restarts,
            next_run: status.next_run.and_then(rfc3339),
            error: detailed
                .then(|| status.state.failure().map(ToString::to_string))
                .flatten(),
            last_error: detailed
                .then(|| status.last_failure.as_ref().map(ToString::to_string))
                .flatten(),
            leadership: status
                .leadership
                .as_ref()
                .map(|leadership| LeadershipReport {
                    singleton: leadership.singleton.to_string(),
                    instance: leadership.instance.to_string(),
                    leading: leadership.leading,
                    leader: leadership.leader.as_deref().map(str::to_owned),
                    token: leadership.token,
                }),
        }
    }
}

#[derive(Clone, Serialize)]
struct CheckReport {
    name: String,
    status: HealthStatus,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

impl Health {
    /// `/health/live`: 503 while a service is hung with no restart coming
    /// to mend it, naming it; a restart is the remedy a liveness probe
    /// would bring, so the host's own restart policy is left to act first.
    pub(crate) fn live(&self) -> Response {
        // One snapshot, so that the body and the status code agree.
        let hung: Vec<String> = self
            .states
            .snapshot()
            .into_iter()
            .filter(|status| status.hung_beyond_policy)
            .map(|status| status.name.to_string())
            .collect();
        let (code, status) = if hung.is_empty() {
            (StatusCode::OK, HealthStatus::Healthy)
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, HealthStatus::Unhealthy)
        };
        (code, Json(LiveReport { status, hung })).into_response()
    }

    /// `/health/startup`: 200 from the host's start on, for good (the stop
    /// included): a startup probe is consulted only until it first succeeds.
    pub(crate) fn startup(&self) -> Response {
        let (code, status) = if self.lifetime.is_started() {
            (StatusCode::OK, HealthStatus::Healthy)
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, HealthStatus::Unhealthy)
        };
        let report = StartupReport {
            status,
            host: self.host(),
        };
        (code, Json(report)).into_response()
    }

    /// Where the host is in its life, as the bodies name it.
    fn host(&self) -> &'static str {
        if self.lifetime.is_stop_requested() || self.lifetime.is_stopping() {
            "stopping"
        } else if self.lifetime.is_started() {
            "started"
        } else {
            "starting"
        }
    }

    /// `/health/ready`: started, not stopping, every service required for
    /// readiness and every check well.
    pub(crate) async fn ready(&self) -> Response {
        let host = self.host();
        // One snapshot, so that the body and the status code agree.
        let snapshot = self.states.snapshot();
        let services_healthy = snapshot
            .iter()
            .filter(|status| status.required_for_readiness)
            .all(|status| status.state.is_healthy());
        let services: Vec<ServiceReport> = snapshot
            .iter()
            .map(|status| ServiceReport::new(status, self.detailed))
            .collect();
        let checks =
            futures::future::join_all(self.checks.iter().map(|slot| self.report(slot))).await;
        let mut status = checks
            .iter()
            .map(|check| check.status)
            .max()
            .unwrap_or(HealthStatus::Healthy);
        if host != "started" || !services_healthy {
            status = HealthStatus::Unhealthy;
        }
        let code = match status {
            HealthStatus::Healthy | HealthStatus::Degraded => StatusCode::OK,
            HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        };
        let report = Report {
            status,
            host,
            services,
            checks,
        };
        (code, Json(report)).into_response()
    }

    /// The check's last report while it is fresh; otherwise the run in
    /// flight, or a new one.
    async fn report(&self, slot: &CheckSlot) -> CheckReport {
        let running = {
            let mut state = slot.state.lock();
            if let Some(last) = &state.last
                && self.is_fresh(last)
            {
                return last.report.clone();
            }
            match &state.running {
                Some(running) => running.clone(),
                None => {
                    let running = run(slot.check.clone(), self.timeout, self.detailed)
                        .boxed()
                        .shared();
                    state.running = Some(running.clone());
                    running
                }
            }
        };
        let ran = running.clone().await;
        let mut state = slot.state.lock();
        // The first of the requests that shared the run keeps its result.
        if state
            .running
            .as_ref()
            .is_some_and(|current| current.ptr_eq(&running))
        {
            state.running = None;
            state.last = Some(ran.clone());
        }
        ran.report
    }

    fn is_fresh(&self, ran: &Ran) -> bool {
        // Past what an `Instant` can hold: kept for good.
        time::deadline(ran.ended, self.cache_for).is_none_or(|stale| Instant::now() < stale)
    }
}

/// `time` in RFC 3339 (UTC, whole seconds); `None` outside what the format
/// holds (before 1970 or past 9999), which would otherwise panic.
fn rfc3339(time: SystemTime) -> Option<String> {
    /// 10000-01-01T00:00:00Z, in seconds since the epoch.
    const YEAR_10000: u64 = 253_402_300_800;
    let since_epoch = time.duration_since(UNIX_EPOCH).ok()?;
    (since_epoch.as_secs() < YEAR_10000)
        .then(|| humantime::format_rfc3339_seconds(time).to_string())
}

/// Runs `check` within `timeout`; a panic or the timeout is unhealthy.
async fn run(check: Arc<dyn HealthCheck>, timeout: Duration, detailed: bool) -> Ran {
    let began = Instant::now();
    let outcome = time::within(timeout, AssertUnwindSafe(check.check()).catch_unwind()).await;
    let result = match outcome {
        Some(Ok(result)) => result,
        Some(Err(_)) => HealthCheckResult::unhealthy("the check panicked"),
        None => HealthCheckResult::unhealthy(format!("the check timed out after {timeout:?}")),
    };
    let ended = Instant::now();
    Ran {
        ended,
        report: CheckReport {
            name: check.name().into_owned(),
            status: result.status,
            duration_ms: (ended - began).as_secs_f64() * 1000.0,
            description: result.description.filter(|_| detailed),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_in_utc_and_none_outside_its_range() {
        assert_eq!(rfc3339(UNIX_EPOCH).as_deref(), Some("1970-01-01T00:00:00Z"));
        let later = UNIX_EPOCH + Duration::from_millis(1_700_000_000_900);
        assert_eq!(rfc3339(later).as_deref(), Some("2023-11-14T22:13:20Z"));
        let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        assert_eq!(rfc3339(last).as_deref(), Some("9999-12-31T23:59:59Z"));
        assert_eq!(rfc3339(last + Duration::from_secs(1)), None);
        assert_eq!(rfc3339(UNIX_EPOCH - Duration::from_secs(1)), None);
    }
}
