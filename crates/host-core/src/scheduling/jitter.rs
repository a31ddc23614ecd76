//! The deterministic jitter of a schedule: an offset in `[0, max)` derived
//! from the service's name, the same on every run, build and platform.
//!
//! The standard library's `DefaultHasher` is not used: its output may change
//! between Rust releases, and a rerun would then land at another time.
//! FNV-1a (64 bits) is written out below, followed by the finalizer of
//! SplitMix64 so that names that differ in one letter (`app::A`, `app::B`)
//! land far apart rather than next to each other.

use std::time::Duration;

/// The offset for `service` (and `key`, when the schedule sets one) within
/// `[0, max)`; zero when `max` is zero.
pub(crate) fn offset(service: &str, key: Option<&str>, max: Duration) -> Duration {
    let max = max.as_nanos();
    if max == 0 {
        return Duration::ZERO;
    }
    let mut hash = fnv1a(FNV_OFFSET, service.as_bytes());
    if let Some(key) = key {
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        hash = fnv1a(fnv1a(hash, &[0]), key.as_bytes());
    }
    let nanos = u128::from(mix(hash)) % max;
    // `nanos` < `max`, which came from a `Duration`.
    Duration::new(
        u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX),
        (nanos % 1_000_000_000) as u32,
    )
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over `bytes`, continuing from `hash`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// SplitMix64's finalizer: spreads every input bit over the output.
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_offset_is_stable_and_within_the_maximum() {
        let max = Duration::from_secs(60);
        // Pinned: a change here moves every jittered schedule of every user.
        assert_eq!(
            offset("app::Cleanup", None, max),
            Duration::from_nanos(33_536_294_262)
        );
        for name in ["app::A", "app::B", "app::Cleanup", ""] {
            let first = offset(name, None, max);
            assert_eq!(first, offset(name, None, max), "{name}");
            assert!(first < max, "{name}: {first:?}");
        }
    }

    #[test]
    fn names_one_letter_apart_spread_out() {
        let max = Duration::from_secs(60);
        let a = offset("app::A", None, max);
        let b = offset("app::B", None, max);
        let apart = a.abs_diff(b);
        assert!(apart > Duration::from_secs(1), "{a:?} and {b:?}");
    }

    #[test]
    fn a_key_gives_each_instance_its_own_offset() {
        let max = Duration::from_secs(60);
        let plain = offset("app::Cleanup", None, max);
        let one = offset("app::Cleanup", Some("host-1"), max);
        let two = offset("app::Cleanup", Some("host-2"), max);
        assert_ne!(one, two);
        assert_ne!(plain, one);
        // The separator keeps the service's name and the key apart.
        assert_ne!(offset("ab", Some("c"), max), offset("a", Some("bc"), max));
    }

    #[test]
    fn no_maximum_no_offset() {
        assert_eq!(offset("app::Cleanup", None, Duration::ZERO), Duration::ZERO);
        assert!(offset("app::Cleanup", None, Duration::from_nanos(1)).is_zero());
    }
}
