//! The crate's error type.

/// Why a lease store could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A lease name or holder id that the store cannot take.
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        /// `lease name` or `holder id`.
        what: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The store could not be reached or failed; the request may be
    /// retried. A leader that cannot renew treats its lease as lost at its
    /// renew deadline.
    #[error("the lease store `{store}` failed: {source}")]
    Store {
        /// Which store (its kind and address, never a secret).
        store: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ClusterError {
    /// Checks a lease name or holder id: not empty, at most 255 bytes, no
    /// control characters (every backend stores them as text).
    pub(crate) fn check(what: &'static str, value: &str) -> Result<(), ClusterError> {
        let why = if value.is_empty() {
            "it is empty"
        } else if value.len() > 255 {
            "it is longer than 255 bytes"
        } else if value.chars().any(char::is_control) {
            "it holds a control character"
        } else {
            return Ok(());
        };
        Err(ClusterError::Invalid {
            what,
            value: value.to_owned(),
            why,
        })
    }
}
