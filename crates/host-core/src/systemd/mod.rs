//! systemd's service notifications (`sd_notify(3)`): readiness, stopping,
//! status lines, start and stop extensions, and the watchdog.
//!
//! `build()` reads systemd's environment once: `NOTIFY_SOCKET` (where to
//! send), `WATCHDOG_USEC` and `WATCHDOG_PID` (whether and how often to feed
//! the watchdog). The host notifies only on the run-to-exit path
//! ([`Host::run_until_exit`](crate::Host::run_until_exit), and so
//! [`HostBuilder::run`](crate::HostBuilder::run) and `run_blocking`): that
//! path owns the process, as the unit's main process does. A host started
//! by hand (`start`, `stop`, `Host::run`) is one of possibly several in a
//! process, such as a test host inside a unit, and never speaks for the
//! process. [`HostBuilder::systemd_notify`](crate::HostBuilder::systemd_notify)
//! turns the notifications off altogether.
//!
//! A notifying host that handles signals also takes SIGHUP, on Unix, for
//! `Type=notify-reload` units: `RELOADING=1` with `MONOTONIC_USEC`, the
//! configuration reloaded, then `READY=1` with a `STATUS=` naming the
//! outcome (also after a rejected reload: the host runs on with the
//! configuration it had). No other host takes SIGHUP, so it keeps its
//! default action (terminate) there, and again once that host has stopped.
//!
//! The sender is a few lines over the standard library's
//! `UnixDatagram`, not a dependency: the `sd-notify` crate does not handle
//! an abstract socket (`@name`), which systemd may hand out, and libsystemd
//! is a whole C library for what is one datagram per message. Sending never
//! blocks the runtime (a non-blocking datagram to a local socket); a failed
//! send is logged once, at warn, and never fails the host.

mod notify;
mod progress;
#[cfg(unix)]
mod reload;
mod watchdog;

pub(crate) use notify::Notifier;
pub(crate) use progress::Extender;
#[cfg(unix)]
pub(crate) use reload::Reloader;
pub(crate) use watchdog::Watchdog;

/// A task of the notifier's, aborted when this is dropped.
pub(crate) type Task = tokio_util::task::AbortOnDropHandle<()>;

/// What `build()` found in systemd's environment.
#[derive(Debug)]
pub(crate) struct Systemd {
    pub(crate) notifier: Notifier,
    /// Set when the watchdog is ours to feed.
    pub(crate) watchdog: Option<Watchdog>,
}

impl Systemd {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`; `None`
    /// outside systemd (no `NOTIFY_SOCKET`).
    pub(crate) fn from_env() -> Option<Self> {
        Self::from_vars(|name| std::env::var(name).ok(), std::process::id())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>, pid: u32) -> Option<Self> {
        let notifier = Notifier::new(&var("NOTIFY_SOCKET")?)?;
        let watchdog = Watchdog::from_vars(
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            pid,
        );
        Some(Self { notifier, watchdog })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_without_notify_socket() {
        assert!(Systemd::from_vars(|_| None, 1).is_none());
        let empty = |name: &str| (name == "NOTIFY_SOCKET").then(String::new);
        assert!(Systemd::from_vars(empty, 1).is_none());
    }

    #[test]
    fn the_watchdog_is_read_with_the_socket() {
        let vars = |name: &str| match name {
            "NOTIFY_SOCKET" => Some("/run/notify".to_owned()),
            "WATCHDOG_USEC" => Some("2000000".to_owned()),
            _ => None,
        };
        let systemd = Systemd::from_vars(vars, 7).expect("a socket");
        assert!(systemd.watchdog.is_some());
    }
}
