//! Bounding a phase by a deadline (and, during start, by a stop request).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// One deadline shared by every call of a phase (or of several phases), with
/// the token the calls see.
///
/// When the deadline passes, the token fires. A bound with overtime then
/// gives the unfinished calls a short, shared extra time (the stop phases
/// run them all at once in it, so one hanging service cannot starve the
/// others); without overtime, or when the overtime too is over, the bound has
/// ended and each unfinished call gets [`poll_once`]. A stop request ends a
/// start's bound at once.
pub(crate) struct Bound {
    limit: Option<Duration>,
    deadline: Option<Instant>,
    overtime: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    interrupt: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    stop: Option<CancellationToken>,
    token: CancellationToken,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Overtime,
    Expired,
    Interrupted,
}

impl Bound {
    /// A bound that expires `limit` from now (never for `None`, nor for a
    /// limit so long that the deadline is past what an `Instant` can hold,
    /// such as `Duration::MAX`).
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        let deadline = limit.and_then(|limit| Instant::now().checked_add(limit));
        Self {
            limit,
            deadline,
            overtime: None,
            sleep: deadline.map(|deadline| Box::pin(tokio::time::sleep_until(deadline))),
            interrupt: None,
            stop: None,
            token: CancellationToken::new(),
            state: State::Running,
        }
    }

    /// Gives the unfinished calls `overtime` after the deadline.
    pub(crate) fn with_overtime(mut self, overtime: Duration) -> Self {
        self.overtime = Some(overtime);
        self
    }

    /// Also ends the bound when `stop` is cancelled.
    pub(crate) fn interrupted_by(mut self, stop: &CancellationToken) -> Self {
        self.interrupt = Some(Box::pin(stop.clone().cancelled_owned()));
        self.stop = Some(stop.clone());
        self
    }

    pub(crate) fn limit(&self) -> Option<Duration> {
        self.limit
    }

    /// When the deadline passes (before any overtime), if there is one.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The token that calls under this bound see.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    pub(crate) fn is_interrupted(&self) -> bool {
        self.state == State::Interrupted
    }

    /// Whether the deadline has passed (in overtime or after).
    pub(crate) fn past_deadline(&self) -> bool {
        matches!(self.state, State::Overtime | State::Expired)
    }

    /// Whether the bound has ended, noticing a stop request made while no
    /// call was running.
    pub(crate) fn has_ended(&mut self) -> bool {
        if self.state == State::Running
            && self
                .stop
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
        {
            self.end(State::Interrupted);
        }
        matches!(self.state, State::Expired | State::Interrupted)
    }

    /// Ends the bound early, as if a stop had been requested.
    pub(crate) fn cancel(&mut self) {
        self.end(State::Interrupted);
    }

    fn end(&mut self, state: State) {
        if !matches!(self.state, State::Expired | State::Interrupted) {
            self.state = state;
        }
        self.token.cancel();
    }

    /// Polls `call` until it completes (`Some`) or the bound moves on:
    /// the deadline passes, the overtime ends, or a stop is requested
    /// (`None`; the call is left as it is). Returns `None` at once when the
    /// bound has ended.
    pub(crate) async fn run<F: Future>(&mut self, mut call: Pin<&mut F>) -> Option<F::Output> {
        if matches!(self.state, State::Expired | State::Interrupted) {
            return None;
        }
        let sleep = &mut self.sleep;
        let interrupt = &mut self.interrupt;
        let in_overtime = self.state == State::Overtime;
        let outcome = poll_fn(|cx| {
            if let Poll::Ready(output) = call.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            if let Some(sleep) = sleep.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Err(State::Expired));
            }
            if !in_overtime
                && let Some(interrupt) = interrupt.as_mut()
                && interrupt.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Err(State::Interrupted));
            }
            Poll::Pending
        })
        .await;
        match outcome {
            Ok(output) => Some(output),
            Err(State::Expired) => {
                match (self.state, self.overtime) {
                    (State::Running, Some(overtime)) => {
                        self.state = State::Overtime;
                        self.token.cancel();
                        // An overtime past what an `Instant` holds is no end.
                        match Instant::now().checked_add(overtime) {
                            Some(end) => {
                                if let Some(sleep) = self.sleep.as_mut() {
                                    sleep.as_mut().reset(end);
                                }
                            }
                            None => self.sleep = None,
                        }
                    }
                    _ => self.end(State::Expired),
                }
                None
            }
            Err(_) => {
                self.end(State::Interrupted);
                None
            }
        }
    }
}

/// Polls `call` once more: after its token has fired, a call that honours it
/// can still return.
pub(crate) async fn poll_once<F: Future>(mut call: Pin<&mut F>) -> Option<F::Output> {
    poll_fn(|cx| match call.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_that_finishes_in_time_is_done() {
        let mut bound = Bound::new(Some(Duration::from_secs(5)));
        let call = pin!(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            7
        });
        assert_eq!(bound.run(call).await, Some(7));
        assert!(!bound.token().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_deadline_the_token_fires_and_the_call_is_left_pending() {
        let mut bound = Bound::new(Some(Duration::from_secs(5)));
        let started = Instant::now();
        let mut call = pin!(std::future::pending::<()>());
        assert_eq!(bound.run(call.as_mut()).await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(bound.past_deadline());
        assert!(bound.has_ended());
        assert!(bound.token().is_cancelled());
        assert_eq!(poll_once(call).await, None);

        // A later call that honours the token returns on its one poll.
        let token = bound.token().clone();
        let honours = pin!(async move { token.cancelled().await });
        assert_eq!(bound.run(honours).await, None, "the bound has ended");
        let token = bound.token().clone();
        assert_eq!(
            poll_once(pin!(async move { token.cancelled().await })).await,
            Some(())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn overtime_follows_the_deadline_then_the_bound_ends() {
        let mut bound =
            Bound::new(Some(Duration::from_secs(2))).with_overtime(Duration::from_millis(200));
        let started = Instant::now();
        let mut hang = pin!(std::future::pending::<()>());
        assert_eq!(bound.run(hang.as_mut()).await, None);
        assert!(bound.past_deadline());
        assert!(!bound.has_ended(), "in overtime");
        assert!(bound.token().is_cancelled());

        // In overtime, a call that needs a little time still completes.
        let late = pin!(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            "late"
        });
        assert_eq!(bound.run(late).await, Some("late"));
        assert_eq!(bound.run(hang.as_mut()).await, None);
        assert!(bound.has_ended());
        assert_eq!(started.elapsed(), Duration::from_millis(2200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_interrupts() {
        let stop = CancellationToken::new();
        let mut bound = Bound::new(None).interrupted_by(&stop);
        let trigger = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            trigger.cancel();
        });
        assert_eq!(bound.run(pin!(std::future::pending::<()>())).await, None);
        assert!(bound.is_interrupted());
        assert!(bound.token().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_past_what_an_instant_holds_is_no_deadline() {
        let mut bound = Bound::new(Some(Duration::MAX));
        assert_eq!(bound.limit(), Some(Duration::MAX));
        assert_eq!(bound.deadline(), None);
        let call = pin!(async {
            tokio::time::sleep(Duration::from_secs(365 * 24 * 3600)).await;
            "done"
        });
        assert_eq!(bound.run(call).await, Some("done"));
        assert!(!bound.past_deadline());
        assert!(!bound.token().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn an_overtime_past_what_an_instant_holds_never_ends() {
        let mut bound = Bound::new(Some(Duration::from_secs(1))).with_overtime(Duration::MAX);
        let mut hang = pin!(std::future::pending::<()>());
        assert_eq!(bound.run(hang.as_mut()).await, None);
        assert!(bound.past_deadline());
        assert!(!bound.has_ended(), "in overtime");
        let late = pin!(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "late"
        });
        assert_eq!(bound.run(late).await, Some("late"));
    }

    #[test]
    fn a_stop_requested_before_any_call_ends_the_bound() {
        let stop = CancellationToken::new();
        let mut bound = Bound::new(None).interrupted_by(&stop);
        assert!(!bound.has_ended());
        stop.cancel();
        assert!(bound.has_ended());
        assert!(bound.is_interrupted());
    }
}
