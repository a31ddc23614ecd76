//! SIGHUP under `Type=notify-reload`: `RELOADING=1`, the configuration
//! reloaded, `READY=1`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use host_config::{CONFIGURATION_TARGET, Configuration};

use super::Systemd;
use crate::services::record::lock;

/// Reloads a notifying host's configuration when SIGHUP asks for it.
#[derive(Clone)]
pub(crate) struct Reloader(Arc<Inner>);

struct Inner {
    systemd: Arc<Systemd>,
    configuration: Configuration,
    /// Held from `RELOADING=1` to `READY=1`: a second SIGHUP waits, so that
    /// systemd sees each pair whole and in order.
    busy: Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    pub(crate) fn new(systemd: Arc<Systemd>, configuration: Configuration) -> Self {
        Self(Arc::new(Inner {
            systemd,
            configuration,
            busy: Mutex::new(()),
        }))
    }

    /// Reloads on a thread of its own. Not on the signal thread: reading
    /// files and the applications' change callbacks may take long, and that
    /// thread must stay free to act on SIGTERM meanwhile. Not on the host's
    /// runtime: the signal thread has no handle on it (the registry serves
    /// every host of the process, whatever runtime each runs on), and a
    /// runtime whose threads are all busy must not delay what systemd waits
    /// for. A reload is rare; a thread each costs nothing that matters.
    pub(crate) fn request(&self) {
        let reloader = self.clone();
        let spawned = std::thread::Builder::new()
            .name("host-reload".into())
            .spawn(move || reloader.reload());
        if let Err(error) = spawned {
            tracing::error!(target: CONFIGURATION_TARGET,
                "Received SIGHUP, but cannot start the reload ({error}); \
                 the configuration in force stays");
        }
    }

    fn reload(&self) {
        let _busy = lock(&self.0.busy);
        let notifier = &self.0.systemd.notifier;
        notifier.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        // Binding and checks catch their own panics; this is for the rest
        // (a change callback, a provider): READY=1 must follow whatever happens.
        let reloaded = catch_unwind(AssertUnwindSafe(|| self.0.configuration.reload()));
        let status = match reloaded {
            Ok(Ok(sections)) if sections.is_empty() => {
                tracing::info!(target: CONFIGURATION_TARGET,
                    "Received SIGHUP; configuration reloaded, no bound section changed");
                "running; configuration reloaded, nothing changed".to_owned()
            }
            Ok(Ok(sections)) => {
                let sections = sections.join(", ");
                tracing::info!(target: CONFIGURATION_TARGET,
                    "Received SIGHUP; configuration reloaded, changed: {sections}");
                format!("running; configuration reloaded, changed: {sections}")
            }
            Ok(Err(error)) => {
                tracing::error!(target: CONFIGURATION_TARGET,
                    "Received SIGHUP, but the configuration is rejected and the one in force stays: {error}");
                "running; configuration reload failed (see the log), the previous one stays"
                    .to_owned()
            }
            Err(_) => {
                tracing::error!(target: CONFIGURATION_TARGET,
                    "Received SIGHUP, but reloading the configuration panicked; the one in force stays");
                "running; configuration reload panicked, the previous one stays".to_owned()
            }
        };
        notifier.send(&format!("READY=1\nSTATUS={status}"));
    }
}

/// `CLOCK_MONOTONIC` now, in µs: systemd compares it with its own reading
/// to tell this reload from an earlier one.
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let micros = u64::try_from(now.tv_nsec).unwrap_or(0) / 1_000;
    seconds.saturating_mul(1_000_000).saturating_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_clock_is_read_in_microseconds_and_never_goes_back() {
        let first = monotonic_usec();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = monotonic_usec();
        assert!(first > 0);
        assert!(second >= first + 2_000, "{first} then {second}");
    }
}
