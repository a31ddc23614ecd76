//! Signals: the first starts a graceful stop; the same signal again within
//! [`REPEAT_WINDOW`] is that one request delivered twice and is ignored; any
//! other signal during the stop ends the process at once with 128 + its
//! number. Once the stop has completed (the [`Listener`] is dropped), a
//! signal has its default action again, unless another host is listening.
//! SIGHUP is taken only for a host that notifies systemd (see the `systemd`
//! module): it reloads that host's configuration and never stops it; with
//! no such host listening, SIGHUP has its default action.
//!
//! On Unix one thread per process waits for the signals (signal-hook), so
//! they are seen even when every runtime thread is blocked, or the runtime is
//! a current-thread one whose thread is blocked. signal-hook never removes
//! its low-level handler, so that thread stays for the life of the process
//! and, while no host listens, carries out the default action itself.
//! Elsewhere a task waits for Ctrl+C.

use std::time::{Duration, Instant};

use crate::ApplicationLifetime;
use crate::error::exit_code;

/// How long after the signal that began a stop the same signal is taken for
/// that one request delivered twice, and ignored. A wrapper that forwards one
/// SIGTERM to the whole process group makes it arrive twice, within
/// microseconds; a person pressing Ctrl+C again to cut the stop short takes
/// longer than this.
pub(crate) const REPEAT_WINDOW: Duration = Duration::from_millis(500);

/// A signal, and when it was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Received {
    number: i32,
    at: Instant,
}

impl Received {
    /// Whether `later` is this signal again, within [`REPEAT_WINDOW`].
    fn repeated_by(self, later: Received) -> bool {
        later.number == self.number && later.at.saturating_duration_since(self.at) < REPEAT_WINDOW
    }
}

/// What a host does with a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// The first: stop gracefully.
    Stop,
    /// The first one again, within the window: nothing.
    Repeat,
    /// Another signal during the stop: exit at once.
    Exit,
}

/// One host's signals: the one that began its stop.
#[derive(Debug, Default)]
struct HostSignals {
    first: Option<Received>,
}

impl HostSignals {
    fn receive(&mut self, signal: Received) -> Action {
        match self.first {
            None => {
                self.first = Some(signal);
                Action::Stop
            }
            Some(first) if first.repeated_by(signal) => Action::Repeat,
            Some(_) => Action::Exit,
        }
    }
}

/// Carries out a host's `action` for the signal `name` (number `number`).
fn act(lifetime: &ApplicationLifetime, name: &str, number: i32, action: Action) {
    match action {
        Action::Stop => {
            // Logged first, so that the line cannot be lost to a stop that
            // ends the process before this thread gets to write it; a
            // subscriber that panics must not lose the stop.
            crate::logging::log_guarded(|| {
                tracing::info!(target: crate::LIFETIME_TARGET,
                    "Received {name}; shutting down (send it again to exit at once)");
            });
            lifetime.stop_application();
        }
        Action::Repeat => {
            tracing::debug!(target: crate::LIFETIME_TARGET,
                "Received {name} again within {REPEAT_WINDOW:?} of the first; \
                 taken for the same request (ignored)");
        }
        Action::Exit => {
            let code = i32::from(exit_code::SIGNAL_BASE) + number;
            crate::logging::log_guarded(|| {
                tracing::error!(target: crate::LIFETIME_TARGET,
                    "Received {name} during shutdown; exiting at once with code {code}");
            });
            std::process::exit(code);
        }
    }
}

#[cfg(unix)]
pub(crate) use unix::Listener;

#[cfg(unix)]
mod unix {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    use signal_hook::iterator::{Handle, Signals};

    use super::{Action, HostSignals, Received};
    use crate::ApplicationLifetime;
    use crate::error::exit_code;
    use crate::services::record::lock;
    use crate::systemd::Reloader;

    /// Handled from the first listening host on. SIGHUP is added only when
    /// a host that reloads on it listens: until then it keeps its default
    /// action without any handler.
    const HANDLED: [i32; 3] = [SIGINT, SIGTERM, SIGQUIT];

    /// Every listening host of the process, and what the signal thread
    /// needs once none is left.
    static REGISTRY: Mutex<Registry> = Mutex::new(Registry::new());

    /// A host's registration with the process's signal thread: from its
    /// start until its stop has completed (or it is dropped).
    pub(crate) struct Listener {
        id: u64,
    }

    impl Listener {
        /// Installs the handlers (before returning, so no signal is lost)
        /// and, the first time, starts the thread that acts on them. With
        /// `reload`, SIGHUP is handled too, and reloads.
        pub(crate) fn start(
            lifetime: ApplicationLifetime,
            mut reload: Option<Reloader>,
        ) -> Option<Self> {
            let mut registry = lock(&REGISTRY);
            if registry.handle.is_none() {
                match install() {
                    Ok(handle) => registry.handle = Some(handle),
                    Err(error) => {
                        drop(registry);
                        tracing::warn!(target: crate::LIFETIME_TARGET,
                            "cannot listen for SIGINT, SIGTERM and SIGQUIT: {error}");
                        return None;
                    }
                }
            }
            if reload.is_some()
                && !registry.hangup
                && let Some(handle) = &registry.handle
            {
                match handle.add_signal(SIGHUP) {
                    Ok(()) => registry.hangup = true,
                    Err(error) => {
                        tracing::warn!(target: crate::LIFETIME_TARGET,
                            "cannot listen for SIGHUP; the configuration is not reloaded on it: {error}");
                        reload = None;
                    }
                }
            }
            Some(Self {
                id: registry.add(lifetime, reload),
            })
        }
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            lock(&REGISTRY).remove(self.id);
        }
    }

    /// Registers the handlers and starts the thread that reads them, for
    /// the rest of the process; returns the handle that adds SIGHUP.
    fn install() -> std::io::Result<Handle> {
        let mut signals = Signals::new(HANDLED)?;
        let handle = signals.handle();
        let spawned = std::thread::Builder::new()
            .name("host-signals".into())
            .spawn(move || {
                for number in signals.forever() {
                    let signal = Received {
                        number,
                        at: Instant::now(),
                    };
                    // A panicking log subscriber must not end the thread:
                    // every later signal would be swallowed.
                    let _ = std::panic::catch_unwind(|| dispatch(signal));
                }
            });
        if let Err(error) = spawned {
            // The handlers stay installed even with no action left: give
            // the signals their default action back.
            let always = Arc::new(AtomicBool::new(true));
            for number in HANDLED {
                let _ = signal_hook::flag::register_conditional_default(number, always.clone());
            }
            return Err(error);
        }
        Ok(handle)
    }

    fn dispatch(signal: Received) {
        let name = name(signal.number);
        let outcome = lock(&REGISTRY).receive(signal);
        match outcome {
            Dispatch::Hosts(actions) => {
                for (lifetime, action) in actions {
                    super::act(&lifetime, name, signal.number, action);
                }
            }
            Dispatch::Reload(reloaders) => {
                if reloaders.is_empty() {
                    tracing::info!(target: crate::LIFETIME_TARGET,
                        "Received {name} during shutdown; the configuration is not reloaded");
                }
                for reloader in reloaders {
                    reloader.request();
                }
            }
            Dispatch::Repeat => {
                tracing::debug!(target: crate::LIFETIME_TARGET,
                    "Received {name} again within {:?} of the first, after the stop; \
                     taken for the same request (ignored)", super::REPEAT_WINDOW);
            }
            Dispatch::Default => {
                // Ends the process as if no handler had been installed.
                let _ = signal_hook::low_level::emulate_default_handler(signal.number);
                std::process::exit(i32::from(exit_code::SIGNAL_BASE) + signal.number);
            }
        }
    }

    /// What the signal thread does with a signal.
    #[derive(Debug)]
    enum Dispatch {
        /// Each listening host acts on it.
        Hosts(Vec<(ApplicationLifetime, Action)>),
        /// SIGHUP, and a host that reloads on it listens: each such host
        /// whose stop has not begun reloads (none during the stop).
        Reload(Vec<Reloader>),
        /// No host listens, and it repeats the signal that began the last
        /// stop, within the window: nothing.
        Repeat,
        /// No host listens: the signal's default action.
        Default,
    }

    #[derive(Debug)]
    struct Entry {
        id: u64,
        lifetime: ApplicationLifetime,
        signals: HostSignals,
        /// Set for a host that reloads on SIGHUP.
        reload: Option<Reloader>,
    }

    #[derive(Debug)]
    struct Registry {
        hosts: Vec<Entry>,
        next_id: u64,
        /// The signal that began the stop of the latest host to stop.
        last_first: Option<Received>,
        /// Set once the handlers are installed and their thread runs.
        handle: Option<Handle>,
        /// Whether SIGHUP has been added (for the rest of the process).
        hangup: bool,
    }

    impl Registry {
        const fn new() -> Self {
            Self {
                hosts: Vec::new(),
                next_id: 0,
                last_first: None,
                handle: None,
                hangup: false,
            }
        }

        fn add(&mut self, lifetime: ApplicationLifetime, reload: Option<Reloader>) -> u64 {
            let id = self.next_id;
            self.next_id += 1;
            self.hosts.push(Entry {
                id,
                lifetime,
                signals: HostSignals::default(),
                reload,
            });
            id
        }

        fn remove(&mut self, id: u64) {
            let Some(index) = self.hosts.iter().position(|entry| entry.id == id) else {
                return;
            };
            let entry = self.hosts.swap_remove(index);
            if let Some(first) = entry.signals.first
                && self.last_first.is_none_or(|last| last.at <= first.at)
            {
                self.last_first = Some(first);
            }
        }

        fn receive(&mut self, signal: Received) -> Dispatch {
            if signal.number == SIGHUP {
                return self.hangup();
            }
            if self.hosts.is_empty() {
                return match self.last_first {
                    Some(first) if first.repeated_by(signal) => Dispatch::Repeat,
                    _ => Dispatch::Default,
                };
            }
            Dispatch::Hosts(
                self.hosts
                    .iter_mut()
                    .map(|entry| (entry.lifetime.clone(), entry.signals.receive(signal)))
                    .collect(),
            )
        }

        /// SIGHUP is never a stop: it reloads the hosts that reload on it,
        /// and has its default action when none listens (a terminal's
        /// hang-up ends the process, as without a host).
        fn hangup(&self) -> Dispatch {
            let mut reloaders = self
                .hosts
                .iter()
                .filter_map(|entry| Some((entry.reload.as_ref()?, entry.signals.first)))
                .peekable();
            if reloaders.peek().is_none() {
                return Dispatch::Default;
            }
            Dispatch::Reload(
                reloaders
                    .filter(|(_, first)| first.is_none())
                    .map(|(reloader, _)| reloader.clone())
                    .collect(),
            )
        }
    }

    fn name(number: i32) -> &'static str {
        match number {
            SIGHUP => "SIGHUP",
            SIGINT => "SIGINT",
            SIGTERM => "SIGTERM",
            SIGQUIT => "SIGQUIT",
            _ => "a signal",
        }
    }

    #[cfg(test)]
    mod tests {
        use std::time::Duration;

        use super::*;
        use crate::lifecycle::signals::REPEAT_WINDOW;

        fn at(base: Instant, millis: u64, number: i32) -> Received {
            Received {
                number,
                at: base + Duration::from_millis(millis),
            }
        }

        fn actions(dispatch: Dispatch) -> Vec<Action> {
            match dispatch {
                Dispatch::Hosts(actions) => actions.into_iter().map(|(_, action)| action).collect(),
                other => panic!("expected the hosts to act, got {other:?}"),
            }
        }

        #[test]
        fn before_any_host_and_after_the_last_a_signal_has_its_default_action() {
            let base = Instant::now();
            let mut registry = Registry::new();
            assert!(matches!(
                registry.receive(at(base, 0, SIGTERM)),
                Dispatch::Default
            ));
            let id = registry.add(ApplicationLifetime::new(), None);
            registry.remove(id);
            // Stopped without a signal: no window to honour.
            assert!(matches!(
                registry.receive(at(base, 1, SIGTERM)),
                Dispatch::Default
            ));
        }

        #[test]
        fn during_the_stop_the_same_signal_within_the_window_is_ignored() {
            let base = Instant::now();
            let mut registry = Registry::new();
            let lifetime = ApplicationLifetime::new();
            registry.add(lifetime.clone(), None);
            assert_eq!(
                actions(registry.receive(at(base, 0, SIGTERM))),
                [Action::Stop]
            );
            assert_eq!(
                actions(registry.receive(at(base, 2, SIGTERM))),
                [Action::Repeat]
            );
            let last = u64::try_from(REPEAT_WINDOW.as_millis()).unwrap() - 1;
            assert_eq!(
                actions(registry.receive(at(base, last, SIGTERM))),
                [Action::Repeat]
            );
            // Past the window, or another signal: exit at once.
            assert_eq!(
                actions(registry.receive(at(base, last + 1, SIGTERM))),
                [Action::Exit]
            );
            assert_eq!(
                actions(registry.receive(at(base, 3, SIGINT))),
                [Action::Exit]
            );
        }

        #[test]
        fn after_the_stop_only_a_repeat_within_the_window_is_ignored() {
            let base = Instant::now();
            let mut registry = Registry::new();
            let id = registry.add(ApplicationLifetime::new(), None);
            registry.receive(at(base, 0, SIGTERM));
            registry.remove(id);
            assert!(matches!(
                registry.receive(at(base, 100, SIGTERM)),
                Dispatch::Repeat
            ));
            assert!(matches!(
                registry.receive(at(base, 100, SIGINT)),
                Dispatch::Default
            ));
            assert!(matches!(
                registry.receive(at(base, 500, SIGTERM)),
                Dispatch::Default
            ));
        }

        #[test]
        fn a_host_started_later_stops_gracefully_again() {
            let base = Instant::now();
            let mut registry = Registry::new();
            let first = registry.add(ApplicationLifetime::new(), None);
            registry.receive(at(base, 0, SIGTERM));
            registry.remove(first);

            let lifetime = ApplicationLifetime::new();
            registry.add(lifetime.clone(), None);
            assert_eq!(
                actions(registry.receive(at(base, 900, SIGINT))),
                [Action::Stop]
            );
            assert_eq!(
                actions(registry.receive(at(base, 950, SIGINT))),
                [Action::Repeat]
            );
        }

        #[test]
        fn a_stopped_host_does_not_end_the_process_while_another_listens() {
            let base = Instant::now();
            let mut registry = Registry::new();
            let stopped = registry.add(ApplicationLifetime::new(), None);
            registry.add(ApplicationLifetime::new(), None);
            registry.remove(stopped);
            assert_eq!(
                actions(registry.receive(at(base, 0, SIGTERM))),
                [Action::Stop]
            );
        }

        fn reloader() -> Reloader {
            let systemd = crate::systemd::Systemd {
                notifier: crate::systemd::Notifier::new("/nonexistent/notify").unwrap(),
                watchdog: None,
            };
            let configuration = host_config::ConfigurationBuilder::new()
                .appsettings(false)
                .without_env()
                .build("Test", ".")
                .unwrap();
            Reloader::new(std::sync::Arc::new(systemd), configuration)
        }

        fn reloads(dispatch: Dispatch) -> usize {
            match dispatch {
                Dispatch::Reload(reloaders) => reloaders.len(),
                other => panic!("expected a reload, got {other:?}"),
            }
        }

        #[test]
        fn sighup_reloads_the_hosts_that_reload_and_never_stops_one() {
            let base = Instant::now();
            let mut registry = Registry::new();
            // No host that reloads: the default action, with or without hosts.
            assert!(matches!(
                registry.receive(at(base, 0, SIGHUP)),
                Dispatch::Default
            ));
            let plain = registry.add(ApplicationLifetime::new(), None);
            assert!(matches!(
                registry.receive(at(base, 1, SIGHUP)),
                Dispatch::Default
            ));
            let reloading = registry.add(ApplicationLifetime::new(), Some(reloader()));
            assert_eq!(reloads(registry.receive(at(base, 2, SIGHUP))), 1);
            assert_eq!(reloads(registry.receive(at(base, 3, SIGHUP))), 1);
            // SIGHUP began no stop: SIGTERM still does, for both hosts.
            assert_eq!(
                actions(registry.receive(at(base, 4, SIGTERM))),
                [Action::Stop, Action::Stop]
            );
            // During the stop: no reload, and no exit either.
            assert_eq!(reloads(registry.receive(at(base, 5, SIGHUP))), 0);
            registry.remove(reloading);
            assert!(matches!(
                registry.receive(at(base, 6, SIGHUP)),
                Dispatch::Default
            ));
            registry.remove(plain);
            // Once stopped, SIGHUP is no repeat of the SIGTERM that stopped it.
            assert!(matches!(
                registry.receive(at(base, 7, SIGHUP)),
                Dispatch::Default
            ));
        }

        #[test]
        fn every_listening_host_sees_the_signal() {
            let base = Instant::now();
            let mut registry = Registry::new();
            registry.add(ApplicationLifetime::new(), None);
            registry.add(ApplicationLifetime::new(), None);
            assert_eq!(
                actions(registry.receive(at(base, 0, SIGINT))),
                [Action::Stop, Action::Stop]
            );
        }
    }
}

#[cfg(not(unix))]
pub(crate) use other::Listener;

#[cfg(not(unix))]
mod other {
    use std::time::Instant;

    use tokio::task::JoinHandle;

    use super::{HostSignals, Received};
    use crate::ApplicationLifetime;

    /// Listens for Ctrl+C until dropped.
    pub(crate) struct Listener {
        task: JoinHandle<()>,
    }

    impl Listener {
        pub(crate) fn start(lifetime: ApplicationLifetime) -> Option<Self> {
            let task = tokio::spawn(async move {
                let mut signals = HostSignals::default();
                while tokio::signal::ctrl_c().await.is_ok() {
                    let action = signals.receive(Received {
                        number: 2,
                        at: Instant::now(),
                    });
                    super::act(&lifetime, "Ctrl+C", 2, action);
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
