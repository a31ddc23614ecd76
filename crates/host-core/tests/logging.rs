//! The application's own subscriber is never replaced; lifecycle lines go to
//! `host::lifetime`; each service's calls run in a span named after it.
//! One test only: a global subscriber is process-wide.

use std::sync::{Arc, Mutex};

use host_core::{
    BackgroundService, Host, LifecycleContext, ServiceContext, ServiceError, async_trait,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Every event as `target: message [span fields]`.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        } else {
            self.0.push_str(&format!("{}={value:?}", field.name()));
        }
    }
}

struct SpanText(String);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut text = Text::default();
        attrs.record(&mut text);
        let span = ctx.span(id).unwrap();
        span.extensions_mut().insert(SpanText(format!(
            "{}{{{}}}",
            attrs.metadata().name(),
            text.0
        )));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        let spans: Vec<String> = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .filter_map(|span| span.extensions().get::<SpanText>().map(|t| t.0.clone()))
                    .collect()
            })
            .unwrap_or_default();
        self.0.lock().unwrap().push(format!(
            "{}: {} [{}]",
            event.metadata().target(),
            text.0,
            spans.join(",")
        ));
    }
}

struct Worker;

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        // Once started: a stop requested during the start would end it
        // before `Application started.` (the start may give `execute` its
        // first poll before it ends).
        ctx.lifetime().started().await;
        tracing::warn!("hello from service");
        ctx.lifetime().stop_application();
        ctx.stopping().await;
        Ok(())
    }
}

/// Logs from hooks it overrides; leaves the others at their defaults.
struct Hooks;

#[async_trait]
impl BackgroundService for Hooks {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }

    async fn starting(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tracing::info!("from the starting hook");
        Ok(())
    }

    async fn after_stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tracing::info!("from after_stop");
        Ok(())
    }
}

#[tokio::test]
async fn the_host_logs_through_the_applications_subscriber() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .unwrap();

    // Installed before `build()`, it sees what is logged before it too.
    tracing::info!("configuring the host");
    // The default subscriber is on, but the application's own one stays.
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .environment_name("Staging")
        .content_root("/srv/app")
        .add_hosted_service_instance(Worker)
        .add_hosted_service_instance(Hooks);
    builder.build().unwrap().run().await.unwrap();

    let lines = capture.0.lock().unwrap().clone();
    let expected = [
        "logging: from the starting hook [service{name=logging::Hooks}]",
        "logging: from after_stop [service{name=logging::Hooks}]",
        "logging: configuring the host []",
        "host::lifetime: Hosting environment: Staging []",
        "host::lifetime: Content root path: /srv/app []",
        "host::lifetime: Application started. []",
        "logging: hello from service [service{name=logging::Worker}]",
        "host::lifetime: Application is shutting down... []",
    ];
    for line in expected {
        assert!(
            lines.contains(&line.to_owned()),
            "missing {line:?} in {lines:#?}"
        );
    }

    // Suppressed: no status lines.
    capture.0.lock().unwrap().clear();
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .configure_host_options(|options| options.suppress_status_messages = true)
        .add_hosted_service_instance(Worker);
    builder.build().unwrap().run().await.unwrap();
    let lines = capture.0.lock().unwrap().clone();
    assert!(
        lines.iter().all(|line| !line.starts_with("host::lifetime")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|line| line.contains("hello from service")));
}
