//! Health: `HealthCheck`s registered through DI, and the live and ready
//! endpoints that report them with every hosted service's state.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use host_core::{ApplicationLifetime, ServiceStates};
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

#[derive(Serialize)]
struct ServiceReport {
    name: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
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
    /// `/health/live`: the process is up and answering.
    pub(crate) fn live() -> Response {
        (
            StatusCode::OK,
            Json(serde_json::json!({ "status": HealthStatus::Healthy })),
        )
            .into_response()
    }

    /// `/health/ready`: started, not stopping, every service and check well.
    pub(crate) async fn ready(&self) -> Response {
        let host = if self.lifetime.is_stop_requested() || self.lifetime.is_stopping() {
            "stopping"
        } else if self.lifetime.is_started() {
            "started"
        } else {
            "starting"
        };
        // One snapshot, so that the body and the status code agree.
        let snapshot = self.states.snapshot();
        let services_healthy = snapshot.iter().all(|status| status.state.is_healthy());
        let services: Vec<ServiceReport> = snapshot
            .into_iter()
            .map(|status| ServiceReport {
                name: status.name.to_string(),
                state: status.state.as_str(),
                error: self
                    .detailed
                    .then(|| status.state.failure().map(|failure| failure.to_string()))
                    .flatten(),
            })
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
