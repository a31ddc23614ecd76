//! Log capture: while a test host lives, a subscriber that is the default
//! of the thread that built the host writes every line to the test's output
//! and keeps it for assertions.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tracing::Dispatch;
use tracing::dispatcher::DefaultGuard;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

/// The levels a test host logs at unless the test says otherwise: `debug`
/// for the host's own targets (`host::lifetime`, `host::services`), whose
/// lines say what the host did, and `info` for everything else.
pub(crate) fn default_filter() -> Targets {
    // `host::`, not `host`: a target matches by prefix, and `host` would
    // also take in every `host_core::...` and `host_web::...` module.
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("host::", LevelFilter::DEBUG)
}

/// The lines captured so far, shared by the subscriber and the test host.
#[derive(Clone, Default)]
pub(crate) struct CapturedLines(Arc<Mutex<Vec<String>>>);

impl CapturedLines {
    /// Every line so far, in the order logged.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, line: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

impl<'a> MakeWriter<'a> for CapturedLines {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            buffer: Vec::new(),
            lines: self.clone(),
        }
    }
}

/// Collects one formatted event and keeps it as one line when dropped: the
/// formatter may write an event in several pieces.
pub(crate) struct LineWriter {
    buffer: Vec<u8>,
    lines: CapturedLines,
}

impl io::Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buffer);
        // The level is padded to five characters (` INFO`): not part of
        // what a line says.
        self.lines.push(
            text.trim_start_matches(' ')
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        );
    }
}

/// The capturing subscriber, installed as the current thread's default
/// until dropped.
pub(crate) struct LogCapture {
    lines: CapturedLines,
    _installed: Installed,
}

impl LogCapture {
    /// Installs a subscriber filtered by `filter` that writes to the test's
    /// output (shown by `cargo test` for a failing test only) and captures
    /// each line (level, spans, target, message and fields, without colour
    /// or time).
    pub(crate) fn install(filter: Targets) -> Self {
        let lines = CapturedLines::default();
        let output = tracing_subscriber::fmt::layer()
            .without_time()
            .with_ansi(false)
            .with_test_writer();
        let capture = tracing_subscriber::fmt::layer()
            .without_time()
            .with_ansi(false)
            .with_writer(lines.clone());
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(output)
            .with(capture);
        Self {
            lines,
            _installed: Installed::push(Dispatch::new(subscriber)),
        }
    }

    /// Every line captured so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lines()
    }
}

impl fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogCapture")
            .field("lines", &self.lines.0.lock().map(|l| l.len()).unwrap_or(0))
            .finish()
    }
}

thread_local! {
    /// The subscribers test hosts installed on this thread, oldest first.
    /// The guards stay on the thread that made them (a guard dropped on
    /// another thread would reset that thread's default), and they are
    /// dropped newest first whatever order the hosts end in, since each
    /// guard restores the default that was current when it was made.
    static INSTALLED: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// One installed subscriber: its guard, and whether its host has ended.
struct Entry {
    ended: Arc<AtomicBool>,
    guard: DefaultGuard,
}

/// A test host's hold on its subscriber; dropping it ends the hold.
struct Installed {
    ended: Arc<AtomicBool>,
}

impl Installed {
    fn push(dispatch: Dispatch) -> Self {
        let ended = Arc::new(AtomicBool::new(false));
        let guard = tracing::dispatcher::set_default(&dispatch);
        INSTALLED.with(|installed| {
            installed.borrow_mut().push(Entry {
                ended: ended.clone(),
                guard,
            });
        });
        Self { ended }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.ended.store(true, Ordering::Release);
        // The entries of hosts that have ended, from the top of the stack
        // down: an ended host below a live one keeps its entry until the
        // live one ends too. On another thread than the one that installed
        // it, this ends nothing of ours; that thread's next host to end (or
        // the thread's exit) drops the entry.
        let ended: Vec<Entry> = INSTALLED
            .try_with(|installed| {
                let mut installed = installed.borrow_mut();
                let mut ended = Vec::new();
                while installed
                    .last()
                    .is_some_and(|entry| entry.ended.load(Ordering::Acquire))
                {
                    ended.extend(installed.pop());
                }
                ended
            })
            .unwrap_or_default();
        // Newest first, outside the borrow: dropping a subscriber may log.
        for entry in ended {
            drop(entry.guard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture() -> LogCapture {
        LogCapture::install(default_filter())
    }

    #[test]
    fn a_line_keeps_target_message_and_fields() {
        let logs = capture();
        tracing::info!(target: "app::worker", attempt = 3, "working");
        let lines = logs.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("app::worker"), "{lines:?}");
        assert!(lines[0].contains("working"), "{lines:?}");
        assert!(lines[0].contains("attempt=3"), "{lines:?}");
        assert!(lines[0].starts_with("INFO app::worker: "), "{lines:?}");
        assert!(!lines[0].ends_with('\n'), "{lines:?}");
    }

    #[test]
    fn the_host_targets_log_at_debug_and_the_others_at_info() {
        let logs = capture();
        tracing::debug!(target: "host::services", "host debug");
        tracing::debug!(target: "host_core::other", "crate debug");
        tracing::debug!(target: "app", "app debug");
        tracing::info!(target: "app", "app info");
        let lines = logs.lines().join("\n");
        assert!(lines.contains("host debug"), "{lines}");
        assert!(!lines.contains("crate debug"), "{lines}");
        assert!(!lines.contains("app debug"), "{lines}");
        assert!(lines.contains("app info"), "{lines}");
    }

    #[test]
    fn hosts_that_end_out_of_order_leave_the_live_one_capturing() {
        let first = capture();
        let second = capture();
        drop(first);
        tracing::info!("after the first ended");
        assert!(
            second.lines().join("\n").contains("after the first ended"),
            "{:?}",
            second.lines()
        );
        drop(second);
        INSTALLED.with(|installed| assert!(installed.borrow().is_empty()));
    }

    #[test]
    fn a_line_logged_after_the_capture_ended_is_not_kept() {
        let logs = capture();
        let lines = logs.lines.clone();
        drop(logs);
        tracing::info!("too late");
        assert!(lines.lines().is_empty(), "{:?}", lines.lines());
    }

    #[test]
    fn lines_from_another_thread_are_not_captured() {
        let logs = capture();
        std::thread::spawn(|| tracing::info!("elsewhere"))
            .join()
            .unwrap();
        assert!(logs.lines().is_empty(), "{:?}", logs.lines());
    }
}
