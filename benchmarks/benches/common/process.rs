//! The contenders of a whole-process run that `process.rs` and
//! `configuration.rs` share: the bare tokio process, and the host's one
//! background service.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use host_core::{BackgroundService, ServiceContext, ServiceError, async_trait};
use tokio_util::sync::CancellationToken;

/// How long an idle task sleeps between two looks at nothing.
pub(crate) const IDLE_TICK: Duration = Duration::from_secs(1);

/// The host's one background service: asks the host to stop on its first
/// poll, then idles until told to stop.
pub(crate) struct StopAtOnce;

#[async_trait]
impl BackgroundService for StopAtOnce {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.lifetime().stop_application();
        loop {
            tokio::select! {
                () = ctx.stopping() => return Ok(()),
                () = tokio::time::sleep(IDLE_TICK) => {}
            }
        }
    }
}

/// `#[tokio::main]`, written out: a multi-thread runtime with every driver.
pub(crate) fn tokio_main<F: Future>(main: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(main)
}

/// The process as one would write it with tokio alone.
pub(crate) fn bare_tokio() -> ExitCode {
    tokio_main(async {
        let stop_requested = CancellationToken::new();
        let stopping = CancellationToken::new();
        let task = tokio::spawn({
            let stop_requested = stop_requested.clone();
            let stopping = stopping.clone();
            async move {
                stop_requested.cancel();
                loop {
                    tokio::select! {
                        () = stopping.cancelled() => return,
                        () = tokio::time::sleep(IDLE_TICK) => {}
                    }
                }
            }
        });
        stop_requested.cancelled().await;
        stopping.cancel();
        task.await.expect("the task does not panic");
        ExitCode::SUCCESS
    })
}

/// Runs the bench binary as the child `mode` to its exit, in `directory`
/// (default: this one); returns its wall-clock time, spawn to exit.
pub(crate) fn time_child(mode: &str, directory: Option<&Path>) -> Duration {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let mut command = Command::new(exe);
    command
        .args(["--child", mode])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(directory) = directory {
        command.current_dir(directory);
    }
    let began = Instant::now();
    let status = command.status().expect("the bench can run itself");
    let elapsed = began.elapsed();
    assert!(status.success(), "the `{mode}` child failed: {status}");
    elapsed
}
