//! What the services of a fault run saw of their own calls: each call
//! counted by how it ended, each run of `execute` (or of a periodic job)
//! with when it began and ended, and every call the host abandoned once its
//! stop had begun. The checks compare this with what the host reported.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use host_core::{ApplicationLifetime, ServiceError};
use tokio::time::Instant;

/// A call of a service that the host makes, hooks included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Starting,
    Start,
    Started,
    Stopping,
    Stop,
    Stopped,
    BeforeStart,
    AfterStop,
}

impl Call {
    /// Every call, in the order of `Entry::calls`.
    const ALL: [Call; 8] = [
        Call::Starting,
        Call::Start,
        Call::Started,
        Call::Stopping,
        Call::Stop,
        Call::Stopped,
        Call::BeforeStart,
        Call::AfterStop,
    ];

    /// Whether the host makes it while stopping: abandoning it then is a
    /// shutdown timeout.
    pub(crate) fn at_stop(self) -> bool {
        matches!(
            self,
            Call::Stopping | Call::Stop | Call::Stopped | Call::AfterStop
        )
    }
}

/// How often one call was made, and how those calls ended.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Count {
    pub(crate) entered: u32,
    pub(crate) ok: u32,
    /// Returned an error or panicked.
    pub(crate) failed: u32,
    /// Dropped before it returned: abandoned by the host.
    pub(crate) dropped: u32,
}

impl Count {
    /// Calls made that have not ended.
    pub(crate) fn in_flight(&self) -> u32 {
        self.entered - self.ok - self.failed - self.dropped
    }
}

/// One run of a worker's `execute` or of a job's `run`: when and how it
/// ended, once it has.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) ended: Option<(Instant, End)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Ok,
    /// Returned an error or panicked.
    Failed,
    /// Dropped before it returned: aborted or interrupted by the host.
    Dropped,
}

/// What one service saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    calls: [Count; Call::ALL.len()],
    pub(crate) runs: Vec<Run>,
    /// Some run reported ready.
    pub(crate) readied: bool,
    /// A run saw its token fire for the host's stop: the service's `stop`
    /// was made.
    pub(crate) told_to_stop: bool,
    /// What the host abandoned once its stop had begun.
    pub(crate) abandoned: Vec<String>,
    /// Broken promises seen as they happened.
    pub(crate) violations: Vec<String>,
    /// The runs (by index) that began as restarts once the host's stop had
    /// been requested.
    pub(crate) late_restarts: Vec<usize>,
    /// The runs (by index) that began after the host had stopped.
    pub(crate) runs_after_the_end: Vec<usize>,
}

impl Entry {
    /// How often `call` was made, and how those calls ended.
    pub(crate) fn count(&self, call: Call) -> Count {
        self.calls[Call::ALL.iter().position(|c| *c == call).unwrap_or(0)]
    }

    /// The count of `call`, to note a call.
    fn count_mut(&mut self, call: Call) -> &mut Count {
        &mut self.calls[Call::ALL.iter().position(|c| *c == call).unwrap_or(0)]
    }

    /// The calls and runs made that have not ended.
    pub(crate) fn in_flight(&self) -> Vec<String> {
        let mut open: Vec<String> = Call::ALL
            .iter()
            .filter(|call| self.count(**call).in_flight() > 0)
            .map(|call| format!("{call:?}"))
            .collect();
        open.extend(
            self.runs
                .iter()
                .enumerate()
                .filter(|(_, run)| run.ended.is_none())
                .map(|(index, _)| format!("run {}", index + 1)),
        );
        open
    }
}

/// Every service's entry, and where the host is in its life as the test
/// sees it.
#[derive(Debug)]
pub(crate) struct Ledger {
    entries: Mutex<Vec<Entry>>,
    /// The test asked the host to stop (or the host's stop began).
    stop_requested: AtomicBool,
    /// The host's `stop` (or failed `start`) has returned.
    over: AtomicBool,
}

impl Ledger {
    /// A ledger for `services` services, all still to be called.
    pub(crate) fn new(services: usize) -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(vec![Entry::default(); services]),
            stop_requested: AtomicBool::new(false),
            over: AtomicBool::new(false),
        })
    }

    /// The entries, even if a holder of the lock panicked (never while
    /// writing one).
    fn entries(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every entry, by service index.
    pub(crate) fn snapshot(&self) -> Vec<Entry> {
        self.entries().clone()
    }

    /// The test is about to ask the host to stop.
    pub(crate) fn stop_requested(&self) {
        self.stop_requested.store(true, Ordering::SeqCst);
    }

    /// The host's stop (or its failed start) has returned: from now on
    /// nothing of it may run.
    pub(crate) fn over(&self) {
        self.over.store(true, Ordering::SeqCst);
    }

    /// Whether the host is stopping, as a service can tell: the test asked,
    /// a failure asked, or the host's stop has reached its stopping event.
    pub(crate) fn stopping(&self, lifetime: &ApplicationLifetime) -> bool {
        self.stop_requested.load(Ordering::SeqCst)
            || lifetime.is_stop_requested()
            || lifetime.is_stopping()
    }

    /// Notes that service `index` entered `call`; the guard notes how it
    /// ended.
    pub(crate) fn enter(
        self: &Arc<Self>,
        index: usize,
        call: Call,
        lifetime: &ApplicationLifetime,
    ) -> Pending {
        let mut entries = self.entries();
        entries[index].count_mut(call).entered += 1;
        if self.over.load(Ordering::SeqCst) {
            entries[index]
                .violations
                .push(format!("{call:?} was called after the host had stopped"));
        }
        Pending {
            ledger: self.clone(),
            index,
            what: What::Call(call),
            lifetime: lifetime.clone(),
            done: false,
        }
    }

    /// Notes that a run of service `index` began. `restart` says whether
    /// it is a restart (a worker's run after its first): none may begin once
    /// the host is stopping.
    pub(crate) fn begin_run(
        self: &Arc<Self>,
        index: usize,
        restart: bool,
        lifetime: &ApplicationLifetime,
    ) -> Pending {
        let mut entries = self.entries();
        let entry = &mut entries[index];
        if self.over.load(Ordering::SeqCst) {
            entry.runs_after_the_end.push(entry.runs.len());
        } else if restart && self.stopping(lifetime) {
            entry.late_restarts.push(entry.runs.len());
        }
        entry.runs.push(Run { ended: None });
        Pending {
            ledger: self.clone(),
            index,
            what: What::Run(entry.runs.len() - 1),
            lifetime: lifetime.clone(),
            done: false,
        }
    }

    /// Notes that a run of service `index` reported ready.
    pub(crate) fn readied(&self, index: usize) {
        self.entries()[index].readied = true;
    }

    /// Notes that a run of service `index` saw its token fire for the
    /// host's stop.
    pub(crate) fn told_to_stop(&self, index: usize) {
        self.entries()[index].told_to_stop = true;
    }

    /// Notes how a call or run ended; a call at the stop or a run dropped
    /// once the host is stopping was abandoned by its stop.
    fn ended(&self, pending: &Pending, how: Ending) {
        let stopping = self.stopping(&pending.lifetime);
        let mut entries = self.entries();
        let entry = &mut entries[pending.index];
        match pending.what {
            What::Call(call) => {
                let count = entry.count_mut(call);
                match how {
                    Ending::Ok => count.ok += 1,
                    Ending::Failed => count.failed += 1,
                    Ending::Dropped => count.dropped += 1,
                }
                if how == Ending::Dropped && call.at_stop() && stopping {
                    entry.abandoned.push(format!("{call:?}"));
                }
            }
            What::Run(run) => {
                let end = match how {
                    Ending::Ok => End::Ok,
                    Ending::Failed => End::Failed,
                    Ending::Dropped => End::Dropped,
                };
                entry.runs[run].ended = Some((Instant::now(), end));
                if how == Ending::Dropped && stopping {
                    entry.abandoned.push(format!("run {}", run + 1));
                }
            }
        }
    }
}

/// How a call or run ended, as its guard saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Ok,
    Failed,
    Dropped,
}

/// What a guard watches.
#[derive(Debug, Clone, Copy)]
enum What {
    Call(Call),
    /// The index of the run.
    Run(usize),
}

/// A call or run in progress; notes how it ended: returned (through
/// [`finish`](Self::finish)), panicked, or dropped by the host.
#[derive(Debug)]
pub(crate) struct Pending {
    ledger: Arc<Ledger>,
    index: usize,
    what: What,
    lifetime: ApplicationLifetime,
    done: bool,
}

impl Pending {
    /// Notes what the call returns, and returns it.
    pub(crate) fn finish(mut self, result: Result<(), ServiceError>) -> Result<(), ServiceError> {
        self.done = true;
        let how = if result.is_ok() {
            Ending::Ok
        } else {
            Ending::Failed
        };
        self.ledger.ended(&self, how);
        result
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Unwinding: the service panicked (on purpose), which the host
        // catches as a failure.
        let how = if std::thread::panicking() {
            Ending::Failed
        } else {
            Ending::Dropped
        };
        self.ledger.ended(self, how);
    }
}
