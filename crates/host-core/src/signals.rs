//! Signals: the first starts a graceful stop; the same signal again within
//! [`REPEAT_WINDOW`] is that one request delivered twice and is ignored; any
//! other signal during the stop ends the process at once with 128 + its
//! number. Once the stop has completed (the [`Listener`] is dropped), a
//! signal has its default action again, unless another host is listening.
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

    use signal_hook::consts::signal::{SIGINT, SIGQUIT, SIGTERM};
    use signal_hook::iterator::Signals;

    use super::{Action, HostSignals, Received};
    use crate::ApplicationLifetime;
    use crate::error::exit_code;
    use crate::record::lock;

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
        /// and, the first time, starts the thread that acts on them.
        pub(crate) fn start(lifetime: ApplicationLifetime) -> Option<Self> {
            let mut registry = lock(&REGISTRY);
            if !registry.installed {
                if let Err(error) = install() {
                    drop(registry);
                    tracing::warn!(target: crate::LIFETIME_TARGET,
                        "cannot listen for SIGINT, SIGTERM and SIGQUIT: {error}");
                    return None;
                }
                registry.installed = true;
            }
            Some(Self {
                id: registry.add(lifetime),
            })
        }
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            lock(&REGISTRY).remove(self.id);
        }
    }

    /// Registers the handlers and starts the thread that reads them, for
    /// the rest of the process.
    fn install() -> std::io::Result<()> {
        let mut signals = Signals::new(HANDLED)?;
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
        Ok(())
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
    }

    #[derive(Debug)]
    struct Registry {
        hosts: Vec<Entry>,
        next_id: u64,
        /// The signal that began the stop of the latest host to stop.
        last_first: Option<Received>,
        installed: bool,
    }

    impl Registry {
        const fn new() -> Self {
            Self {
                hosts: Vec::new(),
                next_id: 0,
                last_first: None,
                installed: false,
            }
        }

        fn add(&mut self, lifetime: ApplicationLifetime) -> u64 {
            let id = self.next_id;
            self.next_id += 1;
            self.hosts.push(Entry {
                id,
                lifetime,
                signals: HostSignals::default(),
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
    }

    fn name(number: i32) -> &'static str {
        match number {
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
        use crate::signals::REPEAT_WINDOW;

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
            let id = registry.add(ApplicationLifetime::new());
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
            registry.add(lifetime.clone());
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
            let id = registry.add(ApplicationLifetime::new());
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
            let first = registry.add(ApplicationLifetime::new());
            registry.receive(at(base, 0, SIGTERM));
            registry.remove(first);

            let lifetime = ApplicationLifetime::new();
            registry.add(lifetime.clone());
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
            let stopped = registry.add(ApplicationLifetime::new());
            registry.add(ApplicationLifetime::new());
            registry.remove(stopped);
            assert_eq!(
                actions(registry.receive(at(base, 0, SIGTERM))),
                [Action::Stop]
            );
        }

        #[test]
        fn every_listening_host_sees_the_signal() {
            let base = Instant::now();
            let mut registry = Registry::new();
            registry.add(ApplicationLifetime::new());
            registry.add(ApplicationLifetime::new());
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
