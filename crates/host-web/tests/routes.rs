//! Routes and injection in handlers, over real TCP (reqwest) and in process
//! (`TestClient`): a singleton and a `dyn Trait` service through
//! `Inject<Arc<..>>`, `Options<T>` and `OptionsSnapshot<T>` of a configured
//! section, the host's `ApplicationLifetime`; a service that is not
//! registered answers 500 and a handler that panics answers 500, and the
//! server keeps serving after both.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::Path;
use axum::routing::{get, post};
use host_config::OptionsSnapshot;
use host_core::{ApplicationLifetime, HostBuilder};
use host_di::{Injectable, Options};
use host_web::{Inject, TestClient, WebHostBuilderExt};
use serde::Deserialize;

use common::{bounded, builder, get as http_get, start, stop};

/// A singleton, registered as an instance.
#[derive(Default)]
struct Counter(AtomicU64);

trait Greeter: Send + Sync {
    fn greet(&self, name: &str) -> String;
}

/// A singleton registered as `dyn Greeter`, built by the container.
#[derive(Injectable)]
#[injectable(as = dyn Greeter)]
struct English;

impl Greeter for English {
    fn greet(&self, name: &str) -> String {
        format!("hello, {name}")
    }
}

/// The `greeting` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Greeting {
    text: String,
    times: u32,
}

/// Registered nowhere.
struct NotRegistered;

async fn count(Inject(counter): Inject<Arc<Counter>>) -> String {
    (counter.0.fetch_add(1, Ordering::SeqCst) + 1).to_string()
}

async fn greet(Inject(greeter): Inject<Arc<dyn Greeter>>, Path(name): Path<String>) -> String {
    greeter.greet(&name)
}

async fn options(Inject(greeting): Inject<Options<Greeting>>) -> String {
    format!("{} x{}", greeting.text, greeting.times)
}

async fn snapshot(Inject(greeting): Inject<OptionsSnapshot<Greeting>>) -> String {
    format!("{} x{}", greeting.text, greeting.times)
}

async fn lifetime(Inject(lifetime): Inject<Arc<ApplicationLifetime>>) -> String {
    format!("started={}", lifetime.is_started())
}

async fn stop_the_application(Inject(lifetime): Inject<Arc<ApplicationLifetime>>) -> &'static str {
    lifetime.stop_application();
    "stopping"
}

async fn missing(Inject(_never): Inject<Arc<NotRegistered>>) -> &'static str {
    "unreachable"
}

async fn panics() -> &'static str {
    panic!("the handler broke")
}

#[derive(Debug, serde::Serialize, Deserialize)]
struct Echo {
    word: String,
}

async fn echo(Json(body): Json<Echo>) -> Json<Echo> {
    Json(Echo {
        word: body.word.to_uppercase(),
    })
}

/// The application: its services, its section and its routes.
fn app(args: &[&str]) -> HostBuilder {
    let mut builder = builder(args);
    builder
        .services()
        .add_instance(Arc::new(Counter::default()));
    builder.services().add_singleton::<dyn Greeter, English>();
    builder.configure::<Greeting>("greeting");
    builder.web(|app| {
        app.route("/count", get(count))
            .route("/greet/{name}", get(greet))
            .route("/options", get(options))
            .route("/snapshot", get(snapshot))
    });
    // A second call adds routes to the same application.
    builder.web(|app| {
        app.route("/lifetime", get(lifetime))
            .route("/stop", post(stop_the_application))
            .route("/missing", get(missing))
            .route("/panic", get(panics))
            .route("/echo", post(echo))
    });
    builder
}

const GREETING: [&str; 2] = ["--greeting.text=bonjour", "--greeting.times=3"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_options_and_the_lifetime_are_injected_over_tcp() {
    let (mut host, address) = start(app(&GREETING)).await;

    assert_eq!(http_get(address, "/count").await, (200, "1".into()));
    assert_eq!(
        http_get(address, "/count").await,
        (200, "2".into()),
        "one singleton across requests"
    );
    assert_eq!(
        http_get(address, "/greet/world").await,
        (200, "hello, world".into())
    );
    assert_eq!(
        http_get(address, "/options").await,
        (200, "bonjour x3".into())
    );
    assert_eq!(
        http_get(address, "/snapshot").await,
        (200, "bonjour x3".into())
    );
    assert_eq!(
        http_get(address, "/lifetime").await,
        (200, "started=true".into())
    );
    let echoed = common::client()
        .post(format!("http://{address}/echo"))
        .json(&serde_json::json!({"word": "loud"}))
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    assert_eq!(
        echoed.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"word": "LOUD"})
    );

    stop(&mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_injected_lifetime_is_the_hosts_own() {
    let (mut host, address) = start(app(&GREETING)).await;
    let response = common::client()
        .post(format!("http://{address}/stop"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    bounded(
        "the stop request from the handler",
        host.wait_for_shutdown(),
    )
    .await;
    bounded("the stop", host.stop())
        .await
        .expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_service_and_a_panic_answer_500_and_the_server_keeps_serving() {
    let (mut host, address) = start(app(&GREETING)).await;

    let (status, body) = http_get(address, "/missing").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        !body.contains("NotRegistered"),
        "the container's error stays in the log: {body}"
    );
    assert_eq!(http_get(address, "/count").await, (200, "1".into()));

    let (status, body) = http_get(address, "/panic").await;
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains("the handler broke"), "{body}");
    assert_eq!(http_get(address, "/count").await, (200, "2".into()));

    // Several at once, with panics among them, on fresh connections.
    let mut requests = Vec::new();
    for index in 0..8 {
        let path = if index % 2 == 0 { "/panic" } else { "/count" };
        requests.push(tokio::spawn(http_get(address, path)));
    }
    for (index, request) in requests.into_iter().enumerate() {
        let (status, _) = request.await.unwrap();
        assert_eq!(status, if index % 2 == 0 { 500 } else { 200 });
    }
    assert_eq!(http_get(address, "/count").await, (200, "7".into()));

    assert!(!host.lifetime().is_stop_requested());
    stop(&mut host).await;
}

#[tokio::test]
async fn the_same_through_the_test_client_in_process() {
    let host = app(&GREETING).build().unwrap();
    let client = TestClient::new(&host).unwrap();

    let response = client.get("/count").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "1");
    assert_eq!(client.get("/count").await.text(), "2");
    assert_eq!(client.get("/greet/you").await.text(), "hello, you");
    assert_eq!(client.get("/options").await.text(), "bonjour x3");
    assert_eq!(client.get("/snapshot").await.text(), "bonjour x3");
    // Built, not started.
    assert_eq!(client.get("/lifetime").await.text(), "started=false");
    let echoed = client
        .post_json("/echo", &serde_json::json!({"word": "quiet"}))
        .await;
    assert_eq!(echoed.status(), 200);
    assert_eq!(
        echoed.json::<serde_json::Value>(),
        serde_json::json!({"word": "QUIET"})
    );

    assert_eq!(client.get("/missing").await.status(), 500);
    assert_eq!(client.get("/panic").await.status(), 500);
    assert_eq!(client.get("/count").await.text(), "3");
    assert_eq!(client.get("/nowhere").await.status(), 404);
    // No socket: nothing listens.
    assert!(
        host.services()
            .get::<host_web::ServerAddresses>()
            .unwrap()
            .first()
            .is_none()
    );
}

#[tokio::test]
async fn a_handler_that_injects_outside_host_web_answers_500() {
    // The router served without host-web's layers: no request scope.
    let router: axum::Router = axum::Router::new().route("/count", get(count));
    let response = tower::ServiceExt::oneshot(
        router,
        axum::http::Request::get("/count")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 500);
}
