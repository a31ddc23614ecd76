//! A panicking handler answers 500, and the line that logs it names the
//! method and the route (the matched pattern, or the path when no route
//! matched), which is what tells one handler from another.

mod common;

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use host_web::axum::http::StatusCode;
use host_web::axum::routing::{get, post};
use host_web::{TestClient, WebHostBuilderExt};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The messages of host-web's error events (tower-http's trace layer
/// reports the 500 too).
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Errors {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() == tracing::Level::ERROR && metadata.target() == "host::web" {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0.lock().unwrap().push(message.0);
        }
    }
}

async fn no_such_user() -> &'static str {
    panic!("no such user")
}

async fn broken_fallback() -> &'static str {
    panic!("the fallback broke")
}

/// Asks `method path` of an app whose handlers panic; the error lines.
async fn errors_of(post_it: bool, path: &str) -> Vec<String> {
    let errors = Errors::default();
    let subscriber = tracing_subscriber::registry().with(errors.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut builder = common::builder(&[]);
    builder.web(|app| {
        app.route(
            "/users/{id}",
            get(no_such_user).post(|| async {
                let code: u16 = "x".parse().expect("a numeric code");
                code.to_string()
            }),
        )
        .route("/orders", post(|| async { "ordered" }))
        .fallback(broken_fallback)
    });
    let host = builder.build().expect("a valid host");
    let client = TestClient::new(&host).expect("routes");
    let response = if post_it {
        client.post_json(path, &serde_json::json!({})).await
    } else {
        client.get(path).await
    };
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    errors.0.lock().unwrap().clone()
}

#[tokio::test]
async fn the_line_names_the_method_and_the_matched_route() {
    let errors = errors_of(false, "/users/42").await;
    assert_eq!(
        errors,
        ["the handler of GET /users/{id} panicked: no such user"]
    );
    let errors = errors_of(true, "/users/42").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("the handler of POST /users/{id} panicked: a numeric code"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn the_fallback_is_named_by_the_path_asked_for() {
    let errors = errors_of(false, "/nowhere?x=1").await;
    assert_eq!(
        errors,
        ["the handler of GET /nowhere panicked: the fallback broke"]
    );
}
