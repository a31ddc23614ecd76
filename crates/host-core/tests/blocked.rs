//! The embedding path (`Host::run`, `stop`) returns when a service blocks
//! its thread: within the shutdown timeout and a little more, with an error
//! naming the service, on a multi-thread runtime. It never ends the process.
//!
//! The blocking services block until the test releases them, so that each
//! test's runtime can shut down afterwards.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::test_builder;
use host_core::{
    BackgroundService, HostError, HostedService, LifecycleContext, ServiceContext, ServiceError,
    async_trait,
};

/// Blocks the calling thread until `released` is set.
fn block_until(released: &AtomicBool) {
    while !released.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Its `stop` blocks the thread that polls it: the thread of the stop's own task.
struct StopBlocks(Arc<AtomicBool>);

#[async_trait]
impl HostedService for StopBlocks {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        block_until(&self.0);
        Ok(())
    }
}

/// Its `execute` blocks its worker thread.
struct ExecuteBlocks(Arc<AtomicBool>);

#[async_trait]
impl BackgroundService for ExecuteBlocks {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        tokio::task::yield_now().await;
        block_until(&self.0);
        Ok(())
    }
}

/// Runs `host.run()` on a multi-thread runtime (two workers: one may be
/// blocked), with a stop requested once started; returns its outcome and
/// how long the stop took, then releases the blocked thread.
fn run_blocked(
    add: impl FnOnce(&mut host_core::HostBuilder, Arc<AtomicBool>),
) -> (HostError, Duration) {
    let released = Arc::new(AtomicBool::new(false));
    let mut builder = test_builder();
    builder.configure_host_options(|options| {
        options.shutdown_timeout = Duration::from_millis(500);
    });
    add(&mut builder, released.clone());
    let host = builder.build().unwrap();
    let lifetime = host.lifetime().clone();
    let stop_requested = Arc::new(std::sync::Mutex::new(None));
    let at = stop_requested.clone();
    host.lifetime().on_started(move || async move {
        *at.lock().unwrap() = Some(Instant::now());
        lifetime.stop_application();
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        // A generous bound: a hang fails the test instead of blocking it.
        tokio::time::timeout(Duration::from_secs(20), host.run()).await
    });
    let took = stop_requested.lock().unwrap().unwrap().elapsed();
    released.store(true, Ordering::SeqCst);
    drop(runtime);
    let error = outcome
        .expect("host.run() returns although a thread is blocked")
        .expect_err("a blocked service is a shutdown timeout");
    (error, took)
}

#[test]
fn run_returns_when_a_stop_blocks_its_thread_naming_it() {
    let (error, took) = run_blocked(|builder, released| {
        builder.add_hosted_service_instance(StopBlocks(released));
    });
    assert!(error.is_shutdown_timeout(), "{error}");
    assert_eq!(error.exit_code(), 3);
    assert_eq!(
        error.timed_out().collect::<Vec<_>>(),
        ["blocked::StopBlocks"],
        "{error}"
    );
    // Within the timeout and the 600 ms past it (a generous bound against hanging).
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn run_returns_when_an_execute_blocks_its_thread_naming_it() {
    let (error, took) = run_blocked(|builder, released| {
        builder.add_hosted_service_instance(ExecuteBlocks(released));
    });
    assert!(error.is_shutdown_timeout(), "{error}");
    assert_eq!(
        error.timed_out().collect::<Vec<_>>(),
        ["blocked::ExecuteBlocks"],
        "{error}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
