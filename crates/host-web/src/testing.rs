//! `TestClient`: call the application's handlers in process, through the
//! same router and layers the server uses, without a socket.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use host_core::Host;
use host_di::DiError;
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::app;
use crate::scope::Drain;

/// Calls a built host's web application in process, for the application's
/// own handler tests: routes, injection, request scopes and health are
/// those of the server, without binding a port.
///
/// ```
/// use axum::routing::get;
/// use host_web::{TestClient, WebHostBuilderExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut builder = host_core::Host::builder();
/// builder.handle_signals(false).default_logging(false);
/// builder.web(|app| app.route("/hello", get(|| async { "hello" })));
/// let host = builder.build()?;
/// let client = TestClient::new(&host)?;
/// let response = client.get("/hello").await;
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.text(), "hello");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TestClient {
    router: Router,
    drain: Drain,
}

impl TestClient {
    /// A client of `host`'s web application (the host need not be started;
    /// readiness says so).
    ///
    /// # Errors
    ///
    /// The application's routes or health checks cannot be resolved.
    pub fn new(host: &Host) -> Result<Self, DiError> {
        let drain = Drain::default();
        Ok(Self {
            router: app::build(host.services(), drain.clone())?,
            drain,
        })
    }

    /// Sends `request` and collects the response.
    pub async fn request(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(request(Method::GET, path, Body::empty(), None))
            .await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &impl Serialize) -> TestResponse {
        let json = serde_json::to_vec(body).expect("a serializable body");
        self.request(request(
            Method::POST,
            path,
            Body::from(json),
            Some("application/json"),
        ))
        .await
    }

    /// Fires the [`Shutdown`](crate::Shutdown) token of the handlers, as
    /// the server's drain does.
    pub fn begin_shutdown(&self) {
        self.drain.draining.cancel();
    }
}

fn request(method: Method, path: &str, body: Body, content_type: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder.body(body).expect("a valid request")
}

/// A response, collected.
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// If the body is not `T` in JSON: a test's failure, with the body.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "the body is not the JSON expected ({error}): {}",
                self.text()
            )
        })
    }
}
