//! A cluster singleton's supervisor: stands by and campaigns, runs
//! `execute` while it leads, and releases the lease once the work has
//! returned.

use std::sync::{Arc, Mutex};

use tokio_util::task::AbortOnDropHandle;

use crate::ApplicationLifetime;
use crate::logging::LIFETIME_TARGET;
use crate::services::record::{Command, ServiceRecord, lock};
use crate::services::state::{Leadership, ServiceState};
use crate::supervision::balance::{self, Balance, HandOver};
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
    let _joined = election.balance.as_ref().map(Balance::join);
    // The last hand-over, which the member it went to did not take if this
    // instance leads again.
    let mut refused: Option<HandOver> = None;
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
        let handed = Arc::new(Mutex::new(None));
        let ended = {
            let _following = follow(record, &term);
            let _balancing = election
                .balance
                .as_ref()
                .map(|balance| balance_term(record, election, balance, refused.take(), &handed));
            runs.run(record, lifetime, Some(&term)).await
        };
        refused = lock(&handed).take();
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
    // Whether the last look found the lease free: a member that defers to
    // the singleton's preferred member tries only then.
    let mut seen_free = false;
    loop {
        if record.shared.winding_down() {
            return None;
        }
        let defers = election
            .balance
            .as_ref()
            .is_some_and(|balance| balance.defers(singleton));
        let round = if defers && !seen_free {
            election.look().await
        } else {
            election.try_lead().await
        };
        seen_free = matches!(round, Round::Free);
        match round {
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
            Round::Free => {
                failing = None;
                stand_by(record, election, None);
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

/// Counts the term in the group's balance and, once it has led for a lease,
/// hands it over (steps down) when the balance says so: the instance leads
/// more than its fair share and another member is the singleton's
/// preferred one. What it handed over, and to whom, goes to `handed`.
fn balance_term(
    record: &Arc<ServiceRecord>,
    election: &Election,
    balance: &Arc<Balance>,
    refused: Option<HandOver>,
    handed: &Arc<Mutex<Option<HandOver>>>,
) -> AbortOnDropHandle<()> {
    let mut leads = balance.leads();
    let (record, balance, handed) = (record.clone(), balance.clone(), handed.clone());
    let singleton = election.singleton.clone();
    AbortOnDropHandle::new(tokio::spawn(async move {
        tokio::time::sleep(balance::settle(&singleton)).await;
        loop {
            if let Some(hand_over) =
                balance.hand_over(singleton.name(), &mut leads, refused.as_ref())
            {
                tracing::info!(target: LIFETIME_TARGET, service = %record.name,
                    singleton = singleton.name(), to = %hand_over.to,
                    "`{}` hands `{}` over to `{}`, the instance that group `{}` prefers for it: \
                     this one leads more than its fair share", record.name, singleton.name(),
                    hand_over.to, balance.group());
                *lock(&handed) = Some(hand_over);
                record.step_down();
                // Counted as handed over until the term ends (this task is
                // dropped then).
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(singleton.retry_period_duration()).await;
        }
    }))
}
