//! The lifecycle events a test host records, how an expected order is
//! matched against them, and the table a failing assertion prints.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use host_core::{ServiceEvent, ServiceEvents, ServiceState, ServiceStates};
use tokio::task::JoinHandle;

/// Every event since the host was built. Subscribed before the start, and
/// drained both by every read (so that a read sees every event already
/// published, whether or not a task has run since) and by a task woken on
/// every change (so that a long test does not fall behind the stream's
/// buffer).
#[derive(Debug)]
pub(crate) struct EventLog {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    receiver: ServiceEvents,
    seen: Vec<ServiceEvent>,
}

impl EventLog {
    /// A log of every event of `states` from now on.
    pub(crate) fn subscribe(states: &ServiceStates) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                receiver: states.events(),
                seen: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(event) = inner.receiver.try_next() {
            inner.seen.push(event);
        }
        inner
    }

    /// How many events have been published so far.
    pub(crate) fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Every event so far, in order.
    pub(crate) fn all(&self) -> Vec<ServiceEvent> {
        self.lock().seen.clone()
    }

    /// The state entered by the first event of `service` from the
    /// `from`-th on that `wanted` accepts.
    pub(crate) fn first_entered_since(
        &self,
        from: usize,
        service: &str,
        wanted: impl Fn(&ServiceState) -> bool,
    ) -> Option<ServiceState> {
        self.lock()
            .seen
            .iter()
            .skip(from)
            .find(|event| &*event.service == service && wanted(&event.to))
            .map(|event| event.to.clone())
    }

    /// Every event so far as a table, and a note if some were missed.
    pub(crate) fn report(&self) -> String {
        let inner = self.lock();
        let mut report = table(&inner.seen.iter().map(Row::of).collect::<Vec<_>>());
        let missed = inner.receiver.missed();
        if missed > 0 {
            let _ = write!(
                report,
                "\n({missed} events were missed: the recorder fell more than its buffer behind)"
            );
        }
        report
    }

    /// Drains the stream whenever a state changes, until aborted.
    pub(crate) fn spawn_recorder(self: &Arc<Self>, states: &ServiceStates) -> JoinHandle<()> {
        let log = self.clone();
        let mut changed = states.subscribe();
        tokio::spawn(async move {
            while changed.changed().await.is_ok() {
                drop(log.lock());
            }
        })
    }
}

/// One line of the table: what an event says, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) service: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) note: String,
}

impl Row {
    fn of(event: &ServiceEvent) -> Self {
        let mut note = Vec::new();
        if let Some(failure) = event.to.failure() {
            note.push(first_line(&failure.cause()).to_owned());
        }
        if let ServiceState::Restarting { attempt, .. } = event.to {
            note.push(format!("attempt {attempt}"));
        }
        if let Some(duration) = event.duration {
            note.push(format!("took {duration:?}"));
        }
        Self {
            service: event.service.to_string(),
            from: event.from.as_str().to_owned(),
            to: event.to.as_str().to_owned(),
            note: note.join("; "),
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The rows as an aligned table with a header, numbered from 1.
pub(crate) fn table(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "  (no events)".to_owned();
    }
    let width = |header: &str, column: fn(&Row) -> &str| {
        rows.iter()
            .map(|row| column(row).len())
            .chain([header.len()])
            .max()
            .unwrap_or(0)
    };
    let number = rows.len().to_string().len().max(1);
    let service = width("service", |row| &row.service);
    let from = width("from", |row| &row.from);
    let to = width("to", |row| &row.to);
    let mut text = format!(
        "  {:>number$}  {:<service$}  {:<from$}  {:<to$}  note",
        "#", "service", "from", "to"
    );
    for (index, row) in rows.iter().enumerate() {
        let _ = write!(
            text,
            "\n  {:>number$}  {:<service$}  {:<from$}  {:<to$}  {}",
            index + 1,
            row.service,
            row.from,
            row.to,
            row.note
        );
    }
    // No padding after the last column.
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where each expected `(service, state entered)` pair was found, in order,
/// as a subsequence of `seen`: the index of each match, up to the first
/// pair that was not found after the ones before it.
pub(crate) fn match_in_order(seen: &[(&str, &str)], expected: &[(&str, &str)]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut next = 0;
    for wanted in expected {
        match seen[next..].iter().position(|pair| pair == wanted) {
            Some(offset) => {
                found.push(next + offset);
                next += offset + 1;
            }
            None => break,
        }
    }
    found
}

/// The message of a failed [`assert_events`](crate::TestHost::assert_events).
pub(crate) fn mismatch(expected: &[(&str, &str)], found: &[usize], report: &str) -> String {
    let missing = found.len();
    let (service, state) = expected[missing];
    let mut message = format!(
        "assert_events: `{service}` entering `{state}` (expected event {} of {}) was not seen",
        missing + 1,
        expected.len()
    );
    if missing > 0 {
        message.push_str(" after the events matched before it");
    }
    if !ServiceState::NAMES.contains(&state) {
        let _ = write!(
            message,
            " (`{state}` is not a state's name; they are: {})",
            ServiceState::NAMES.join(", ")
        );
    }
    message.push_str("\nexpected, in this order (other events may come between):");
    for (index, (service, state)) in expected.iter().enumerate() {
        let outcome = match found.get(index) {
            Some(at) => format!("seen as #{}", at + 1),
            None if index == missing => "NOT SEEN".to_owned(),
            None => "not looked for".to_owned(),
        };
        let _ = write!(message, "\n  {service} -> {state}: {outcome}");
    }
    let _ = write!(message, "\nevents seen:\n{report}");
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEN: [(&str, &str); 5] = [
        ("a", "starting"),
        ("b", "starting"),
        ("a", "running"),
        ("b", "running"),
        ("a", "stopped"),
    ];

    #[test]
    fn pairs_match_as_a_subsequence() {
        assert_eq!(
            match_in_order(&SEEN, &[("a", "starting"), ("a", "running")]),
            [0, 2]
        );
        assert_eq!(
            match_in_order(&SEEN, &[("b", "running"), ("a", "stopped")]),
            [3, 4]
        );
        assert_eq!(match_in_order(&SEEN, &[]), Vec::<usize>::new());
    }

    #[test]
    fn the_order_matters() {
        // `a` ran before `b` did: the second pair is not found after the first.
        assert_eq!(
            match_in_order(&SEEN, &[("b", "running"), ("a", "running")]),
            [3]
        );
    }

    #[test]
    fn an_event_is_matched_once() {
        assert_eq!(
            match_in_order(&SEEN, &[("a", "running"), ("a", "running")]),
            [2]
        );
    }

    #[test]
    fn the_table_is_aligned_and_numbered() {
        let row = |service: &str, from: &str, to: &str, note: &str| Row {
            service: service.into(),
            from: from.into(),
            to: to.into(),
            note: note.into(),
        };
        let text = table(&[
            row("app::Worker", "not_started", "starting", ""),
            row("app::Worker", "starting", "failed", "boom"),
        ]);
        assert_eq!(
            text,
            "  #  service      from         to        note\n\
             \x20 1  app::Worker  not_started  starting\n\
             \x20 2  app::Worker  starting     failed    boom"
        );
        assert_eq!(table(&[]), "  (no events)");
    }

    #[test]
    fn a_mismatch_names_the_missing_pair_and_a_misspelt_state() {
        let expected = [("a", "starting"), ("a", "runing"), ("a", "stopped")];
        let found = match_in_order(&SEEN, &expected);
        let message = mismatch(&expected, &found, "  (table)");
        assert!(
            message.starts_with(
                "assert_events: `a` entering `runing` (expected event 2 of 3) was not seen \
                 after the events matched before it (`runing` is not a state's name"
            ),
            "{message}"
        );
        assert!(message.contains("a -> starting: seen as #1"), "{message}");
        assert!(message.contains("a -> runing: NOT SEEN"), "{message}");
        assert!(
            message.contains("a -> stopped: not looked for"),
            "{message}"
        );
        assert!(message.ends_with("events seen:\n  (table)"), "{message}");
    }

    #[test]
    fn the_state_names_are_those_of_the_states() {
        for state in [
            ServiceState::NotStarted,
            ServiceState::Starting,
            ServiceState::Running,
            ServiceState::Ready,
            ServiceState::Hung,
            ServiceState::Paused,
            ServiceState::Completed,
            ServiceState::Stopping,
            ServiceState::Stopped,
        ] {
            assert!(ServiceState::NAMES.contains(&state.as_str()), "{state}");
        }
    }
}
