//! The restart policy of a background service: when to restart it, after
//! how long, and when to give up.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::ServiceError;

/// When a background service's `execute` is restarted after it ends, as
/// systemd's `Restart=` and an Erlang/OTP supervisor's child spec.
///
/// - [`never`](Self::never) (the default): a failure goes to the host's
///   [failure behaviour](crate::BackgroundServiceFailure).
/// - [`on_failure`](Self::on_failure): restart after an error or a panic
///   (or a missed heartbeat), not after `Ok`.
/// - [`always`](Self::always): restart after `Ok` as well, for a service
///   that is meant to run until the host stops.
///
/// Between restarts the supervisor waits with exponential backoff (the
/// delay doubles from [`initial`](Self::backoff) up to `max`, each delay
/// shortened by up to [`jitter`](Self::jitter) at random, so that services
/// failing together do not restart in lockstep). After
/// [`reset_after`](Self::reset_after) of running without a failure, the
/// next delay starts from `initial` again. If more than
/// [`limit`](Self::limit) restarts fall within its period, the supervisor
/// gives up: the failure goes to the host's failure behaviour.
///
/// An error wrapped in [`Unrecoverable`] is never restarted. No restart
/// begins once the host's stop has begun.
///
/// | setting | default |
/// |---|---|
/// | backoff | 1 s, doubling, at most 30 s |
/// | jitter | 0.2 (each delay shortened by up to 20 %) |
/// | limit | 5 restarts within 60 s |
/// | reset after | 30 s of running |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use host_core::Restart;
///
/// let policy = Restart::on_failure()
///     .backoff(Duration::from_millis(100), Duration::from_secs(30))
///     .limit(10, Duration::from_secs(60));
/// assert_eq!(policy.max_restarts(), 10);
/// ```
#[derive(Clone, PartialEq)]
pub struct Restart {
    mode: Mode,
    initial: Duration,
    max: Duration,
    jitter: f64,
    max_restarts: u32,
    within: Duration,
    reset_after: Duration,
}

/// Which endings restart the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Never,
    OnFailure,
    Always,
}

impl Restart {
    /// Never restart: a failure goes to the host's failure behaviour.
    pub fn never() -> Self {
        Self::with_mode(Mode::Never)
    }

    /// Restart after an error, a panic or a missed heartbeat.
    pub fn on_failure() -> Self {
        Self::with_mode(Mode::OnFailure)
    }

    /// Restart after any ending, `Ok` included, until the host stops.
    pub fn always() -> Self {
        Self::with_mode(Mode::Always)
    }

    fn with_mode(mode: Mode) -> Self {
        Self {
            mode,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            jitter: 0.2,
            max_restarts: 5,
            within: Duration::from_secs(60),
            reset_after: Duration::from_secs(30),
        }
    }

    /// The first delay, and the most any delay grows to (doubling from
    /// `initial`). Default: 1 s and 30 s. A `max` below `initial` is raised
    /// to it.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial = initial;
        self.max = max.max(initial);
        self
    }

    /// How much of each delay may be taken off at random, from 0.0 (none:
    /// the delays are exact) to 1.0. Default: 0.2. Values outside are
    /// clamped.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// At most `max_restarts` restarts within any `within`; one more failure
    /// and the supervisor gives up. Default: 5 within 60 s.
    pub fn limit(mut self, max_restarts: u32, within: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.within = within;
        self
    }

    /// After running this long without failing, the service counts as
    /// stable: the next restart's delay starts from the initial one again.
    /// Default: 30 s.
    pub fn reset_after(mut self, stable: Duration) -> Self {
        self.reset_after = stable;
        self
    }

    /// Whether the policy ever restarts.
    pub fn restarts(&self) -> bool {
        self.mode != Mode::Never
    }

    /// The most restarts within [`period`](Self::period).
    pub fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// The period the restart limit counts over.
    pub fn period(&self) -> Duration {
        self.within
    }

    /// The first and the largest delay.
    pub(crate) fn delays(&self) -> (Duration, Duration) {
        (self.initial, self.max)
    }

    /// This policy's mode with `other`'s tuning (backoff, jitter, limit).
    pub(crate) fn tuned_as(self, other: &Restart) -> Restart {
        Restart {
            mode: self.mode,
            ..other.clone()
        }
    }

    /// Whether any ending may restart the service.
    pub(crate) fn may_restart(&self) -> bool {
        self.mode != Mode::Never
    }

    /// Whether an ending restarts the service, by the mode alone.
    pub(crate) fn restarts_after(&self, ending: Ending<'_>) -> bool {
        match (self.mode, ending) {
            (Mode::Never, _) => false,
            (_, Ending::Failed(error)) => !error.is_some_and(Unrecoverable::marks),
            (Mode::Always, Ending::Completed) => true,
            (Mode::OnFailure, Ending::Completed) => false,
        }
    }

    /// The delay before restart `attempt` (1 for the first since the
    /// service was last stable), given `unit`, a number in `[0, 1)` drawn
    /// at random: the delay doubles from the initial one, is capped at the
    /// maximum, and loses up to the jitter's fraction of itself.
    pub(crate) fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let doublings = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let grown = Duration::try_from_secs_f64(self.initial.as_secs_f64() * 2f64.powi(doublings))
            .map_or(self.max, |grown| grown.min(self.max));
        let cut = self.jitter * unit.clamp(0.0, 1.0);
        grown.mul_f64(1.0 - cut)
    }
}

impl Default for Restart {
    /// [`Restart::never`].
    fn default() -> Self {
        Self::never()
    }
}

impl fmt::Debug for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Restart");
        debug.field("mode", &self.mode);
        if self.restarts() {
            debug
                .field("backoff", &(self.initial..=self.max))
                .field("jitter", &self.jitter)
                .field("limit", &(self.max_restarts, self.within))
                .field("reset_after", &self.reset_after);
        }
        debug.finish()
    }
}

/// How a run of `execute` ended, as far as the policy cares.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending<'a> {
    /// Returned `Ok` before the host asked it to stop.
    Completed,
    /// Returned an error (`Some`), panicked or missed its heartbeat (`None`).
    Failed(Option<&'a ServiceError>),
}

/// An error that tells the supervisor not to restart the service, whatever
/// its [`Restart`] policy: wrong credentials, a missing table, a bad
/// setting, which no restart mends. The failure goes to the host's failure
/// behaviour at once.
///
/// ```
/// use host_core::{ServiceError, Unrecoverable, anyhow};
///
/// fn connect(password: Option<&str>) -> Result<(), ServiceError> {
///     let Some(_password) = password else {
///         return Err(Unrecoverable::new(anyhow!("no database password is configured")).into());
///     };
///     Ok(())
/// }
/// assert!(Unrecoverable::marks(&connect(None).unwrap_err()));
/// ```
pub struct Unrecoverable(ServiceError);

impl Unrecoverable {
    /// Marks `error` as one that no restart mends.
    pub fn new(error: impl Into<ServiceError>) -> Self {
        Self(error.into())
    }

    /// Whether `error`, or an error it wraps with context, is marked
    /// unrecoverable.
    pub fn marks(error: &ServiceError) -> bool {
        error.downcast_ref::<Unrecoverable>().is_some()
            || error.chain().any(|cause| cause.is::<Unrecoverable>())
    }

    /// The error it marks.
    pub fn into_inner(self) -> ServiceError {
        self.0
    }
}

impl fmt::Display for Unrecoverable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Unrecoverable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Unrecoverable").field(&self.0).finish()
    }
}

impl std::error::Error for Unrecoverable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What the supervisor remembers of one service's restarts: the attempt
/// number for the backoff and the restarts within the limit's period.
#[derive(Debug, Default)]
pub(crate) struct RestartHistory {
    /// Restarts since the service was last stable.
    attempt: u32,
    /// When each restart within the limit's period happened, oldest first.
    recent: VecDeque<Instant>,
}

/// What the supervisor does after a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// Restart after `delay`; `attempt` counts from 1 since the last stable run.
    Restart { attempt: u32, delay: Duration },
    /// The limit is reached: give up.
    GiveUp,
}

impl RestartHistory {
    /// Decides on a restart after a run that began at `began` and ended at
    /// `now`, and records it. `unit` is the random draw for the jitter.
    pub(crate) fn next(
        &mut self,
        policy: &Restart,
        began: Instant,
        now: Instant,
        unit: f64,
    ) -> Decision {
        if now.saturating_duration_since(began) >= policy.reset_after {
            self.attempt = 0;
        }
        while self
            .recent
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= policy.within)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= policy.max_restarts as usize {
            return Decision::GiveUp;
        }
        self.recent.push_back(now);
        self.attempt = self.attempt.saturating_add(1);
        Decision::Restart {
            attempt: self.attempt,
            delay: policy.delay(self.attempt, unit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn delays_double_from_the_initial_one_up_to_the_maximum() {
        let policy = Restart::on_failure().backoff(Duration::from_millis(100), secs(1));
        let delays: Vec<u128> = (1..=6).map(|n| policy.delay(n, 0.0).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        // Far past any doubling a Duration holds: still the maximum.
        assert_eq!(policy.delay(40, 0.0), secs(1));
        assert_eq!(policy.delay(u32::MAX, 0.0), secs(1));
    }

    #[test]
    fn jitter_only_shortens_a_delay_by_up_to_its_fraction() {
        let policy = Restart::on_failure()
            .backoff(secs(10), secs(10))
            .jitter(0.2);
        assert_eq!(policy.delay(1, 0.0), secs(10));
        assert_eq!(policy.delay(1, 0.5), secs(9));
        assert!(policy.delay(1, 0.999_999) > Duration::from_millis(8000));
        let exact = Restart::on_failure()
            .backoff(secs(10), secs(10))
            .jitter(0.0);
        assert_eq!(exact.delay(1, 0.9), secs(10));
        assert_eq!(Restart::on_failure().jitter(7.0).jitter, 1.0);
        assert_eq!(Restart::on_failure().jitter(f64::NAN).jitter, 0.0);
    }

    #[test]
    fn a_maximum_below_the_initial_delay_is_raised_to_it() {
        let policy = Restart::on_failure().backoff(secs(5), secs(1));
        assert_eq!(policy.delay(3, 0.0), secs(5));
    }

    #[test]
    fn the_mode_decides_which_endings_restart() {
        let error = anyhow::anyhow!("boom");
        let fatal: ServiceError = Unrecoverable::new(anyhow::anyhow!("bad password")).into();
        let failed = Ending::Failed(Some(&error));
        assert!(!Restart::never().restarts_after(failed));
        assert!(Restart::on_failure().restarts_after(failed));
        assert!(Restart::on_failure().restarts_after(Ending::Failed(None)));
        assert!(!Restart::on_failure().restarts_after(Ending::Completed));
        assert!(Restart::always().restarts_after(Ending::Completed));
        assert!(!Restart::always().restarts_after(Ending::Failed(Some(&fatal))));
    }

    #[test]
    fn an_unrecoverable_error_is_seen_through_context() {
        let fatal: ServiceError = Unrecoverable::new(anyhow::anyhow!("bad password")).into();
        let wrapped = fatal.context("connecting to the database");
        assert!(Unrecoverable::marks(&wrapped));
        assert_eq!(
            format!("{wrapped:#}"),
            "connecting to the database: bad password"
        );
        assert!(!Unrecoverable::marks(&anyhow::anyhow!("plain")));
    }

    #[test]
    fn the_limit_counts_restarts_within_its_period_then_gives_up() {
        let policy = Restart::on_failure()
            .backoff(secs(1), secs(1))
            .jitter(0.0)
            .limit(3, secs(60))
            .reset_after(secs(3600));
        let mut history = RestartHistory::default();
        let start = Instant::now();
        let at = |s: u64| start + secs(s);
        for n in 1..=3 {
            assert!(matches!(
                history.next(&policy, at(n * 2), at(n * 2 + 1), 0.0),
                Decision::Restart { attempt, .. } if attempt == n as u32
            ));
        }
        assert_eq!(history.next(&policy, at(8), at(9), 0.0), Decision::GiveUp);
        // Once the first restarts have left the period, there is room again.
        assert!(matches!(
            history.next(&policy, at(62), at(63), 0.0),
            Decision::Restart { attempt: 4, .. }
        ));
    }

    #[test]
    fn a_zero_limit_gives_up_at_the_first_failure() {
        let policy = Restart::on_failure().limit(0, secs(60));
        let mut history = RestartHistory::default();
        let now = Instant::now();
        assert_eq!(history.next(&policy, now, now, 0.0), Decision::GiveUp);
    }

    #[test]
    fn a_stable_run_resets_the_backoff_but_not_the_limit() {
        let policy = Restart::on_failure()
            .backoff(secs(1), secs(60))
            .jitter(0.0)
            .limit(10, secs(3600))
            .reset_after(secs(30));
        let mut history = RestartHistory::default();
        let start = Instant::now();
        let restart = |history: &mut RestartHistory, began: u64, ended: u64| {
            history.next(&policy, start + secs(began), start + secs(ended), 0.0)
        };
        assert_eq!(
            restart(&mut history, 0, 1),
            Decision::Restart {
                attempt: 1,
                delay: secs(1)
            }
        );
        assert_eq!(
            restart(&mut history, 2, 3),
            Decision::Restart {
                attempt: 2,
                delay: secs(2)
            }
        );
        // Ran 40 s: stable, so the delay starts again from 1 s.
        assert_eq!(
            restart(&mut history, 5, 45),
            Decision::Restart {
                attempt: 1,
                delay: secs(1)
            }
        );
        assert_eq!(history.recent.len(), 3);
    }
}
