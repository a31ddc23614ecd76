//! The two clocks a schedule reads: tokio's monotonic clock for sleeping and
//! for intervals, and a wall clock for cron times and for the "next run"
//! shown to people.

use std::fmt;
use std::time::SystemTime;

use tokio::time::Instant;

/// Where the schedule loop reads wall-clock time. The host passes
/// [`SystemClock`]; tests pass a clock they move by hand, so that cron
/// schedules run against fixed dates.
pub(crate) trait WallClock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// One reading of both clocks, taken together, so that a wall time can be
/// mapped to a monotonic deadline and back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Now {
    /// The monotonic clock (tokio's, so that paused time moves it).
    pub(crate) instant: Instant,
    /// The wall clock.
    pub(crate) wall: SystemTime,
}

impl Now {
    /// Reads both clocks.
    pub(crate) fn read(clock: &dyn WallClock) -> Self {
        Self {
            instant: Instant::now(),
            wall: clock.now(),
        }
    }

    /// The wall time that corresponds to `instant`, as far as this reading
    /// tells (the wall clock may be stepped later).
    pub(crate) fn wall_at(&self, instant: Instant) -> SystemTime {
        if instant >= self.instant {
            self.wall + (instant - self.instant)
        } else {
            self.wall - (self.instant - instant)
        }
    }

    /// The instant that corresponds to the wall time `wall`, as far as this
    /// reading tells; for a time too far ahead to add, as far as tokio's
    /// timer goes, and for one before the monotonic clock's origin, now.
    pub(crate) fn instant_at(&self, wall: SystemTime) -> Instant {
        match wall.duration_since(self.wall) {
            Ok(ahead) => self
                .instant
                .checked_add(ahead)
                .unwrap_or_else(|| far_future(self.instant)),
            Err(behind) => self
                .instant
                .checked_sub(behind.duration())
                .unwrap_or(self.instant),
        }
    }
}

/// An instant no schedule reaches: 30 years on, as the host's `Ticker` uses
/// for a period too long to add.
pub(crate) fn far_future(from: Instant) -> Instant {
    const THIRTY_YEARS: std::time::Duration = std::time::Duration::from_secs(86_400 * 365 * 30);
    from.checked_add(THIRTY_YEARS).unwrap_or(from)
}

impl fmt::Debug for Now {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Now({})", humantime::format_rfc3339_nanos(self.wall))
    }
}

/// A wall clock for tests: it moves with tokio's (paused) clock from a fixed
/// date, and [`step`](TestClock::step) moves it on its own, as a suspended
/// machine or a clock set by NTP does.
#[cfg(test)]
pub(crate) struct TestClock {
    origin: Instant,
    wall: SystemTime,
    steps: std::sync::Mutex<i128>,
}

#[cfg(test)]
impl TestClock {
    /// A clock that reads `rfc3339` now and moves with tokio's clock.
    pub(crate) fn at(rfc3339: &str) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            origin: Instant::now(),
            wall: parse_time(rfc3339),
            steps: std::sync::Mutex::new(0),
        })
    }

    /// Steps the wall clock by `seconds` (negative: back), without moving
    /// the monotonic clock.
    pub(crate) fn step(&self, seconds: i64) {
        *self.steps.lock().unwrap() += i128::from(seconds) * 1_000_000_000;
    }
}

#[cfg(test)]
impl WallClock for TestClock {
    fn now(&self) -> SystemTime {
        let steps = *self.steps.lock().unwrap();
        let moved = self.wall + self.origin.elapsed();
        let step = std::time::Duration::from_nanos(steps.unsigned_abs() as u64);
        if steps >= 0 {
            moved + step
        } else {
            moved - step
        }
    }
}

/// Parses an RFC 3339 time (`2026-03-29T00:30:00Z`), for tests.
#[cfg(test)]
pub(crate) fn parse_time(rfc3339: &str) -> SystemTime {
    humantime::parse_rfc3339(rfc3339).unwrap_or_else(|error| panic!("{rfc3339}: {error}"))
}

/// Formats a wall time as RFC 3339 in UTC, to whole seconds, for tests.
#[cfg(test)]
pub(crate) fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let before = SystemTime::now();
        let read = SystemClock.now();
        assert!(read >= before && read <= SystemTime::now());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reading_maps_wall_times_to_instants_and_back() {
        let clock = TestClock::at("2026-01-01T00:00:00Z");
        let now = Now::read(clock.as_ref());
        let later = parse_time("2026-01-01T00:00:10Z");
        assert_eq!(now.instant_at(later), now.instant + Duration::from_secs(10));
        assert_eq!(now.wall_at(now.instant + Duration::from_secs(10)), later);
        let earlier = now.instant_at(parse_time("2026-01-01T00:00:00Z") - Duration::from_millis(5));
        assert_eq!(now.instant - earlier, Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn the_test_clock_moves_with_paused_time_and_steps_by_hand() {
        let clock = TestClock::at("2026-01-01T00:00:00Z");
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(format_time(clock.now()), "2026-01-01T00:01:30Z");
        clock.step(3600);
        assert_eq!(format_time(clock.now()), "2026-01-01T01:01:30Z");
        clock.step(-7200);
        assert_eq!(format_time(clock.now()), "2025-12-31T23:01:30Z");
    }
}
