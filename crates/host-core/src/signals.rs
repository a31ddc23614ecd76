//! Signals: the first starts a graceful stop, a second during the stop ends
//! the process at once with 128 + its number.
//!
//! On Unix a dedicated thread waits for the signals (signal-hook), so they
//! are seen even when every runtime thread is blocked, or the runtime is a
//! current-thread one whose thread is blocked. Elsewhere a task waits for
//! Ctrl+C.

use crate::ApplicationLifetime;
use crate::error::exit_code;

/// The first signal asks the lifetime to stop; a second ends the process.
fn on_signal(lifetime: &ApplicationLifetime, name: &str, number: i32, first: bool) {
    if first {
        // Act before logging: a subscriber that panics must not lose the stop.
        lifetime.stop_application();
        tracing::info!(target: crate::LIFETIME_TARGET,
            "Received {name}; shutting down (send it again to exit at once)");
        return;
    }
    let code = i32::from(exit_code::SIGNAL_BASE) + number;
    let log = std::panic::catch_unwind(|| {
        tracing::error!(target: crate::LIFETIME_TARGET,
            "Received {name} during shutdown; exiting at once with code {code}");
    });
    drop(log);
    std::process::exit(code);
}

#[cfg(unix)]
pub(crate) use unix::Listener;

#[cfg(unix)]
mod unix {
    use signal_hook::consts::signal::{SIGINT, SIGQUIT, SIGTERM};
    use signal_hook::iterator::{Handle, Signals};

    use crate::ApplicationLifetime;

    /// Listens until dropped.
    pub(crate) struct Listener {
        handle: Handle,
    }

    impl Listener {
        /// Installs the handlers (before returning, so no signal is lost)
        /// and starts the thread that acts on them.
        pub(crate) fn start(lifetime: ApplicationLifetime) -> Option<Self> {
            let mut signals = match Signals::new([SIGINT, SIGTERM, SIGQUIT]) {
                Ok(signals) => signals,
                Err(error) => {
                    tracing::warn!(target: crate::LIFETIME_TARGET,
                        "cannot listen for SIGINT, SIGTERM and SIGQUIT: {error}");
                    return None;
                }
            };
            let handle = signals.handle();
            let spawned = std::thread::Builder::new()
                .name("host-signals".into())
                .spawn(move || {
                    for (count, number) in signals.forever().enumerate() {
                        super::on_signal(&lifetime, name(number), number, count == 0);
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(target: crate::LIFETIME_TARGET, "cannot start the signal thread: {error}");
                handle.close();
                return None;
            }
            Some(Self { handle })
        }
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            // Ends the thread's loop and unregisters the handlers.
            self.handle.close();
        }
    }

    fn name(number: i32) -> &'static str {
        match number {
            SIGINT => "SIGINT",
            SIGTERM => "SIGTERM",
            SIGQUIT => "SIGQUIT",
            _ => "a signal",
        }
    }
}

#[cfg(not(unix))]
pub(crate) use other::Listener;

#[cfg(not(unix))]
mod other {
    use tokio::task::JoinHandle;

    use crate::ApplicationLifetime;

    /// Listens for Ctrl+C until dropped.
    pub(crate) struct Listener {
        task: JoinHandle<()>,
    }

    impl Listener {
        pub(crate) fn start(lifetime: ApplicationLifetime) -> Option<Self> {
            let task = tokio::spawn(async move {
                let mut first = true;
                while tokio::signal::ctrl_c().await.is_ok() {
                    super::on_signal(&lifetime, "Ctrl+C", 2, first);
                    first = false;
                }
            });
            Some(Self { task })
        }
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            self.task.abort();
        }
    }
}
