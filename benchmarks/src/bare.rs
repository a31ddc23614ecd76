//! The bare tokio process: `#[tokio::main]`'s runtime, one task that asks
//! the program to stop on its first poll and then idles on its token;
//! `main` sees the request, cancels the task, awaits it and returns. Only
//! tokio and tokio-util, so that the minimal binary links nothing else.
//! Shared by `src/bin/bare-tokio.rs`, `src/bin/host-process.rs` and the
//! benches (through `benches/common/process.rs`).

use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long an idle task sleeps between two looks at nothing.
pub(crate) const IDLE_TICK: Duration = Duration::from_secs(1);

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
