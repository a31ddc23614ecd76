//! The default tracing subscriber, installed when the application has none:
//! configured by the `logging` section ([`LoggingOptions`]), its levels
//! reloadable, overridden by `RUST_LOG`.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

mod filter;
mod journald;
mod level;
mod options;

pub use level::LogLevel;
pub use options::{LogFormat, LoggingOptions};

/// The tracing target of the host's own lifecycle messages.
pub const LIFETIME_TARGET: &str = "host::lifetime";

/// Logs with `log`, catching a panic of the subscriber: on the paths that
/// must act whatever happens (a signal's stop, a forced exit), a panicking
/// subscriber must not keep the process from doing so.
pub(crate) fn log_guarded(log: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(log));
}

/// The filter layer, reloadable.
type FilterLayer = reload::Layer<EnvFilter, Registry>;

/// What the output layer sits on.
type Filtered = Layered<FilterLayer, Registry>;

/// Installs a `tracing-subscriber` registry writing to standard error in
/// `options.format`, filtered by `RUST_LOG` when it is set and valid,
/// otherwise by `options.level`, unless a global subscriber is already
/// set: the application's own subscriber always wins (then `None`).
pub(crate) fn install_default_subscriber(options: &LoggingOptions) -> Option<LevelHandle> {
    if tracing::dispatcher::has_been_set() {
        return None;
    }
    let rust_log = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let initial = filter::initial(rust_log.as_deref(), options);
    let (subscriber, filter) = assemble(
        initial.filter,
        options.format.resolve(),
        std::io::stderr,
        std::io::stderr().is_terminal(),
    );
    subscriber.try_init().ok()?;
    if let Some((directives, error)) = initial.rejected {
        tracing::warn!(target: LIFETIME_TARGET,
            "ignoring RUST_LOG={directives:?}: {error}; logging at the configured levels ({})",
            options.directives());
    }
    if !initial.from_env {
        warn_unusable(options);
    }
    Some(LevelHandle {
        filter,
        from_env: initial.from_env,
        format: options.format,
    })
}

/// The registry, the reloadable `filter` and the output layer in `format`
/// writing to `writer`; and the filter's reload handle.
fn assemble<W>(
    filter: EnvFilter,
    format: LogFormat,
    writer: W,
    terminal: bool,
) -> (
    impl Subscriber + Send + Sync + 'static,
    reload::Handle<EnvFilter, Registry>,
)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, handle) = reload::Layer::new(filter);
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(output(format, writer, terminal));
    (subscriber, handle)
}

/// The fmt layer of `format` (`Auto` already resolved; read as `Human`).
fn output<W>(format: LogFormat, writer: W, terminal: bool) -> Box<dyn Layer<Filtered> + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        // Reporting a failed write (a closed pipe) would itself write to
        // standard error, and `eprint!` panics when it cannot.
        .log_internal_errors(false);
    match format {
        LogFormat::Json => layer.json().with_ansi(false).boxed(),
        LogFormat::Journald => layer
            .with_ansi(false)
            .event_format(journald::Journald::new(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_level(false)
                    .with_ansi(false),
            ))
            .boxed(),
        // The layer's own default honours `NO_COLOR`; only turn colors off.
        LogFormat::Human | LogFormat::Auto if terminal => layer.boxed(),
        LogFormat::Human | LogFormat::Auto => layer.with_ansi(false).boxed(),
    }
}

/// Warns of each configured target that is not usable (left out of the
/// filter); validation normally rejects them before they get here.
fn warn_unusable(options: &LoggingOptions) {
    for problem in options.problems() {
        tracing::warn!(target: LIFETIME_TARGET, "ignoring logging.{problem}");
    }
}

/// Changes the levels of the installed default subscriber.
#[derive(Clone, Debug)]
pub(crate) struct LevelHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` is in force: configured levels are ignored.
    from_env: bool,
    /// The format installed, to tell when a new one is asked for.
    format: LogFormat,
}

impl LevelHandle {
    /// Replaces the filter with the levels of `options`, live, unless
    /// `RUST_LOG` overrides them. The format cannot change live: the output
    /// layer is fixed at install, so a new format waits for a restart.
    /// Failures are logged, never raised.
    pub(crate) fn apply(&self, options: &LoggingOptions) {
        if options.format != self.format {
            tracing::warn!(target: LIFETIME_TARGET,
                "the log format changes from {:?} to {:?} at the next start, not live",
                self.format, options.format);
        }
        if self.from_env {
            tracing::debug!(target: LIFETIME_TARGET,
                "RUST_LOG is set: ignoring the configured log levels ({})",
                options.directives());
            return;
        }
        warn_unusable(options);
        match self.filter.reload(options.filter()) {
            Ok(()) => tracing::info!(target: LIFETIME_TARGET,
                "log levels are now {}", options.directives()),
            Err(error) => tracing::error!(target: LIFETIME_TARGET,
                "cannot change the log levels to {}: {error}", options.directives()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing::Dispatch;

    use super::*;

    /// A `MakeWriter` into memory.
    #[derive(Clone, Default)]
    pub(crate) struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("not poisoned").clone()).expect("UTF-8")
        }
    }

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    /// The subscriber of `format` writing into `buffer`, and its levels.
    fn handle(
        options: &LoggingOptions,
        format: LogFormat,
        buffer: &Buffer,
    ) -> (Dispatch, LevelHandle) {
        let (subscriber, filter) = assemble(options.filter(), format, buffer.clone(), false);
        let handle = LevelHandle {
            filter,
            from_env: false,
            format,
        };
        (Dispatch::new(subscriber), handle)
    }

    /// Runs `f` with the subscriber of `format`, filtered by `directives`,
    /// as this thread's default (never the global one).
    pub(crate) fn capture(format: LogFormat, directives: &str, buffer: &Buffer, f: impl FnOnce()) {
        let filter = EnvFilter::builder()
            .parse(directives)
            .expect("valid directives");
        let (subscriber, _) = assemble(filter, format, buffer.clone(), false);
        tracing::subscriber::with_default(subscriber, f);
    }

    #[test]
    fn levels_change_live() {
        let buffer = Buffer::default();
        let (dispatch, levels) = handle(&LoggingOptions::default(), LogFormat::Human, &buffer);
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::debug!(target: "app::worker", "hidden before");
            levels.apply(&LoggingOptions {
                level: [("app::worker".into(), LogLevel::Debug)].into(),
                format: LogFormat::Human,
            });
            tracing::debug!(target: "app::worker::job", "shown after");
            tracing::debug!(target: "app::other", "hidden elsewhere");
        });
        let text = buffer.text();
        assert!(!text.contains("hidden"), "{text}");
        assert!(text.contains("shown after"), "{text}");
        assert!(
            text.contains("log levels are now info,app::worker=debug"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "no ANSI off a terminal: {text}");
    }

    #[test]
    fn rust_log_keeps_its_levels() {
        let buffer = Buffer::default();
        let (dispatch, mut levels) = handle(&LoggingOptions::default(), LogFormat::Human, &buffer);
        levels.from_env = true;
        tracing::dispatcher::with_default(&dispatch, || {
            levels.apply(&LoggingOptions {
                level: [("default".into(), LogLevel::Trace)].into(),
                format: LogFormat::Human,
            });
            tracing::debug!(target: "app", "still hidden");
            tracing::info!(target: "app", "still shown");
        });
        let text = buffer.text();
        assert!(!text.contains("hidden"), "{text}");
        assert!(text.contains("still shown"), "{text}");
    }

    #[test]
    fn a_new_format_waits_for_a_restart() {
        let buffer = Buffer::default();
        let (dispatch, levels) = handle(&LoggingOptions::default(), LogFormat::Human, &buffer);
        tracing::dispatcher::with_default(&dispatch, || {
            levels.apply(&LoggingOptions {
                format: LogFormat::Json,
                ..LoggingOptions::default()
            });
        });
        let text = buffer.text();
        assert!(
            text.contains("the log format changes from Human to Json at the next start"),
            "{text}"
        );
        assert!(!text.starts_with('{'), "still human: {text}");
    }

    #[test]
    fn json_is_one_object_per_line() {
        let buffer = Buffer::default();
        capture(LogFormat::Json, "info", &buffer, || {
            tracing::info!(target: "app", answer = 42, "started");
            tracing::warn!(target: "app", "two\nlines");
            tracing::debug!(target: "app", "filtered out");
        });
        let text = buffer.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["target"], "app");
        assert_eq!(lines[0]["fields"]["message"], "started");
        assert_eq!(lines[0]["fields"]["answer"], 42);
        assert_eq!(lines[1]["fields"]["message"], "two\nlines");
    }

    #[test]
    fn human_has_no_priority_prefix() {
        let buffer = Buffer::default();
        capture(LogFormat::Human, "info", &buffer, || {
            tracing::info!(target: "app", "plain");
        });
        let text = buffer.text();
        assert!(text.contains(" INFO app: plain"), "{text}");
        assert!(!text.starts_with('<'), "{text}");
    }
}
