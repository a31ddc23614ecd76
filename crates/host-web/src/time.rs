//! Deadlines from configured durations. A duration whose end cannot be
//! represented (`Duration::MAX`, "100000000000y") means no deadline at all:
//! never a panic on `Instant + Duration`.

use std::time::Duration;

use tokio::time::Instant;

/// `start + duration`, or `None` (no deadline) when it overflows.
pub(crate) fn deadline(start: Instant, duration: Duration) -> Option<Instant> {
    start.checked_add(duration)
}

/// Sleeps for `duration`; forever when its end cannot be represented.
pub(crate) async fn sleep(duration: Duration) {
    match deadline(Instant::now(), duration) {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Runs `future` for at most `duration` (`None` once it is over); without a
/// bound when the end cannot be represented.
pub(crate) async fn within<F: Future>(duration: Duration, future: F) -> Option<F::Output> {
    match deadline(Instant::now(), duration) {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_unrepresentable_end_is_no_deadline() {
        assert_eq!(deadline(Instant::now(), Duration::MAX), None);
        let now = Instant::now();
        assert_eq!(
            deadline(now, Duration::from_secs(1)),
            Some(now + Duration::from_secs(1))
        );
        // Not a panic, and not over: a sleep that never ends.
        assert_eq!(within(Duration::MAX, async { 7 }).await, Some(7));
        let endless = within(Duration::MAX, sleep(Duration::MAX));
        assert!(
            tokio::time::timeout(Duration::from_secs(365 * 24 * 3600), endless)
                .await
                .is_err()
        );
        // A representable bound still bounds.
        assert_eq!(
            within(Duration::from_secs(1), sleep(Duration::from_secs(2))).await,
            None
        );
    }
}
