//! A cluster singleton's name and leader-election timings.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Makes a background service a cluster singleton: every instance of the
/// application campaigns for the lease called [`name`](Self::name), and
/// only the one that holds it runs `execute` (see `docs/scale-out.md`).
///
/// The timings and their defaults are Kubernetes client-go's leader
/// election's: the lease lasts 15 s, the leader gives up 10 s (the renew
/// deadline) after its last successful renew, and every instance tries (to
/// take or renew it) every 2 s. They must keep lease > renew deadline >
/// 1.2 × retry period, so that a leader stops before its lease can expire
/// and has several tries to renew it.
///
/// ```
/// use std::time::Duration;
/// use host_core::Singleton;
///
/// let billing = Singleton::new("billing")
///     .lease(Duration::from_secs(6))
///     .renew_deadline(Duration::from_secs(4))
///     .retry_period(Duration::from_secs(1));
/// assert_eq!(billing.name(), "billing");
/// assert!(billing.check().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Singleton {
    name: String,
    #[serde(default = "defaults::lease", with = "host_config::duration")]
    lease: Duration,
    #[serde(default = "defaults::renew_deadline", with = "host_config::duration")]
    renew_deadline: Duration,
    #[serde(default = "defaults::retry_period", with = "host_config::duration")]
    retry_period: Duration,
}

mod defaults {
    use std::time::Duration;

    pub(super) fn lease() -> Duration {
        super::Singleton::DEFAULT_LEASE
    }
    pub(super) fn renew_deadline() -> Duration {
        super::Singleton::DEFAULT_RENEW_DEADLINE
    }
    pub(super) fn retry_period() -> Duration {
        super::Singleton::DEFAULT_RETRY_PERIOD
    }
}

impl Singleton {
    /// How long a lease lasts unless renewed: 15 s.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
    /// How long after its last successful renew a leader gives up: 10 s.
    pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
    /// How often instances try to take or renew the lease: 2 s.
    pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

    /// The singleton called `name` (the lease's name in the store: the same
    /// in every instance of the application), with the default timings.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            lease: Self::DEFAULT_LEASE,
            renew_deadline: Self::DEFAULT_RENEW_DEADLINE,
            retry_period: Self::DEFAULT_RETRY_PERIOD,
        }
    }

    /// How long the lease lasts unless renewed: how long a dead leader
    /// keeps the others waiting at most.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long after its last successful renew the leader stops acting:
    /// its `execute`'s stopping token is cancelled then, before the lease
    /// can have expired by its own clock.
    pub fn renew_deadline(mut self, deadline: Duration) -> Self {
        self.renew_deadline = deadline;
        self
    }

    /// How often the leader renews, and the others try to take the lease.
    pub fn retry_period(mut self, period: Duration) -> Self {
        self.retry_period = period;
        self
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// See [`lease`](Self::lease).
    pub fn lease_duration(&self) -> Duration {
        self.lease
    }

    /// See [`renew_deadline`](Self::renew_deadline).
    pub fn renew_deadline_duration(&self) -> Duration {
        self.renew_deadline
    }

    /// See [`retry_period`](Self::retry_period).
    pub fn retry_period_duration(&self) -> Duration {
        self.retry_period
    }

    /// Checks the timings as client-go does: lease > renew deadline >
    /// 1.2 × retry period, a retry period above zero, and a name.
    ///
    /// # Errors
    ///
    /// What is wrong, naming the values.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("a cluster singleton needs a name".to_owned());
        }
        if self.retry_period.is_zero() {
            return Err(format!(
                "the retry period of cluster singleton `{}` is zero",
                self.name
            ));
        }
        if self.lease <= self.renew_deadline {
            return Err(format!(
                "cluster singleton `{}`: the lease ({:?}) must be longer than the renew \
                 deadline ({:?})",
                self.name, self.lease, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= 1.2 * self.retry_period.as_secs_f64() {
            return Err(format!(
                "cluster singleton `{}`: the renew deadline ({:?}) must be longer than 1.2 × \
                 the retry period ({:?})",
                self.name, self.renew_deadline, self.retry_period
            ));
        }
        Ok(())
    }
}

impl From<&str> for Singleton {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for Singleton {
    fn from(name: String) -> Self {
        Self::new(name)
    }
}

impl fmt::Display for Singleton {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (lease {:?}, renew deadline {:?}, retry every {:?})",
            self.name, self.lease, self.renew_deadline, self.retry_period
        )
    }
}

/// `services.<name>.cluster_singleton`: a name, or a table with the
/// timings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum SingletonSection {
    Name(String),
    Full(Singleton),
}

impl SingletonSection {
    pub(crate) fn into_singleton(self) -> Singleton {
        match self {
            SingletonSection::Name(name) => Singleton::new(name),
            SingletonSection::Full(singleton) => singleton,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_client_go_s_and_valid() {
        let singleton = Singleton::new("billing");
        assert_eq!(
            (
                singleton.lease_duration(),
                singleton.renew_deadline_duration(),
                singleton.retry_period_duration()
            ),
            (
                Duration::from_secs(15),
                Duration::from_secs(10),
                Duration::from_secs(2)
            )
        );
        assert_eq!(singleton.check(), Ok(()));
    }

    #[test]
    fn timings_out_of_order_are_refused_naming_them() {
        let short_lease = Singleton::new("a").lease(Duration::from_secs(10));
        let error = short_lease.check().unwrap_err();
        assert!(
            error.contains("lease (10s)") && error.contains("`a`"),
            "{error}"
        );
        let slow_retry = Singleton::new("b").retry_period(Duration::from_millis(8500));
        let error = slow_retry.check().unwrap_err();
        assert!(error.contains("1.2 × the retry period (8.5s)"), "{error}");
        assert!(Singleton::new("").check().is_err());
        assert!(
            Singleton::new("c")
                .retry_period(Duration::ZERO)
                .check()
                .is_err()
        );
    }

    #[test]
    fn configuration_takes_a_name_or_a_table() {
        let name: SingletonSection = serde_json::from_str(r#""billing""#).unwrap();
        assert_eq!(name.into_singleton(), Singleton::new("billing"));
        let full: SingletonSection =
            serde_json::from_str(r#"{"name": "billing", "lease": "6s", "renew_deadline": "4s"}"#)
                .unwrap();
        assert_eq!(
            full.into_singleton(),
            Singleton::new("billing")
                .lease(Duration::from_secs(6))
                .renew_deadline(Duration::from_secs(4))
        );
    }
}
