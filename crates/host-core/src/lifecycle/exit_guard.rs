//! The run-to-exit path's promise that the process ends once the host has
//! stopped, even when the runtime cannot shut down.
//!
//! `#[tokio::main]` drops its runtime when `main`'s body returns, and the
//! drop waits for every `spawn_blocking` task: one that never returns (a
//! read of standard input, a loop that ignores the host) keeps the process
//! alive for good, after a stop that succeeded.

use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How long the runtime may take to shut down, counted from the moment it
/// began to (its tasks dropped), before the process is ended.
pub(crate) const EXIT_GRACE: Duration = Duration::from_millis(500);

/// The armed guard's line to its thread: dropping the sender disarms it.
static ARMED: Mutex<Option<mpsc::Sender<()>>> = Mutex::new(None);

/// Arms the guard when called on the process's main thread inside a tokio
/// runtime: when that runtime begins to shut down, a thread of its own gives
/// it [`EXIT_GRACE`], then ends the process with `code`, unless
/// [`disarm`]ed meanwhile. Elsewhere (a test thread, an embedding
/// application's thread) it does nothing: only `main` owns the process.
pub(crate) fn arm_on_main_thread(code: u8) {
    if std::thread::current().name() != Some("main") {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (shutting_down, began) = mpsc::channel::<()>();
    let (disarm, disarmed) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("host-exit".into())
        .spawn(move || {
            // Returns when the sender is dropped: the runtime dropped its task.
            let _ = began.recv();
            if disarmed.recv_timeout(EXIT_GRACE) != Err(mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            crate::logging::log_guarded(|| {
                tracing::warn!(target: crate::LIFETIME_TARGET,
                    "the runtime did not shut down within {EXIT_GRACE:?} after the host stopped \
                     (a spawn_blocking task or a blocked thread still runs); exiting with code {code}");
            });
            std::process::exit(i32::from(code));
        });
    if spawned.is_ok() {
        *ARMED.lock().unwrap_or_else(PoisonError::into_inner) = Some(disarm);
        // Lives as long as the runtime runs tasks; its drop is the signal.
        runtime.spawn(async move {
            let _shutting_down = shutting_down;
            std::future::pending::<()>().await;
        });
    }
}

/// Disarms the guard: the caller has shut the runtime down itself (as
/// `run_blocking` does, without waiting for stray blocking tasks), so what
/// `main` does next is its own business.
pub(crate) fn disarm() {
    ARMED.lock().unwrap_or_else(PoisonError::into_inner).take();
}
