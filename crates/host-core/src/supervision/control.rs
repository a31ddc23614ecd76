//! The runtime control handle: restart, pause and resume one background
//! service while the host runs.

use std::sync::Arc;
use std::sync::OnceLock;

use crate::HostError;
use crate::services::record::{Command, ServiceRecord, lock};
use crate::services::state::ServiceState;

/// Restarts, pauses and resumes one background service while the host
/// runs (an admin endpoint's, or an operator's, handle).
///
/// Resolvable from the container and from [`Host::control`](crate::Host::control).
/// Each request asks the service's run to end through its stopping token;
/// a run that has not returned within the service's stop timeout is
/// aborted. The requests return at once, before the run has ended; watch
/// [`ServiceStates`](crate::ServiceStates) (or its events) for the outcome.
///
/// - **restart**: the run ends and a new one begins at once (not counted
///   against the restart limit). A service that completed, or failed while
///   the host kept running ([`Ignore`](crate::BackgroundServiceFailure::Ignore)),
///   runs again.
/// - **pause**: the run ends and the service stays
///   [`Paused`](ServiceState::Paused) (healthy: it was asked to) while the
///   host runs; a restart that was waiting out its backoff waits for the
///   resume.
/// - **resume**: a paused service runs again.
/// - **run now** (a periodic service): one run out of its schedule.
///
/// A request is refused (an error saying why) for a name no service has, a
/// service that is not a background service, or one the host is stopping.
///
/// # Examples
///
/// ```
/// # use host_core::{Host, ServiceControl};
/// # let mut builder = Host::builder();
/// # builder.handle_signals(false).default_logging(false);
/// let host = builder.build().unwrap();
/// let control: ServiceControl = host.control();
/// let error = control.pause("app::Nothing").unwrap_err();
/// assert!(error.to_string().contains("no service is called `app::Nothing`"));
/// ```
#[derive(Clone)]
pub struct ServiceControl {
    inner: Arc<Inner>,
}

struct Inner {
    records: OnceLock<Vec<Arc<ServiceRecord>>>,
}

impl ServiceControl {
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                records: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn set_records(&self, records: Vec<Arc<ServiceRecord>>) {
        let _ = self.inner.records.set(records);
    }

    /// Ends the service's run and begins a new one.
    ///
    /// # Errors
    ///
    /// See [the type's docs](Self); the error names the service.
    pub fn restart(&self, name: &str) -> Result<(), HostError> {
        let record = self.background(name, "restart")?;
        match record.state() {
            ServiceState::Completed | ServiceState::Failed(_) if !record.execute_running() => {
                record
                    .respawn()
                    .map_err(|why| refused("restart", &record, &why))?;
                tracing::info!(target: crate::LIFETIME_TARGET, service = %record.name,
                    "`{}` runs again on request", record.name);
                Ok(())
            }
            ServiceState::Paused => self.resume(name),
            _ => self.end_run(&record, Command::Restart, "restart"),
        }
    }

    /// Ends the service's run and keeps it stopped until
    /// [`resume`](Self::resume).
    ///
    /// # Errors
    ///
    /// See [the type's docs](Self); the error names the service.
    pub fn pause(&self, name: &str) -> Result<(), HostError> {
        let record = self.background(name, "pause")?;
        match record.state() {
            ServiceState::Paused => Ok(()),
            ServiceState::Completed | ServiceState::Failed(_) | ServiceState::NotStarted => Err(
                refused("pause", &record, &format!("it is {}", record.state())),
            ),
            ServiceState::Restarting { .. } => {
                {
                    let mut run = lock(&record.run);
                    if run.stop_begun {
                        return Err(refused("pause", &record, "the host is stopping it"));
                    }
                    run.paused = true;
                }
                record.set_state(ServiceState::Paused);
                record.wake_supervisor();
                Ok(())
            }
            _ => self.end_run(&record, Command::Pause, "pause"),
        }
    }

    /// Lets a paused service run again.
    ///
    /// # Errors
    ///
    /// See [the type's docs](Self); also when the service is not paused.
    pub fn resume(&self, name: &str) -> Result<(), HostError> {
        let record = self.background(name, "resume")?;
        {
            let mut run = lock(&record.run);
            if run.stop_begun {
                return Err(refused("resume", &record, "the host is stopping it"));
            }
            if !run.paused {
                return Err(refused(
                    "resume",
                    &record,
                    &format!("it is not paused (it is {})", record.state()),
                ));
            }
            run.paused = false;
        }
        tracing::info!(target: crate::LIFETIME_TARGET, service = %record.name,
            "`{}` resumed", record.name);
        record.wake_supervisor();
        Ok(())
    }

    /// Runs a periodic service now, out of its schedule (still under its
    /// overlap policy: with a run going, `Skip` skips it).
    ///
    /// # Errors
    ///
    /// No such service, or it is not a periodic service.
    pub fn run_now(&self, name: &str) -> Result<(), HostError> {
        let record = self.background(name, "run")?;
        let Some(slot) = record.schedule() else {
            return Err(refused(
                "run",
                &record,
                "it is not a periodic service (`add_periodic`)",
            ));
        };
        slot.run_now.notify_one();
        Ok(())
    }

    /// Makes a cluster singleton that leads step down: its run ends, its
    /// lease is released once `execute` has returned, and this instance
    /// waits two retry periods before campaigning again, so that another
    /// instance takes over.
    ///
    /// # Errors
    ///
    /// No such background service, it is not a cluster singleton, or it
    /// does not lead here.
    pub fn step_down(&self, name: &str) -> Result<(), HostError> {
        let record = self.background(name, "step down")?;
        if record.election.get().is_none() {
            return Err(refused(
                "step down",
                &record,
                "it is not a cluster singleton (`cluster_singleton`)",
            ));
        }
        if record.step_down() {
            Ok(())
        } else {
            Err(refused(
                "step down",
                &record,
                "this instance does not lead it",
            ))
        }
    }

    fn end_run(
        &self,
        record: &Arc<ServiceRecord>,
        command: Command,
        action: &str,
    ) -> Result<(), HostError> {
        if record.end_run(command, record.stop_timeout()) {
            Ok(())
        } else {
            Err(refused(action, record, "the host is stopping it"))
        }
    }

    /// The background service called `name`.
    fn background(&self, name: &str, action: &str) -> Result<Arc<ServiceRecord>, HostError> {
        let records = self.inner.records.get().map(Vec::as_slice).unwrap_or(&[]);
        let Some(record) = records.iter().find(|record| &*record.name == name) else {
            let known: Vec<&str> = records.iter().map(|record| &*record.name).collect();
            return Err(HostError::control(format!(
                "cannot {action} `{name}`: no service is called `{name}` (the services: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        };
        if !record.service.is_background() {
            return Err(refused(
                action,
                record,
                "it is not a background service (only an `execute` can be restarted, paused or \
                 resumed)",
            ));
        }
        if record.shared.winding_down() {
            // No restart, nor any other change, once the stop has begun
            // (or been asked for): the stop settles every service.
            return Err(refused(action, record, "the host is stopping it"));
        }
        Ok(record.clone())
    }
}

fn refused(action: &str, record: &ServiceRecord, why: &str) -> HostError {
    HostError::control(format!("cannot {action} `{}`: {why}", record.name))
}

impl std::fmt::Debug for ServiceControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .inner
            .records
            .get()
            .map(|records| records.iter().map(|record| &*record.name).collect())
            .unwrap_or_default();
        f.debug_struct("ServiceControl")
            .field("services", &names)
            .finish()
    }
}
