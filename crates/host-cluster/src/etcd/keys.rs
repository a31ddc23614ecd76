//! The store's keys under its prefix. Names and job names go in with `%`
//! and `/` percent-encoded, so that a name's keys never run into another
//! name's (job `a/0` cannot reach into the ticks of job `a`).

use crate::ClusterError;

/// The digits of a tick in milliseconds, zero-padded so that the keys of
/// one job sort by tick and a range of ticks is a range of keys.
const TICK_WIDTH: usize = 20;

/// The key prefix, checked.
#[derive(Debug, Clone)]
pub(super) struct Prefix(String);

impl Default for Prefix {
    fn default() -> Self {
        Self("host/".to_owned())
    }
}

impl Prefix {
    pub(super) fn new(prefix: &str) -> Result<Self, ClusterError> {
        let why = if prefix.is_empty() {
            "it is empty"
        } else if prefix.len() > 128 {
            "it is longer than 128 bytes"
        } else if prefix.chars().any(char::is_control) {
            "it holds a control character"
        } else {
            return Ok(Self(prefix.to_owned()));
        };
        Err(ClusterError::Invalid {
            what: "etcd key prefix",
            value: prefix.to_owned(),
            why,
        })
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    /// The lease `name`'s key: its value is the holder, its create
    /// revision the term's token, and it is attached to the term's etcd
    /// lease.
    pub(super) fn lease(&self, name: &str) -> Vec<u8> {
        format!("{}lease/{}", self.0, encode(name)).into_bytes()
    }

    /// The claim of `job`'s tick `millis`.
    pub(super) fn claim(&self, job: &str, millis: i64) -> Vec<u8> {
        format!("{}{millis:0TICK_WIDTH$}", self.claim_stem(job)).into_bytes()
    }

    /// The key that lives while the claim of `job`'s tick `millis` is
    /// within its deadline: attached to an etcd lease of the deadline.
    pub(super) fn claim_live(&self, job: &str, millis: i64) -> Vec<u8> {
        format!("{}{millis:0TICK_WIDTH$}", self.claim_live_stem(job)).into_bytes()
    }

    /// The start of `job`'s claim keys (each followed by its tick).
    pub(super) fn claim_stem(&self, job: &str) -> String {
        format!("{}claim/{}/", self.0, encode(job))
    }

    /// The start of `job`'s live keys.
    pub(super) fn claim_live_stem(&self, job: &str) -> String {
        format!("{}claim-live/{}/", self.0, encode(job))
    }
}

/// `%` and `/` as `%25` and `%2F`; the rest as is.
fn encode(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_different_names_and_kinds_never_meet() {
        let p = Prefix::default();
        assert_eq!(p.lease("a/b"), b"host/lease/a%2Fb");
        assert_eq!(p.claim("a", 7), b"host/claim/a/00000000000000000007");
        assert_eq!(
            p.claim_live("a", 7),
            b"host/claim-live/a/00000000000000000007"
        );
        assert_eq!(p.claim_stem("a/0%"), "host/claim/a%2F0%25/");
        assert_ne!(p.claim_stem("a%2F0"), p.claim_stem("a/0"));
    }

    #[test]
    fn bad_prefixes_are_refused_naming_why() {
        for bad in ["", "a\nb", &"p".repeat(129)] {
            match Prefix::new(bad) {
                Err(ClusterError::Invalid { what, .. }) => assert_eq!(what, "etcd key prefix"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
