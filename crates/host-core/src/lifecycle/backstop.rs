//! A deadline that passes even while no runtime thread drives tokio's timers.
//!
//! Tokio fires its timers from a worker that parks on the time driver. When
//! the worker holding the driver wakes to poll a task that then blocks its
//! thread, the other workers may stay parked on their own condition variable
//! and nothing fires a timer again until that task yields: a
//! `tokio::time::timeout` around a stop can then wait for good. The moment
//! [`Host::stop`](crate::Host::stop) gives up on a stop must not depend on
//! that, so it also waits on futures-timer's clock, which runs on a thread of
//! its own.

use std::future::pending;

use tokio::time::Instant;

/// Completes at `deadline` by tokio's clock, or by the real clock when
/// tokio's timers do not fire. Under a paused clock (tests) tokio's time
/// alone decides: the real timer firing first is ignored.
pub(crate) async fn until(deadline: Instant) {
    let real = async {
        futures_timer::Delay::new(deadline.saturating_duration_since(Instant::now())).await;
        if Instant::now() < deadline {
            pending::<()>().await;
        }
    };
    tokio::select! {
        biased;
        () = tokio::time::sleep_until(deadline) => {}
        () = real => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_decides_alone() {
        let start = Instant::now();
        until(start + Duration::from_secs(3600)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3600));
    }

    /// The runtime's only worker is blocked, so tokio fires no timer: the
    /// deadline passes on the real clock all the same.
    #[test]
    fn it_passes_while_the_only_worker_is_blocked() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let blocker = runtime.spawn(async move {
            let _ = released.recv_timeout(Duration::from_secs(30));
        });
        let start = std::time::Instant::now();
        runtime.block_on(async {
            // Give the worker time to take the blocking task.
            std::thread::sleep(Duration::from_millis(50));
            until(Instant::now() + Duration::from_millis(100)).await;
        });
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
        release.send(()).unwrap();
        runtime.block_on(blocker).unwrap();
    }
}
