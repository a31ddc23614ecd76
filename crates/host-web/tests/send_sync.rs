//! Public types that users share are `Send + Sync`; the futures of the
//! test client and of `Upgrades::track` can be spawned.

use host_web::*;

fn is_send_sync<T: Send + Sync>() {}

#[test]
fn shared_types_are_send_and_sync() {
    is_send_sync::<WebOptions>();
    is_send_sync::<HealthOptions>();
    is_send_sync::<ServerAddresses>();
    is_send_sync::<RequestServices>();
    is_send_sync::<Shutdown>();
    is_send_sync::<Upgrades>();
    is_send_sync::<Inject<std::sync::Arc<u8>>>();
    is_send_sync::<InjectRejection>();
    is_send_sync::<HealthStatus>();
    is_send_sync::<HealthCheckResult>();
    is_send_sync::<std::sync::Arc<dyn HealthCheck>>();
    is_send_sync::<TestClient>();
    is_send_sync::<TestResponse>();
}

#[test]
fn the_test_client_can_be_used_from_a_spawned_task() {
    fn future_is_send<F: Future + Send + 'static>(_: F) {}
    let mut builder = host_core::Host::builder();
    builder.handle_signals(false).default_logging(false);
    builder.web(|app| app);
    let host = builder.build().expect("a valid host");
    let client = TestClient::new(&host).expect("routes");
    future_is_send(async move { client.get("/health/live").await });
}

/// Checked when compiled: a tracked connection can go where axum's
/// `on_upgrade` wants it (`Send + 'static`).
#[allow(dead_code)]
fn a_tracked_connection_can_be_spawned(upgrades: Upgrades) {
    fn future_is_send<F: Future<Output = ()> + Send + 'static>(_: F) {}
    future_is_send(upgrades.track(async {}));
}
