//! Signals: the first starts a graceful stop, a second during the stop ends
//! the process at once with 128 + its number.

use tokio::task::JoinHandle;

use crate::ApplicationLifetime;
use crate::error::exit_code;

/// Listens for SIGINT, SIGTERM and SIGQUIT (Ctrl+C elsewhere). The handlers
/// are installed before this returns, so no signal between start and the
/// task's first poll is lost.
pub(crate) fn listen(lifetime: ApplicationLifetime) -> JoinHandle<()> {
    let mut signals = Signals::install();
    tokio::spawn(async move {
        let Some(first) = signals.next().await else {
            return;
        };
        // Act before logging: a subscriber that panics must not lose the stop.
        lifetime.stop_application();
        tracing::info!(target: "host::lifetime",
            "Received {}; shutting down (send it again to exit at once)", first.name);
        let Some(second) = signals.next().await else {
            return;
        };
        let code = i32::from(exit_code::SIGNAL_BASE) + second.number;
        let log = std::panic::catch_unwind(|| {
            tracing::error!(target: "host::lifetime",
                "Received {} during shutdown; exiting at once with code {code}", second.name);
        });
        drop(log);
        std::process::exit(code);
    })
}

struct Received {
    name: &'static str,
    number: i32,
}

#[cfg(unix)]
struct Signals {
    streams: Vec<(tokio::signal::unix::Signal, &'static str, i32)>,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            (SignalKind::interrupt(), "SIGINT", 2),
            (SignalKind::terminate(), "SIGTERM", 15),
            (SignalKind::quit(), "SIGQUIT", 3),
        ];
        let streams = kinds
            .into_iter()
            .filter_map(|(kind, name, number)| match signal(kind) {
                Ok(stream) => Some((stream, name, number)),
                Err(error) => {
                    tracing::warn!(target: "host::lifetime", "cannot listen for {name}: {error}");
                    None
                }
            })
            .collect();
        Self { streams }
    }

    async fn next(&mut self) -> Option<Received> {
        if self.streams.is_empty() {
            return None;
        }
        std::future::poll_fn(|cx| {
            for (stream, name, number) in &mut self.streams {
                if stream.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(Some(Received {
                        name,
                        number: *number,
                    }));
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Self {
        Self
    }

    async fn next(&mut self) -> Option<Received> {
        tokio::signal::ctrl_c().await.ok()?;
        Some(Received {
            name: "Ctrl+C",
            number: 2,
        })
    }
}
