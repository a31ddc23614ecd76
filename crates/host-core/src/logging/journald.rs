//! systemd's journal: whether standard error goes to it, and the event
//! format that gives each line its priority.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Set by systemd to `DEV:INODE` of the stream it connects to the journal.
const JOURNAL_STREAM: &str = "JOURNAL_STREAM";

/// Whether standard error is connected to systemd's journal.
pub(crate) fn stderr_is_journal() -> bool {
    let value = std::env::var(JOURNAL_STREAM).ok();
    journal_stream_matches(value.as_deref(), stderr_identity())
}

/// The device and inode of standard error.
#[cfg(target_os = "linux")]
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata("/proc/self/fd/2").ok()?;
    Some((metadata.dev(), metadata.ino()))
}

/// Unknown here: the variable alone decides.
#[cfg(not(target_os = "linux"))]
fn stderr_identity() -> Option<(u64, u64)> {
    None
}

/// Whether `JOURNAL_STREAM` (`value`) names standard error (`stderr`, its
/// device and inode, `None` when they cannot be read). The variable is
/// inherited by children whose stderr was redirected elsewhere, hence the
/// comparison; when stderr cannot be identified, its presence decides.
fn journal_stream_matches(value: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let Some(value) = value.filter(|value| !value.is_empty()) else {
        return false;
    };
    let Some(stderr) = stderr else {
        return true;
    };
    let Some((device, inode)) = value.split_once(':') else {
        return false;
    };
    match (device.parse::<u64>(), inode.parse::<u64>()) {
        (Ok(device), Ok(inode)) => (device, inode) == stderr,
        _ => false,
    }
}

/// The sd-daemon prefix of a level (`sd-daemon(3)`): the journal reads it
/// as the line's priority.
fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// Formats events with `inner`, then prefixes every line with the event's
/// priority: the journal stores each line as its own entry, so a
/// multi-line message would otherwise lose its priority after the first.
#[derive(Debug)]
pub(crate) struct Journald<F> {
    inner: F,
}

impl<F> Journald<F> {
    pub(crate) fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for Journald<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut lines = PrefixLines {
            out: writer,
            prefix: priority(*event.metadata().level()),
            at_line_start: true,
        };
        self.inner.format_event(ctx, Writer::new(&mut lines), event)
    }
}

/// Writes through to `out`, starting every line with `prefix`.
struct PrefixLines<'w> {
    out: Writer<'w>,
    prefix: &'static str,
    at_line_start: bool,
}

impl fmt::Write for PrefixLines<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for piece in text.split_inclusive('\n') {
            if self.at_line_start {
                self.out.write_str(self.prefix)?;
            }
            self.out.write_str(piece)?;
            self.at_line_start = piece.ends_with('\n');
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::LogFormat;
    use super::super::tests::{Buffer, capture};
    use super::*;

    #[test]
    fn journal_stream_must_name_stderr() {
        let stderr = Some((64769, 123456));
        assert!(journal_stream_matches(Some("64769:123456"), stderr));
        assert!(!journal_stream_matches(Some("64769:654321"), stderr));
        assert!(!journal_stream_matches(Some("1:123456"), stderr));
        assert!(!journal_stream_matches(Some("garbage"), stderr));
        assert!(!journal_stream_matches(Some("64769:"), stderr));
        assert!(!journal_stream_matches(Some(""), stderr));
        assert!(!journal_stream_matches(None, stderr));
        // Stderr unidentifiable (not Linux, no /proc): the variable decides.
        assert!(journal_stream_matches(Some("64769:123456"), None));
        assert!(!journal_stream_matches(None, None));
    }

    #[test]
    fn every_line_starts_with_the_priority() {
        let buffer = Buffer::default();
        capture(LogFormat::Journald, "trace", &buffer, || {
            tracing::error!(target: "app", "failed");
            tracing::warn!(target: "app", "careful");
            tracing::info!(target: "app", answer = 42, "started");
            tracing::debug!(target: "app", "detail");
            tracing::trace!(target: "app", "step");
            tracing::error!(target: "app", "first line\nsecond line");
        });
        assert_eq!(
            buffer.text(),
            "<3>app: failed\n\
             <4>app: careful\n\
             <6>app: started answer=42\n\
             <7>app: detail\n\
             <7>app: step\n\
             <3>app: first line\n\
             <3>second line\n"
        );
    }
}
