//! Request tracing: `tower-http`'s trace layer is there when its debug
//! events would be seen (or when `web.trace_requests` says so), and absent
//! otherwise, since it costs every request even when nothing is printed.

mod common;

use std::sync::{Arc, Mutex};

use host_web::axum::http::StatusCode;
use host_web::axum::routing::get;
use host_web::{TestClient, WebHostBuilderExt};
use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The targets of the events seen.
#[derive(Clone, Default)]
struct Targets(Arc<Mutex<Vec<String>>>);

impl<S: Subscriber> Layer<S> for Targets {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        self.0
            .lock()
            .unwrap()
            .push(event.metadata().target().to_owned());
    }
}

/// Serves `GET path` once under a subscriber at `level`; the targets seen.
async fn seen_at(level: LevelFilter, args: &[&str], path: &str) -> Vec<String> {
    let targets = Targets::default();
    let subscriber = tracing_subscriber::registry()
        .with(targets.clone())
        .with(level);
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut builder = common::builder(args);
    builder.web(|app| {
        app.route("/hello", get(|| async { "hello" })).route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "failed") }),
        )
    });
    let host = builder.build().expect("a valid host");
    TestClient::new(&host).expect("routes").get(path).await;
    targets.0.lock().unwrap().clone()
}

fn traced(targets: &[String]) -> bool {
    targets
        .iter()
        .any(|target| target.starts_with("tower_http::trace"))
}

#[tokio::test]
async fn requests_are_traced_when_debug_is_on() {
    let seen = seen_at(LevelFilter::DEBUG, &[], "/hello").await;
    assert!(traced(&seen), "{seen:?}");
}

#[tokio::test]
async fn requests_are_not_traced_at_info() {
    let seen = seen_at(LevelFilter::INFO, &[], "/fail").await;
    assert!(!traced(&seen), "{seen:?}");
}

#[tokio::test]
async fn the_configuration_decides_when_it_says() {
    let seen = seen_at(
        LevelFilter::DEBUG,
        &["--web.trace_requests=false"],
        "/hello",
    )
    .await;
    assert!(!traced(&seen), "{seen:?}");
    // Forced on at info, a server error is traced (at error level).
    let seen = seen_at(LevelFilter::INFO, &["--web.trace_requests=true"], "/fail").await;
    assert!(traced(&seen), "{seen:?}");
}
