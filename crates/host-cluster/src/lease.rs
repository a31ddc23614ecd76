//! A lease, its fencing token, and what every instance can read of it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The fencing token of one term of a lease: strictly larger for each new
/// term of the same lease name, whoever holds it. A target that remembers
/// the largest token it accepted, and rejects a write carrying a smaller
/// one, turns a stale leader's writes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(u64);

impl FencingToken {
    /// A token from its number (as a fenced target stored it).
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// Its number, to store beside a fenced write.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A lease held: its name, its holder, and the fencing token of its term.
/// Renew it before its time to live runs out; release it when done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    name: Arc<str>,
    holder: Arc<str>,
    token: FencingToken,
}

impl Lease {
    pub(crate) fn new(name: Arc<str>, holder: Arc<str>, token: FencingToken) -> Self {
        Self {
            name,
            holder,
            token,
        }
    }

    /// The lease's name (a singleton's, say).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Who holds it: the instance's id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The fencing token of this term.
    pub fn token(&self) -> FencingToken {
        self.token
    }
}

/// Who holds a lease, as every instance can read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub(crate) holder: Arc<str>,
    pub(crate) token: FencingToken,
    pub(crate) expires_in: Duration,
}

impl LeaseInfo {
    /// The holder's id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The fencing token of the current term.
    pub fn token(&self) -> FencingToken {
        self.token
    }

    /// How long until the lease expires unless renewed, by the store's
    /// clock, when it was read.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }
}

/// `now + ttl`, or as far as an instant goes (a time to live too long for
/// an instant never ends).
pub(crate) fn until(now: std::time::Instant, ttl: Duration) -> std::time::Instant {
    now.checked_add(ttl)
        .unwrap_or_else(|| now + Duration::from_secs(86400 * 365 * 30))
}
