//! The public types can be shared and moved across threads, and the test
//! host can be used from a spawned task.

use host_core::ServiceState;
use host_testing::{TestHost, TestHostBuilder};

fn is_send_sync<T: Send + Sync>() {}

#[test]
fn the_public_types_are_send_and_sync() {
    is_send_sync::<TestHost>();
    is_send_sync::<TestHostBuilder>();
}

#[test]
fn the_waits_and_the_start_can_be_spawned() {
    fn future_is_send<F: Future + Send>(_: F) {}
    let builder = TestHost::builder();
    future_is_send(builder.start());
    let host = TestHost::builder().build().unwrap();
    future_is_send(host.wait_for("app::Worker", ServiceState::is_healthy));
    future_is_send(host.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_host_moved_to_another_thread_ends_cleanly() {
    let host = TestHost::builder().start().await.unwrap();
    tokio::spawn(async move {
        host.assert_logged("Application started.");
        host.stop().await.unwrap();
    })
    .await
    .unwrap();
    // The moved host's subscriber stays this thread's default until a host
    // ends here (a guard must be dropped on its own thread); a new host
    // sees only its own lines all the same.
    tracing::info!("after the move");
    let host = TestHost::builder().start().await.unwrap();
    host.assert_not_logged("after the move");
    host.stop().await.unwrap();
}
