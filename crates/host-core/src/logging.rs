//! The default tracing subscriber, installed when the application has none.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The tracing target of the host's own lifecycle messages.
pub const LIFETIME_TARGET: &str = "host::lifetime";

/// Installs a `tracing-subscriber` fmt subscriber writing to standard error,
/// filtered by `RUST_LOG` (default `info`), unless a global subscriber is
/// already set: the application's own subscriber always wins.
pub(crate) fn install_default_subscriber() {
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let (filter, invalid) = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) if !directives.trim().is_empty() => match EnvFilter::try_new(&directives) {
            Ok(filter) => (filter, None),
            Err(error) => (EnvFilter::new("info"), Some((directives, error))),
        },
        _ => (EnvFilter::new("info"), None),
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // Reporting a failed write (a closed pipe) would itself write to
        // standard error, and `eprint!` panics when it cannot.
        .log_internal_errors(false)
        .try_init()
        .is_ok();
    if installed && let Some((directives, error)) = invalid {
        tracing::warn!(target: LIFETIME_TARGET,
            "ignoring RUST_LOG={directives:?}: {error}; logging at info");
    }
}
