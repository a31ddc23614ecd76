//! A JSON API and a background service in one host, as an ASP.NET Core
//! application with a `BackgroundService`: handlers get their services from
//! the container (`Inject<T>`), options come from the configuration, each
//! request has its own DI scope, and the host starts and stops everything in
//! order.
//!
//! `cargo run --example web` serves on 127.0.0.1:8080 and logs
//! `hello from service` once a second until Ctrl+C, then stops cleanly with
//! exit code 0:
//!
//! ```sh
//! curl -i localhost:8080/todos                    # [] at first
//! curl -i localhost:8080/todos -H 'content-type: application/json' \
//!      -d '{"title": "write the docs"}'           # 201, the created todo, its Location
//! curl -i localhost:8080/todos/1                  # 200, the todo
//! curl -i localhost:8080/todos/42                 # 404 {"error":"todo 42 not found"}
//! curl -i localhost:8080/hello                    # {"message":"Hello, world!","request_id":5}
//! curl -i localhost:8080/health/ready             # 200 with every service's state
//! ```
//!
//! | route | what it shows |
//! |---|---|
//! | `GET /todos` | every todo, from the `dyn TodoStore` singleton |
//! | `POST /todos` | `{"title": "..."}` creates one: 201 with the todo and a `Location`; a bad body is a JSON error (400, 415 or 422) |
//! | `GET /todos/{id}` | one todo; 404 with `{"error": "..."}` when there is none |
//! | `GET /hello` | the greeting of the typed `greeting` options, and the request's id |
//! | `GET /health/live`, `GET /health/ready` | host-web's health endpoints |
//!
//! Every API response carries `x-request-id`: the id of the request's
//! scoped `RequestContext`, one instance per request, shared by everything
//! that injects it while the request runs: the audit line of `POST /todos`,
//! `INFO web: created todo 1 request_id=2`, logs the id of its response.
//!
//! Nothing needs a file; override the defaults on the command line,
//! `cargo run --example web -- --web.urls=127.0.0.1:3000
//! --greeting.message="Hi there" --worker.interval=5s`, with environment
//! variables (`APP_GREETING__MESSAGE="Hi there"`), or in `appsettings.toml`:
//!
//! ```toml
//! [web]
//! urls = "127.0.0.1:3000"
//!
//! [greeting]
//! message = "Hi there"
//!
//! [worker]
//! interval = "5s"
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use host::prelude::*;
use host::web::axum::extract::rejection::{JsonRejection, PathRejection};
use host::web::axum::extract::{Path, Request};
use host::web::axum::http::header::{HeaderName, LOCATION};
use host::web::axum::http::{HeaderValue, StatusCode};
use host::web::axum::middleware::{self, Next};
use host::web::axum::response::{IntoResponse, Response};
use host::web::axum::routing::get;
use host::web::axum::{Json, Router};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Options.

/// The `greeting` configuration section, used by `GET /hello`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct GreetingOptions {
    /// What `/hello` answers.
    message: String,
}

impl Default for GreetingOptions {
    fn default() -> Self {
        Self {
            message: "Hello, world!".to_owned(),
        }
    }
}

/// The `worker` configuration section, as in the worker example.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WorkerOptions {
    /// How often the background service logs.
    #[serde(with = "host::config::duration")]
    interval: Duration,
    /// What it logs.
    message: String,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            message: "hello from service".to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------
// Services.

/// A todo item, as the API shows it.
#[derive(Debug, Clone, Serialize)]
struct Todo {
    id: u64,
    title: String,
    done: bool,
}

/// The body of `POST /todos`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTodo {
    title: String,
    #[serde(default)]
    done: bool,
}

/// Where todos are kept; handlers see only `dyn TodoStore`, so a database
/// could replace the memory without touching them.
trait TodoStore: Send + Sync {
    fn list(&self) -> Vec<Todo>;
    fn get(&self, id: u64) -> Option<Todo>;
    fn add(&self, todo: NewTodo) -> Todo;
}

/// The store the application registers: a singleton, in memory.
#[derive(Injectable)]
#[injectable(as = dyn TodoStore)]
struct InMemoryTodoStore {
    #[inject(default)]
    todos: Mutex<Todos>,
}

#[derive(Default)]
struct Todos {
    last_id: u64,
    items: BTreeMap<u64, Todo>,
}

impl InMemoryTodoStore {
    fn todos(&self) -> std::sync::MutexGuard<'_, Todos> {
        // A panic elsewhere while holding the lock leaves the map intact.
        self.todos.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TodoStore for InMemoryTodoStore {
    fn list(&self) -> Vec<Todo> {
        self.todos().items.values().cloned().collect()
    }

    fn get(&self, id: u64) -> Option<Todo> {
        self.todos().items.get(&id).cloned()
    }

    fn add(&self, todo: NewTodo) -> Todo {
        let mut todos = self.todos();
        todos.last_id += 1;
        let todo = Todo {
            id: todos.last_id,
            title: todo.title,
            done: todo.done,
        };
        todos.items.insert(todo.id, todo.clone());
        todo
    }
}

/// A singleton: hands out request ids.
#[derive(Injectable, Default)]
struct RequestIds(#[inject(default)] AtomicU64);

impl RequestIds {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Scoped: one per request, built by a factory when the request first
/// injects it, and the same instance for everything that injects it until
/// the response is out.
#[derive(Debug)]
struct RequestContext {
    id: u64,
}

/// Scoped as well: the request's audit trail. It injects the request's
/// `RequestContext`, the very instance the handler and the middleware see.
#[derive(Injectable)]
struct Audit {
    request: Arc<RequestContext>,
}

impl Audit {
    fn record(&self, what: &str) {
        tracing::info!(request_id = self.request.id, "{what}");
    }
}

/// The background service beside the API: logs a greeting at the configured
/// interval until the host stops it.
#[derive(Injectable)]
struct Worker {
    options: Options<WorkerOptions>,
}

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let mut every = tokio::time::interval(self.options.interval);
        loop {
            tokio::select! {
                _ = ctx.stopping() => return Ok(()),
                _ = every.tick() => tracing::warn!(
                    thread = ?std::thread::current().id(),
                    "{}", self.options.message
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Handlers.

/// An API error: its status, with `{"error": "..."}` as the body.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// axum's rejections (malformed JSON, a wrong content type, a path that is
/// not a number) answer in the API's JSON form too.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

/// `GET /todos`.
async fn list_todos(Inject(store): Inject<Arc<dyn TodoStore>>) -> Json<Vec<Todo>> {
    Json(store.list())
}

/// `POST /todos`: 201 with the created todo and its `Location`.
async fn create_todo(
    Inject(store): Inject<Arc<dyn TodoStore>>,
    Inject(audit): Inject<Arc<Audit>>,
    body: Result<Json<NewTodo>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(new) = body?;
    if new.title.trim().is_empty() {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "`title` must not be empty".to_owned(),
        });
    }
    let todo = store.add(new);
    audit.record(&format!("created todo {}", todo.id));
    let location = [(LOCATION, format!("/todos/{}", todo.id))];
    Ok((StatusCode::CREATED, location, Json(todo)))
}

/// `GET /todos/{id}`: 404 when there is no such todo.
async fn get_todo(
    Inject(store): Inject<Arc<dyn TodoStore>>,
    id: Result<Path<u64>, PathRejection>,
) -> Result<Json<Todo>, ApiError> {
    let Path(id) = id?;
    store.get(id).map(Json).ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("todo {id} not found"),
    })
}

#[derive(Serialize)]
struct Hello {
    message: String,
    request_id: u64,
}

/// `GET /hello`: typed options, injected.
async fn hello(
    Inject(greeting): Inject<Options<GreetingOptions>>,
    Inject(request): Inject<Arc<RequestContext>>,
) -> Json<Hello> {
    Json(Hello {
        message: greeting.message.clone(),
        request_id: request.id,
    })
}

/// Middleware on every API route: the response carries the id of the
/// request's scoped `RequestContext`.
async fn request_id(
    Inject(context): Inject<Arc<RequestContext>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        HeaderName::from_static("x-request-id"),
        HeaderValue::from(context.id),
    );
    response
}

fn routes(app: Router) -> Router {
    app.route("/todos", get(list_todos).post(create_todo))
        .route("/todos/{id}", get(get_todo))
        .route("/hello", get(hello))
        // Only the routes above: the health endpoints stay scope-free.
        .layer(middleware::from_fn(request_id))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut builder = Host::builder();
    builder.args(std::env::args());
    builder.configure::<GreetingOptions>("greeting");
    builder
        .configure::<WorkerOptions>("worker")
        .validate(|options| match options.interval.is_zero() {
            true => Err(ValidationError::key("interval", "must be longer than zero")),
            false => Ok(()),
        });

    let services = builder.services();
    services.add_singleton::<dyn TodoStore, InMemoryTodoStore>();
    services.add_singleton_self::<RequestIds>();
    services
        .add_scoped_factory::<RequestContext, _>(|provider| {
            let id = provider.get::<RequestIds>()?.next();
            Ok(Arc::new(RequestContext { id }))
        })
        .depends_on::<RequestIds>();
    services.add_scoped_self::<Audit>();

    builder.add_hosted_service::<Worker>();
    builder.web(routes);
    builder.run().await
}
