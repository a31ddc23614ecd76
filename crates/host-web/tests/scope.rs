//! The request scope, over real TCP and through `TestClient`: a scoped
//! service is one instance within a request (injected twice and through
//! `RequestServices`) and another in the next request; it is disposed
//! (async and sync disposal) once the handler has answered, and also when
//! the handler panics; a request that injects
//! nothing creates no scope, and extracting `RequestServices` alone does not
//! create one either.

mod common;

use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use axum::routing::get;
use host_core::HostBuilder;
use host_di::{AsyncDispose, Dispose, Injectable};
use host_web::{Inject, RequestServices, TestClient, WebHostBuilderExt, async_trait};

use common::{InstanceId, Journal, builder, get_json, start, stop};

/// Scoped, disposed asynchronously.
#[derive(Injectable)]
#[injectable(async_dispose)]
struct RequestState {
    journal: Arc<Journal>,
    #[inject(default)]
    id: InstanceId,
}

#[async_trait]
impl AsyncDispose for RequestState {
    async fn dispose(&self) {
        // Really asynchronous: the scope must await it.
        tokio::task::yield_now().await;
        self.journal.record(format!("disposed {}", self.id.0));
    }
}

/// Scoped, disposed synchronously.
#[derive(Injectable)]
#[injectable(dispose)]
struct Connection {
    journal: Arc<Journal>,
    #[inject(default)]
    id: InstanceId,
}

impl Dispose for Connection {
    fn dispose(&self) {
        self.journal.record(format!("closed {}", self.id.0));
    }
}

/// Injects the scoped service twice and resolves it a third time.
async fn twice(
    Inject(first): Inject<Arc<RequestState>>,
    Inject(second): Inject<Arc<RequestState>>,
    services: RequestServices,
) -> Json<serde_json::Value> {
    let third = services.provider().get::<RequestState>().unwrap();
    let id = first.id.0;
    let disposed_yet = first.journal.contains(&format!("disposed {id}"));
    first.journal.record(format!("answered {id}"));
    Json(serde_json::json!({
        "id": id,
        "same": Arc::ptr_eq(&first, &second) && Arc::ptr_eq(&first, &third),
        "disposed_yet": disposed_yet,
    }))
}

async fn connection(Inject(connection): Inject<Arc<Connection>>) -> Json<u64> {
    Json(connection.id.0)
}

async fn connection_then_panic(Inject(connection): Inject<Arc<Connection>>) -> Json<u64> {
    connection
        .journal
        .record(format!("panicking {}", connection.id.0));
    panic!("after resolving a scoped service")
}

async fn state_then_panic(Inject(state): Inject<Arc<RequestState>>) -> Json<u64> {
    state.journal.record(format!("panicking {}", state.id.0));
    panic!("after resolving an async-disposed scoped service")
}

async fn plain() -> &'static str {
    "plain"
}

async fn extracts_only(_services: RequestServices) -> &'static str {
    "extracted"
}

/// Reports in `x-scope-created` whether the request's scope was created by
/// the time the handler answered (it runs inside host-web's scope layer).
async fn observe_scope(request: Request, next: Next) -> Response {
    let services = request
        .extensions()
        .get::<RequestServices>()
        .cloned()
        .expect("host-web gives every request its services");
    let mut response = next.run(request).await;
    let created = format!("{services:?}").contains("scope_created: true");
    response
        .headers_mut()
        .insert("x-scope-created", created.to_string().parse().unwrap());
    response
}

fn app(journal: &Arc<Journal>) -> HostBuilder {
    let mut builder = builder(&[]);
    builder.services().add_instance(journal.clone());
    builder.services().add_scoped_self::<RequestState>();
    builder.services().add_scoped_self::<Connection>();
    builder.web(|app| {
        app.route("/twice", get(twice))
            .route("/connection", get(connection))
            .route("/connection-then-panic", get(connection_then_panic))
            .route("/state-then-panic", get(state_then_panic))
            .route("/plain", get(plain))
            .route("/extracts-only", get(extracts_only))
            .layer(from_fn(observe_scope))
    });
    builder
}

fn id_of(body: &serde_json::Value) -> u64 {
    body["id"].as_u64().expect("an id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_per_request_disposed_after_the_answer() {
    let journal = Arc::new(Journal::default());
    let (mut host, address) = start(app(&journal)).await;

    let (status, first) = get_json(address, "/twice").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["same"], true, "{first}");
    assert_eq!(first["disposed_yet"], false, "{first}");
    let (status, second) = get_json(address, "/twice").await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["same"], true, "{second}");
    assert_ne!(id_of(&first), id_of(&second), "a new instance per request");

    for body in [&first, &second] {
        let id = id_of(body);
        journal.wait_for(&format!("disposed {id}")).await;
        assert!(
            journal.position(&format!("answered {id}"))
                < journal.position(&format!("disposed {id}")),
            "{:?}",
            journal.entries()
        );
    }

    // Concurrent requests: each its own instance, each disposed once.
    let requests: Vec<_> = (0..6)
        .map(|_| tokio::spawn(get_json(address, "/twice")))
        .collect();
    let mut ids = Vec::new();
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["same"], true, "{body}");
        ids.push(id_of(&body));
    }
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    for id in &ids {
        journal.wait_for(&format!("disposed {id}")).await;
    }

    stop(&mut host).await;
    for id in ids {
        let disposals = journal
            .entries()
            .iter()
            .filter(|entry| **entry == format!("disposed {id}"))
            .count();
        assert_eq!(disposals, 1, "{:?}", journal.entries());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_disposal_runs_after_the_answer_and_after_a_panic() {
    let journal = Arc::new(Journal::default());
    let (mut host, address) = start(app(&journal)).await;

    let (status, id) = get_json(address, "/connection").await;
    assert_eq!(status, 200);
    let id = id.as_u64().unwrap();
    journal.wait_for(&format!("closed {id}")).await;

    let (status, _) = common::get(address, "/connection-then-panic").await;
    assert_eq!(status, 500);
    let panicked = journal
        .entries()
        .iter()
        .find_map(|entry| entry.strip_prefix("panicking ").map(str::to_owned))
        .expect("the handler ran");
    journal.wait_for(&format!("closed {panicked}")).await;

    stop(&mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_disposal_runs_after_a_panic() {
    let journal = Arc::new(Journal::default());
    let (mut host, address) = start(app(&journal)).await;
    let (status, _) = common::get(address, "/state-then-panic").await;
    assert_eq!(status, 500);
    let panicked = journal
        .entries()
        .iter()
        .find_map(|entry| entry.strip_prefix("panicking ").map(str::to_owned))
        .expect("the handler ran");
    // The scope is closed before the 500 is answered.
    assert!(
        journal.contains(&format!("disposed {panicked}")),
        "{:?}",
        journal.entries()
    );
    // And the server serves on.
    assert_eq!(get_json(address, "/twice").await.0, 200);
    stop(&mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_injects_nothing_creates_no_scope() {
    let journal = Arc::new(Journal::default());
    let (mut host, address) = start(app(&journal)).await;
    let client = common::client();
    let scope_created = |path: &'static str| {
        let client = client.clone();
        async move {
            let response = client
                .get(format!("http://{address}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            response.headers()["x-scope-created"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(scope_created("/plain").await, "false");
    assert_eq!(scope_created("/extracts-only").await, "false");
    // The observation can say yes.
    assert_eq!(scope_created("/connection").await, "true");
    assert_eq!(scope_created("/twice").await, "true");
    stop(&mut host).await;
}

#[tokio::test]
async fn the_test_client_has_the_same_scopes() {
    let journal = Arc::new(Journal::default());
    let host = app(&journal).build().unwrap();
    let client = TestClient::new(&host).unwrap();

    let first: serde_json::Value = client.get("/twice").await.json();
    let second: serde_json::Value = client.get("/twice").await.json();
    assert_eq!(first["same"], true, "{first}");
    assert_eq!(second["same"], true, "{second}");
    assert_ne!(id_of(&first), id_of(&second));
    // In process, the scope is closed before the response is returned.
    assert!(journal.contains(&format!("disposed {}", id_of(&first))));
    assert!(journal.contains(&format!("disposed {}", id_of(&second))));

    let plain = client.get("/plain").await;
    assert_eq!(plain.headers()["x-scope-created"], "false");
    let injected = client.get("/connection").await;
    assert_eq!(injected.headers()["x-scope-created"], "true");
}
