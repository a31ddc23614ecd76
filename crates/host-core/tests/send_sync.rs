//! Public types that users share are `Send + Sync`.

use host_core::*;

fn is_send_sync<T: Send + Sync>() {}
fn is_send<T: Send>() {}

#[test]
fn shared_types_are_send_and_sync() {
    is_send_sync::<Host>();
    is_send_sync::<HostBuilder>();
    is_send_sync::<HostError>();
    is_send_sync::<HostOptions>();
    is_send_sync::<HostEnvironment>();
    is_send_sync::<ApplicationLifetime>();
    is_send_sync::<ServiceContext>();
    is_send_sync::<LifecycleContext>();
    is_send_sync::<ServiceStates>();
    is_send_sync::<ServiceStatus>();
    is_send_sync::<ServiceState>();
    is_send_sync::<ServiceFailure>();
    is_send_sync::<LoggingOptions>();
    is_send_sync::<LogLevel>();
    is_send_sync::<LogFormat>();
    is_send_sync::<std::sync::Arc<dyn HostedService>>();
    is_send_sync::<std::sync::Arc<dyn BackgroundService>>();
    // Supervision and schedules.
    is_send_sync::<ServiceControl>();
    is_send_sync::<host_core::ClusterStoreHandle>();
    is_send_sync::<host_core::Singleton>();
    is_send_sync::<host_core::ClusterWide>();
    is_send_sync::<ServiceEvent>();
    is_send_sync::<ServiceEvents>();
    is_send_sync::<Restart>();
    is_send_sync::<Unrecoverable>();
    is_send_sync::<ServiceOptions<Worker>>();
    is_send_sync::<Schedule>();
    is_send_sync::<Overlap>();
    is_send_sync::<ScheduleError>();
    is_send_sync::<RunContext>();
    is_send_sync::<Periodic<Tidy>>();
    is_send_sync::<std::sync::Arc<dyn PeriodicService>>();
}

/// A background service, for the options' type.
struct Worker;

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// A periodic service, for `Periodic<T>`.
struct Tidy;

#[async_trait]
impl PeriodicService for Tidy {
    async fn run(&self, _ctx: RunContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

#[test]
fn the_supervision_futures_can_be_spawned() {
    fn future_is_send<F: Future + Send + 'static>(_: F) {}
    let mut builder = Host::builder();
    builder.handle_signals(false).default_logging(false);
    let host = builder.build().unwrap();
    let states = host.service_states();
    let mut events = states.events();
    future_is_send(async move { events.next().await });
    future_is_send(async move { states.wait_for("app::Worker", |_| true).await });
}

#[test]
fn the_lifetime_futures_can_be_spawned() {
    let lifetime = ApplicationLifetime::new();
    fn future_is_send<F: Future + Send + 'static>(_: F) {}
    future_is_send(lifetime.started());
    future_is_send(lifetime.stopping());
    future_is_send(lifetime.stopped());
    future_is_send(lifetime.stop_requested());
    is_send::<Host>();
}
