//! Health: `HealthCheck`s registered through DI, and the live and ready
//! endpoints that report them with every hosted service's state.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use host_core::{ApplicationLifetime, ServiceStates};
use serde::Serialize;

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
/// run by `/health/ready` with a timeout. Register it with
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
#[derive(Clone)]
pub(crate) struct Health {
    pub(crate) lifetime: Arc<ApplicationLifetime>,
    pub(crate) states: Arc<ServiceStates>,
    pub(crate) checks: Vec<Arc<dyn HealthCheck>>,
    pub(crate) timeout: Duration,
    pub(crate) detailed: bool,
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

#[derive(Serialize)]
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
            futures::future::join_all(self.checks.iter().map(|check| self.run(check))).await;
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

    async fn run(&self, check: &Arc<dyn HealthCheck>) -> CheckReport {
        let began = Instant::now();
        let outcome =
            time::within(self.timeout, AssertUnwindSafe(check.check()).catch_unwind()).await;
        let result = match outcome {
            Some(Ok(result)) => result,
            Some(Err(_)) => HealthCheckResult::unhealthy("the check panicked"),
            None => HealthCheckResult::unhealthy(format!(
                "the check timed out after {:?}",
                self.timeout
            )),
        };
        CheckReport {
            name: check.name().into_owned(),
            status: result.status,
            duration_ms: began.elapsed().as_secs_f64() * 1000.0,
            description: result.description.filter(|_| self.detailed),
        }
    }
}
