//! The embedding path (`Host::run`, `stop`) returns when a service blocks
//! its thread: within the shutdown timeout and a little more, with an error
//! naming the service, on a multi-thread runtime. It never ends the process.
//!
//! The blocking services block until the test releases them, so that each
//! test's runtime can shut down afterwards.

mod common;

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::test_builder;
use futures::future::Either;
use host_core::{
    BackgroundService, HostError, HostedService, LifecycleContext, ServiceContext, ServiceError,
    async_trait,
};

/// A thread blocked on purpose, and its release.
#[derive(Default)]
struct Block {
    entered: AtomicBool,
    released: AtomicBool,
}

impl Block {
    /// Blocks the calling thread until released.
    fn here(&self) {
        self.entered.store(true, Ordering::SeqCst);
        while !self.released.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Its `stop` blocks the thread that polls it: the thread of the stop's own task.
struct StopBlocks(Arc<Block>);

#[async_trait]
impl HostedService for StopBlocks {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.0.here();
        Ok(())
    }
}

/// Its `execute` blocks its worker thread.
struct ExecuteBlocks(Arc<Block>);

#[async_trait]
impl BackgroundService for ExecuteBlocks {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        tokio::task::yield_now().await;
        self.0.here();
        Ok(())
    }
}

/// Runs `host.run()` on a multi-thread runtime (two workers: one may be
/// blocked), with a stop requested once started (and, with
/// `stop_once_blocked`, once the service blocks its thread: a stop requested
/// before `execute` was first polled never runs it); returns its outcome and
/// how long the stop took, then releases the blocked thread.
fn run_blocked(
    stop_once_blocked: bool,
    add: impl FnOnce(&mut host_core::HostBuilder, Arc<Block>),
) -> (HostError, Duration) {
    let block = Arc::new(Block::default());
    let mut builder = test_builder();
    builder.configure_host_options(|options| {
        options.shutdown_timeout = Duration::from_millis(500);
    });
    add(&mut builder, block.clone());
    let host = builder.build().unwrap();
    let lifetime = host.lifetime().clone();
    let stop_requested = Arc::new(std::sync::Mutex::new(None));
    let at = stop_requested.clone();
    let blocked = block.clone();
    host.lifetime().on_started(move || async move {
        // On a thread of its own: the runtime's may be the blocked one.
        std::thread::spawn(move || {
            while stop_once_blocked && !blocked.entered.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            *at.lock().unwrap() = Some(Instant::now());
            lifetime.stop_application();
        });
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        // A generous bound: a hang fails the test instead of blocking it. On
        // a real-time timer thread: tokio's own timers may not fire while a
        // worker is blocked.
        let bound = futures_timer::Delay::new(Duration::from_secs(20));
        match futures::future::select(pin!(host.run()), bound).await {
            Either::Left((outcome, _)) => Ok(outcome),
            Either::Right(_) => Err("host.run() did not return within 20 s"),
        }
    });
    let took = stop_requested.lock().unwrap().unwrap().elapsed();
    block.released.store(true, Ordering::SeqCst);
    drop(runtime);
    let error = outcome
        .expect("host.run() returns although a thread is blocked")
        .expect_err("a blocked service is a shutdown timeout");
    (error, took)
}

#[test]
fn run_returns_when_a_stop_blocks_its_thread_naming_it() {
    let (error, took) = run_blocked(false, |builder, block| {
        builder.add_hosted_service_instance(StopBlocks(block));
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
    let (error, took) = run_blocked(true, |builder, block| {
        builder.add_hosted_service_instance(ExecuteBlocks(block));
    });
    assert!(error.is_shutdown_timeout(), "{error}");
    assert_eq!(
        error.timed_out().collect::<Vec<_>>(),
        ["blocked::ExecuteBlocks"],
        "{error}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
