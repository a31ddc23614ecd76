//! Queued background work, as .NET's "queued background tasks": an endpoint
//! accepts jobs into a bounded queue and answers at once; a background
//! service processes them one at a time; a graceful stop loses no accepted
//! job.
//!
//! `cargo run --example queue` serves on 127.0.0.1:8080:
//!
//! ```sh
//! curl -i localhost:8080/jobs -H 'content-type: application/json' \
//!      -d '{"payload": "resize photo 42"}'       # 202 {"id":1}
//! curl -i localhost:8080/jobs                     # {"queued":0,"capacity":100}
//! curl -i localhost:8080/health/ready             # the queue's health check: degraded when full
//! for i in $(seq 200); do
//!   curl -s -o /dev/null -w '%{http_code} ' localhost:8080/jobs \
//!        -H 'content-type: application/json' -d "{\"payload\": \"job $i\"}"
//! done                                            # 202s, then 429s once the queue is full
//! ```
//!
//! | route | answer |
//! |---|---|
//! | `POST /jobs` | `{"payload": "..."}`: 202 `{"id": N}`, ids unique and increasing; 429 with `Retry-After: 1` when the queue is full; 503 once the stop has begun |
//! | `GET /jobs` | `{"queued": N, "capacity": C}` |
//! | `GET /health/live`, `GET /health/ready` | host-web's health endpoints, with the queue's check |
//!
//! **A full queue answers 429 Too Many Requests at once, with
//! `Retry-After: 1`; it does not wait for room.** A handler that waited would
//! hold its connection and a server task while the client's own timeout runs,
//! hide the overload from the client, and keep the server's drain waiting at
//! shutdown; the 429 pushes back where the client can decide (retry later,
//! slow down, give up), as a bounded queue is meant to.
//!
//! The processor logs `processed job id=N` for each job. On Ctrl+C or
//! SIGTERM:
//!
//! 1. the web server stops first (host-web is the first service stopped):
//!    it stops accepting and finishes the requests in flight, so no job
//!    arrives after it;
//! 2. the processor closes the queue (were the server still serving, as
//!    under `host.services_stop_concurrently = true`, a late `POST /jobs`
//!    would get 503, never a 202 for a job nobody reads), finishes the job
//!    in hand and works through the queued ones within
//!    `queue.drain_timeout`;
//! 3. when the drain's time is up it logs `unprocessed job id=N` for the job
//!    in hand and every job still queued, then returns.
//!
//! Every accepted id is logged exactly once, processed or unprocessed. Keep
//! `queue.drain_timeout` below `host.shutdown_timeout` (30 s by default):
//! past the host's timeout the processor would be aborted before it could
//! report what it left.
//!
//! The `queue` section, with its defaults (override on the command line,
//! `cargo run --example queue -- --queue.capacity=5 --queue.work_time=1s`,
//! with `APP_QUEUE__CAPACITY=5`, or in `appsettings.toml`):
//!
//! ```toml
//! [queue]
//! capacity = 100          # jobs waiting at most; more are refused with 429
//! work_time = "100ms"     # the simulated work of one job
//! drain_timeout = "5s"    # how long the stop may spend on what is queued
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use host::prelude::*;
use host::web::axum::extract::rejection::JsonRejection;
use host::web::axum::http::header::RETRY_AFTER;
use host::web::axum::http::{HeaderValue, StatusCode};
use host::web::axum::response::{IntoResponse, Response};
use host::web::axum::routing::post;
use host::web::axum::{Json, Router};
use host::web::{HealthCheck, HealthCheckResult};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{self, error::TrySendError};

/// The `queue` configuration section.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct QueueOptions {
    /// How many jobs may wait; more are refused with 429.
    capacity: usize,
    /// The simulated work of one job.
    #[serde(with = "host::config::duration")]
    work_time: Duration,
    /// How long the stop may spend on the queued jobs.
    #[serde(with = "host::config::duration")]
    drain_timeout: Duration,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            capacity: 100,
            work_time: Duration::from_millis(100),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

fn check(options: &QueueOptions) -> Result<(), ValidationError> {
    if options.capacity == 0 {
        return Err(ValidationError::key("capacity", "must be at least 1"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The queue.

/// A job as queued.
#[derive(Debug)]
struct Job {
    id: u64,
    payload: String,
}

/// Why a job was not queued.
#[derive(Debug)]
enum EnqueueError {
    /// The queue is at its capacity.
    Full,
    /// The processor has closed the queue: the host is stopping.
    Closed,
}

/// The bounded queue between the endpoint and the processor, as .NET's
/// `IBackgroundTaskQueue`: a singleton holding both ends of a channel.
#[derive(Debug)]
struct JobQueue {
    sender: mpsc::Sender<Job>,
    /// Taken by the processor when it starts.
    receiver: Mutex<Option<mpsc::Receiver<Job>>>,
    last_id: AtomicU64,
}

impl JobQueue {
    fn new(capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity);
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            last_id: AtomicU64::new(0),
        }
    }

    /// Queues a job without waiting; returns its id. A slot is reserved
    /// before the id is taken, so a refused job uses no id.
    fn enqueue(&self, payload: String) -> Result<u64, EnqueueError> {
        let permit = self.sender.try_reserve().map_err(|error| match error {
            TrySendError::Full(()) => EnqueueError::Full,
            TrySendError::Closed(()) => EnqueueError::Closed,
        })?;
        let id = self.last_id.fetch_add(1, Ordering::Relaxed) + 1;
        permit.send(Job { id, payload });
        Ok(id)
    }

    /// The receiving end, for the one processor.
    fn take_receiver(&self) -> Option<mpsc::Receiver<Job>> {
        self.receiver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn capacity(&self) -> usize {
        self.sender.max_capacity()
    }

    fn queued(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

/// The queue's health check: degraded (still ready) while it is full.
#[derive(Injectable)]
struct QueueHealth {
    queue: Arc<JobQueue>,
}

#[async_trait]
impl HealthCheck for QueueHealth {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "queue".into()
    }

    async fn check(&self) -> HealthCheckResult {
        let (queued, capacity) = (self.queue.queued(), self.queue.capacity());
        if queued < capacity {
            HealthCheckResult::healthy()
        } else {
            HealthCheckResult::degraded(format!("the queue is full ({queued} jobs)"))
        }
    }
}

// ---------------------------------------------------------------------------
// The processor.

/// Processes the queued jobs one at a time; at the stop, drains the queue
/// within `queue.drain_timeout` and reports every job it could not process.
#[derive(Injectable)]
struct JobProcessor {
    queue: Arc<JobQueue>,
    options: Options<QueueOptions>,
}

impl JobProcessor {
    /// The stop has begun: closes the queue, so that no job can be queued
    /// any more; those queued are still received, then `recv` answers `None`.
    fn begin_drain(&self, jobs: &mut mpsc::Receiver<Job>) -> bool {
        jobs.close();
        tracing::info!(queued = jobs.len(), drain_timeout = ?self.options.drain_timeout,
            "stopping: draining the queue");
        true
    }

    /// The job's work, simulated.
    async fn work(&self, _job: &Job) {
        tokio::time::sleep(self.options.work_time).await;
    }
}

#[async_trait]
impl BackgroundService for JobProcessor {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let Some(mut jobs) = self.queue.take_receiver() else {
            anyhow::bail!("the job queue has a processor already");
        };
        let stopping = ctx.stopping_token();
        // Pending until the stop begins, then for `drain_timeout` more.
        let drain_ends = async {
            stopping.cancelled().await;
            tokio::time::sleep(self.options.drain_timeout).await;
        };
        tokio::pin!(drain_ends);
        let mut draining = false;
        'jobs: loop {
            let job = tokio::select! {
                biased;
                () = stopping.cancelled(), if !draining => {
                    draining = self.begin_drain(&mut jobs);
                    continue;
                }
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => break, // closed and empty: drained
                },
            };
            let work = self.work(&job);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    biased;
                    () = stopping.cancelled(), if !draining => {
                        // The job in hand goes on, counted in the drain.
                        draining = self.begin_drain(&mut jobs);
                    }
                    () = &mut work => {
                        tracing::info!(id = job.id, payload = ?job.payload, "processed job");
                        continue 'jobs;
                    }
                    () = &mut drain_ends => {
                        tracing::warn!(id = job.id, payload = ?job.payload, "unprocessed job");
                        break 'jobs;
                    }
                }
            }
        }
        // The drain's time is up (or the queue is empty): report what is left.
        jobs.close();
        while let Some(job) = jobs.recv().await {
            tracing::warn!(id = job.id, payload = ?job.payload, "unprocessed job");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The endpoints.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewJob {
    payload: String,
}

#[derive(Serialize)]
struct Accepted {
    id: u64,
}

#[derive(Serialize)]
struct QueueState {
    queued: usize,
    capacity: usize,
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: message.into(),
    };
    (status, Json(body)).into_response()
}

/// `POST /jobs`: 202 with the job's id, 429 when the queue is full.
async fn enqueue(
    Inject(queue): Inject<Arc<JobQueue>>,
    body: Result<Json<NewJob>, JsonRejection>,
) -> Response {
    let Json(job) = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    match queue.enqueue(job.payload) {
        Ok(id) => (StatusCode::ACCEPTED, Json(Accepted { id })).into_response(),
        Err(EnqueueError::Full) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                format!("the queue is full ({} jobs); retry later", queue.capacity()),
            );
            let retry_after = HeaderValue::from_static("1");
            response.headers_mut().insert(RETRY_AFTER, retry_after);
            response
        }
        Err(EnqueueError::Closed) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down; no job is accepted any more",
        ),
    }
}

/// `GET /jobs`: how full the queue is.
async fn state(Inject(queue): Inject<Arc<JobQueue>>) -> Json<QueueState> {
    Json(QueueState {
        queued: queue.queued(),
        capacity: queue.capacity(),
    })
}

fn routes(app: Router) -> Router {
    app.route("/jobs", post(enqueue).get(state))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut builder = Host::builder();
    builder.args(std::env::args());
    builder.configure::<QueueOptions>("queue").validate(check);
    builder
        .services()
        .add_singleton_factory::<JobQueue, _>(|provider| {
            let options = provider.get::<Options<QueueOptions>>()?;
            Ok(Arc::new(JobQueue::new(options.capacity)))
        })
        .depends_on::<Options<QueueOptions>>();
    builder.add_hosted_service::<JobProcessor>();
    builder.add_health_check::<QueueHealth>();
    builder.web(routes);
    builder.run().await
}
