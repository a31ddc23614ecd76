//! The `services` configuration section: per-service options by service
//! name, over what the registrations set in code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::scheduling::cluster_wide::ClusterWideSection;
use crate::scheduling::periodic::ScheduleSlot;
use crate::services::record::ServiceRecord;
use crate::supervision::dependencies::short_name;
use crate::supervision::options::ServiceSettings;
use crate::supervision::singleton::SingletonSection;
use crate::{HostError, HostedService, Restart, Schedule};

/// `services.<name>`: each key present overrides the registration's option.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServiceSection {
    #[serde(with = "host_config::duration::option")]
    start_timeout: Option<Duration>,
    #[serde(with = "host_config::duration::option")]
    stop_timeout: Option<Duration>,
    #[serde(with = "host_config::duration::option")]
    heartbeat: Option<Duration>,
    required_for_readiness: Option<bool>,
    restart: Option<RestartSection>,
    /// A periodic service's schedule (reloadable).
    schedule: Option<Schedule>,
    /// Makes a background service a cluster singleton.
    cluster_singleton: Option<SingletonSection>,
    /// Makes a periodic service's ticks each run on one instance.
    cluster_wide: Option<ClusterWideSection>,
}

/// `services.<name>.restart`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RestartSection {
    mode: Option<RestartMode>,
    #[serde(with = "host_config::duration::option")]
    initial_delay: Option<Duration>,
    #[serde(with = "host_config::duration::option")]
    max_delay: Option<Duration>,
    jitter: Option<f64>,
    max_restarts: Option<u32>,
    #[serde(with = "host_config::duration::option")]
    within: Option<Duration>,
    #[serde(with = "host_config::duration::option")]
    reset_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RestartMode {
    Never,
    OnFailure,
    Always,
}

/// The `services` section's key.
pub(crate) const KEY: &str = "services";

/// The `services` section: options by service name.
pub(crate) type ServicesSection = BTreeMap<String, ServiceSection>;

/// Which service each key of the section is for: its full name or the
/// last part of it, in any case.
///
/// # Errors
///
/// A key that names no service, or several: a build error naming the key
/// and the services there are.
pub(crate) fn match_keys<'a>(
    section: &'a ServicesSection,
    names: &[Arc<str>],
) -> Result<Vec<(usize, &'a str, &'a ServiceSection)>, HostError> {
    let mut matched = Vec::new();
    let mut problems = Vec::new();
    for (key, options) in section {
        let exact: Vec<usize> = (0..names.len())
            .filter(|&i| names[i].eq_ignore_ascii_case(key))
            .collect();
        let found = if exact.is_empty() {
            (0..names.len())
                .filter(|&i| short_name(&names[i]).eq_ignore_ascii_case(key))
                .collect()
        } else {
            exact
        };
        match found.as_slice() {
            [index] => matched.push((*index, key.as_str(), options)),
            [] => problems.push(format!(
                "`{KEY}.{key}` names no hosted service (the services: {})",
                names.iter().map(|n| &**n).collect::<Vec<_>>().join(", ")
            )),
            _ => problems.push(format!(
                "`{KEY}.{key}` names several services: {}; use the full name, quoted \
                 (`[{KEY}.\"{}\"]`)",
                found
                    .iter()
                    .map(|&i| format!("`{}`", names[i]))
                    .collect::<Vec<_>>()
                    .join(", "),
                names[found[0]]
            )),
        }
    }
    if problems.is_empty() {
        Ok(matched)
    } else {
        Err(HostError::build(format!(
            "invalid configuration: {}",
            problems.join("; ")
        )))
    }
}

impl ServiceSection {
    /// Applies the section over `settings` of `service`, configured under `key`.
    ///
    /// # Errors
    ///
    /// A background service's option (restart, heartbeat) on a service that
    /// is not one: a build error naming the key and the service.
    pub(crate) fn apply(
        &self,
        key: &str,
        service: &dyn HostedService,
        name: &str,
        settings: &mut ServiceSettings,
    ) -> Result<(), String> {
        if self.schedule.is_some() && settings.schedule.is_none() {
            return Err(format!(
                "`{KEY}.{key}.schedule`: `{name}` is not a periodic service, and only a periodic \
                 service (`add_periodic`) runs on a schedule"
            ));
        }
        if self.cluster_wide.is_some() && settings.schedule.is_none() {
            return Err(format!(
                "`{KEY}.{key}.cluster_wide`: `{name}` is not a periodic service, and only a \
                 periodic service (`add_periodic`) has ticks to run cluster-wide"
            ));
        }
        let background = service.is_background();
        for (present, option) in [
            (self.restart.is_some(), "restart"),
            (self.heartbeat.is_some(), "heartbeat"),
            (self.cluster_singleton.is_some(), "cluster_singleton"),
        ] {
            if present && !background {
                return Err(format!(
                    "`{KEY}.{key}.{option}`: `{name}` is not a background service, and only a \
                     background service's `execute` can have a {option}"
                ));
            }
        }
        if self.start_timeout.is_some() {
            settings.start_timeout = self.start_timeout;
        }
        if self.stop_timeout.is_some() {
            settings.stop_timeout = self.stop_timeout;
        }
        if self.heartbeat.is_some() {
            settings.heartbeat = self.heartbeat;
        }
        if self.required_for_readiness.is_some() {
            settings.required_for_readiness = self.required_for_readiness;
        }
        if let Some(restart) = &self.restart {
            settings.restart = restart.apply(settings.restart.clone());
        }
        if self.schedule.is_some() {
            settings.schedule = self.schedule.clone();
        }
        if let Some(singleton) = &self.cluster_singleton {
            settings.singleton = Some(singleton.clone().into_singleton());
        }
        if let Some(ClusterWideSection(cluster_wide)) = &self.cluster_wide {
            settings.cluster_wide = cluster_wide.clone();
        }
        Ok(())
    }
}

impl RestartSection {
    fn apply(&self, code: Restart) -> Restart {
        let mut policy = match self.mode {
            None => code.clone(),
            Some(RestartMode::Never) => Restart::never(),
            Some(RestartMode::OnFailure) => Restart::on_failure(),
            Some(RestartMode::Always) => Restart::always(),
        };
        if self.mode.is_some() {
            // The code's tuning stays unless the section changes it too.
            policy = policy.tuned_as(&code);
        }
        let (initial, max) = policy.delays();
        policy = policy.backoff(
            self.initial_delay.unwrap_or(initial),
            self.max_delay.unwrap_or(max),
        );
        if let Some(jitter) = self.jitter {
            policy = policy.jitter(jitter);
        }
        let (restarts, within) = (policy.max_restarts(), policy.period());
        policy = policy.limit(
            self.max_restarts.unwrap_or(restarts),
            self.within.unwrap_or(within),
        );
        if let Some(stable) = self.reset_after {
            policy = policy.reset_after(stable);
        }
        policy
    }
}

/// Applies the `services` section to the records' settings.
pub(crate) fn apply(
    section: &ServicesSection,
    services: &[Arc<dyn HostedService>],
    names: &[Arc<str>],
    settings: &mut [Arc<ServiceSettings>],
) -> Result<(), HostError> {
    let mut problems = Vec::new();
    for (index, key, options) in match_keys(section, names)? {
        if let Err(problem) = options.apply(
            key,
            &*services[index],
            &names[index],
            Arc::make_mut(&mut settings[index]),
        ) {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(HostError::build(format!(
            "invalid configuration: {}",
            problems.join("; ")
        )))
    }
}

/// Compiles each periodic service's schedule into its record.
///
/// # Errors
///
/// An invalid schedule (a cron expression, a time zone): a build error
/// naming the service.
pub(crate) fn compile_schedules(records: &[Arc<ServiceRecord>]) -> Result<(), HostError> {
    let mut problems = Vec::new();
    for record in records {
        let Some(schedule) = &record.settings.schedule else {
            continue;
        };
        match schedule.compile(&record.name) {
            Ok(timetable) => record.set_schedule(ScheduleSlot::new(schedule.clone(), timetable)),
            Err(error) => problems.push(error.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(HostError::build(problems.join("; ")))
    }
}

/// Follows reloads of the `services` section: a periodic service whose
/// schedule changed runs on the new one from its next tick. A schedule
/// that does not compile is logged and the current one kept. `code` holds
/// each record's schedule as registered, which applies again when the
/// section no longer sets one.
pub(crate) fn follow_schedules(
    section: &ServicesSection,
    records: &[std::sync::Weak<ServiceRecord>],
    names: &[Arc<str>],
    code: &[Option<Schedule>],
) {
    let keyed = match_keys(section, names).unwrap_or_default();
    for (index, weak) in records.iter().enumerate() {
        let Some(record) = weak.upgrade() else {
            continue;
        };
        let (Some(slot), Some(registered)) = (record.schedule(), &code[index]) else {
            continue;
        };
        let wanted = keyed
            .iter()
            .find(|(matched, _, _)| *matched == index)
            .and_then(|(_, _, options)| options.schedule.clone())
            .unwrap_or_else(|| registered.clone());
        if slot.schedule() == wanted {
            continue;
        }
        match wanted.compile(&record.name) {
            Ok(timetable) if record.settings.cluster_wide.is_some() && !timetable.is_cron() => {
                tracing::error!(target: host_config::CONFIGURATION_TARGET,
                    service = %record.name, "`{}`: {wanted} cannot be cluster-wide: {}; keeping \
                    the current schedule", record.name, crate::build::cluster::INTERVAL_REFUSED);
            }
            Ok(timetable) => slot.replace(wanted, timetable),
            Err(error) => tracing::error!(target: host_config::CONFIGURATION_TARGET,
                service = %record.name, "{error}; keeping the current schedule"),
        }
    }
}
