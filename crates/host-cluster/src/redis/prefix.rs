//! The key prefix that keeps the store's keys apart from others in the
//! same Redis database, and the keys under it.

use crate::ClusterError;

/// The longest prefix: keys stay short, and a prefix is a name, not data.
const LONGEST: usize = 64;

/// The prefix of every key the store writes. Default `host:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prefix(String);

impl Default for Prefix {
    fn default() -> Self {
        Self("host:".to_owned())
    }
}

impl Prefix {
    /// Checks `prefix`: 1 to 64 bytes of ASCII letters, digits and
    /// `: _ - . /`, so that `SCAN MATCH <prefix>*` finds exactly the
    /// store's keys (no glob characters) and no key is ambiguous.
    pub(crate) fn new(prefix: &str) -> Result<Self, ClusterError> {
        let why = if prefix.is_empty() {
            "it is empty"
        } else if prefix.len() > LONGEST {
            "it is longer than 64 bytes"
        } else if !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_-./".contains(&b))
        {
            "it may hold only ASCII letters, digits and `: _ - . /`"
        } else {
            return Ok(Self(prefix.to_owned()));
        };
        Err(ClusterError::Invalid {
            what: "redis key prefix",
            value: prefix.to_owned(),
            why,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The lease `name`'s key: its value is `<token>:<holder>` while held.
    pub(crate) fn lease(&self, name: &str) -> String {
        format!("{}lease:{name}", self.0)
    }

    /// The counter of the lease `name`'s terms; never deleted.
    pub(crate) fn lease_token(&self, name: &str) -> String {
        format!("{}token:{name}", self.0)
    }

    /// The start of `job`'s claim keys, each followed by its tick in
    /// milliseconds (the tick has no `:`, so the key is unambiguous).
    pub(crate) fn claim_stem(&self, job: &str) -> String {
        format!("{}claim:{job}:", self.0)
    }

    /// The counter of `job`'s claims; never deleted.
    pub(crate) fn claim_token(&self, job: &str) -> String {
        format!("{}claim-token:{job}", self.0)
    }

    /// The sorted set of `job`'s claimed ticks (scored by millisecond), for
    /// purge.
    pub(crate) fn claim_ticks(&self, job: &str) -> String {
        format!("{}claim-ticks:{job}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_prefixes_are_refused_naming_why() {
        for bad in ["", "a b", "app*", "x[1]", "é:", &"p".repeat(65)] {
            match Prefix::new(bad) {
                Err(ClusterError::Invalid { what, .. }) => assert_eq!(what, "redis key prefix"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        Prefix::new("orders/prod:host-cluster_1.").unwrap();
        Prefix::new(&"p".repeat(64)).unwrap();
    }

    #[test]
    fn keys_of_different_kinds_never_meet() {
        let p = Prefix::default();
        assert_eq!(p.lease("a"), "host:lease:a");
        assert_eq!(p.lease_token("a"), "host:token:a");
        assert_eq!(p.claim_stem("a"), "host:claim:a:");
        assert_eq!(p.claim_token("a"), "host:claim-token:a");
        assert_eq!(p.claim_ticks("a"), "host:claim-ticks:a");
    }
}
