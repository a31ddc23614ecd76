//! A cluster singleton's supervisor: stands by and campaigns, runs
//! `execute` while it leads, and releases the lease once the work has
//! returned.

use std::sync::Arc;

use tokio_util::task::AbortOnDropHandle;

use crate::ApplicationLifetime;
use crate::logging::LIFETIME_TARGET;
use crate::services::record::{Command, ServiceRecord};
use crate::services::state::{Leadership, ServiceState};
use crate::supervision::election::{Election, Round, TRANSITIONS_METRIC, Term, campaign_pause};
use crate::supervision::supervisor::{Ended, Runs, wait};

/// Campaigns and leads until the host stops the service, or the service is
/// done (completed, or failed beyond its policy: the failure was reported
/// as the run ended, and the lease is released here, before the stop that
/// the failure may ask for can end, as that stop awaits this task).
pub(super) async fn lead(
    record: &Arc<ServiceRecord>,
    lifetime: &ApplicationLifetime,
    election: &Election,
    runs: &mut Runs,
) {
    let retry = election.singleton.retry_period_duration();
    // Before the next try: none at first; after a lost term a retry
    // period; after a step-down two, so that every other instance (which
    // tries every retry period and up to a fifth more) has tried first.
    let mut pause = None;
    loop {
        stand_by(record, election, None);
        if let Some(pause) = pause.take()
            && !wait(record, Some(pause), None).await
        {
            return;
        }
        let Some(term) = campaign(record, election).await else {
            return;
        };
        let lease = term.lease.clone();
        let ended = {
            let _following = follow(record, &term);
            runs.run(record, lifetime, Some(&term)).await
        };
        let lost = term.lost();
        // Renewing stops before the release: the release is the term's end.
        drop(term);
        election.release(&lease).await;
        let singleton = election.singleton.name();
        metrics::counter!(TRANSITIONS_METRIC, "singleton" => singleton.to_owned(), "to" => "standby")
            .increment(1);
        match ended {
            Ended::Done => {
                tracing::info!(target: LIFETIME_TARGET, service = %record.name, singleton,
                    token = lease.token().get(),
                    "`{}` no longer leads `{singleton}`: its work has returned; lease released",
                    record.name);
                record.set_leadership(Some(Leadership {
                    singleton: singleton.into(),
                    instance: election.holder.clone(),
                    leading: false,
                    leader: None,
                    token: None,
                }));
                return;
            }
            Ended::TermOver(Command::StepDown) => {
                tracing::info!(target: LIFETIME_TARGET, service = %record.name, singleton,
                    token = lease.token().get(),
                    "`{}` stepped down from leading `{singleton}`; lease released",
                    record.name);
                pause = Some(retry * 2);
            }
            Ended::TermOver(_) => {
                let reason =
                    lost.map_or_else(|| "its term was revoked".to_owned(), |l| l.to_string());
                tracing::warn!(target: LIFETIME_TARGET, service = %record.name, singleton,
                    token = lease.token().get(),
                    "`{}` lost the lead of `{singleton}`: {reason}; its work has returned, \
                     campaigning again", record.name);
                pause = Some(campaign_pause(retry));
            }
        }
    }
}

/// Tries to take the lease every retry period (and up to a fifth more)
/// until it leads, standing by meanwhile; `None` when the host stops the
/// service first.
async fn campaign(record: &Arc<ServiceRecord>, election: &Election) -> Option<Term> {
    let singleton = election.singleton.name();
    let retry = election.singleton.retry_period_duration();
    let mut failing: Option<String> = None;
    loop {
        if record.shared.winding_down() {
            return None;
        }
        match election.try_lead().await {
            Round::Leading(term) => {
                tracing::info!(target: LIFETIME_TARGET, service = %record.name, singleton,
                    token = term.token().get(), instance = %election.holder,
                    "`{}` leads `{singleton}` (fencing token {})", record.name, term.token());
                metrics::counter!(TRANSITIONS_METRIC, "singleton" => singleton.to_owned(), "to" => "leader")
                    .increment(1);
                record.set_leadership(Some(Leadership {
                    singleton: singleton.into(),
                    instance: election.holder.clone(),
                    leading: true,
                    leader: Some(election.holder.clone()),
                    token: Some(term.token().get()),
                }));
                record.advance(
                    |state| matches!(state, ServiceState::Standby),
                    ServiceState::Running,
                );
                return Some(term);
            }
            Round::Standby(info) => {
                failing = None;
                let leader = info.as_ref().map(|info| Arc::<str>::from(info.holder()));
                let seen = record
                    .status()
                    .leadership
                    .and_then(|leadership| leadership.leader);
                if leader.is_some() && leader != seen {
                    tracing::info!(target: LIFETIME_TARGET, service = %record.name, singleton,
                        leader = leader.as_deref().unwrap_or_default(),
                        "`{}` stands by: `{}` leads `{singleton}`", record.name,
                        leader.as_deref().unwrap_or_default());
                }
                stand_by(record, election, info.as_ref());
            }
            Round::Failed(error) => {
                if failing.as_deref() != Some(error.as_str()) {
                    tracing::warn!(target: LIFETIME_TARGET, service = %record.name, singleton,
                        "`{}` cannot campaign for `{singleton}`: {error}; trying again every \
                         {retry:?}", record.name);
                }
                failing = Some(error);
            }
        }
        if !wait(record, Some(campaign_pause(retry)), None).await {
            return None;
        }
    }
}

/// Shows the service standing by, with who leads when known.
fn stand_by(record: &ServiceRecord, election: &Election, leader: Option<&host_cluster::LeaseInfo>) {
    // The leadership first: the state's event carries it.
    let previous = record.status().leadership;
    record.set_leadership(Some(Leadership {
        singleton: election.singleton.name().into(),
        instance: election.holder.clone(),
        leading: false,
        leader: leader.map(|info| Arc::from(info.holder())).or_else(|| {
            previous
                .as_ref()
                .filter(|p| !p.leading)
                .and_then(|p| p.leader.clone())
        }),
        token: leader.map(|info| info.token().get()).or_else(|| {
            previous
                .as_ref()
                .filter(|p| !p.leading)
                .and_then(|p| p.token)
        }),
    }));
    record.advance(
        |state| {
            matches!(
                state,
                ServiceState::Running
                    | ServiceState::Ready
                    | ServiceState::Starting
                    | ServiceState::Restarting { .. }
                    | ServiceState::Hung
            )
        },
        ServiceState::Standby,
    );
}

/// Ends the run in progress when the term is lost: it must return within
/// its stop timeout, or it is aborted and named.
fn follow(record: &Arc<ServiceRecord>, term: &Term) -> AbortOnDropHandle<()> {
    let revoked = term.revoked.clone();
    let record = record.clone();
    AbortOnDropHandle::new(tokio::spawn(async move {
        revoked.cancelled().await;
        record.end_run(Command::Revoked, record.stop_timeout());
    }))
}
