//! Failover after a network partition: the leader cut off from its store
//! while the standby still reaches it.
//!
//! Each instance runs in a network namespace of the bench's own
//! (`host_test::netns`), the store's server in a third; the cut is a
//! blackhole route in the leader's namespace for the store's address. The
//! leader's renews time out, its term ends at its renew deadline, and the
//! standby takes the lease once it has expired: failover = the time the
//! standby printed that it leads − the time taken just before the cut.
//! Then the old leader is killed, the cut healed, and a fresh instance
//! started in its namespace as the next standby, so that the two
//! namespaces take turns leading.

use std::time::{Duration, SystemTime};

use host_test::netns::{Member, Network};

use super::{Backend, Cause, Failover, Instance, Plan, Random, pause_below};

/// Where the partitioned instances run, and the address of the store's
/// server that a cut takes away.
pub(crate) struct Partitioned<'n> {
    pub(crate) network: &'n Network,
    pub(crate) instances: [Member; 2],
    pub(crate) store_address: String,
}

/// `plan.failovers` partitions of the leader from the store of `backend`.
pub(crate) fn failovers(
    backend: &Backend,
    place: &Partitioned<'_>,
    plan: Plan,
    random: &mut Random,
) -> Vec<Failover> {
    let store = backend.label();
    let mut started = 0;
    let mut spawn = |member: &Member| {
        started += 1;
        Instance::spawn_in(
            format!("bench-{}-cut-{started}", std::process::id()),
            backend,
            &member.exec(),
        )
    };
    // The namespace of the leader: 0 or 1.
    let mut leading = 0;
    let mut leader = spawn(&place.instances[0]);
    let (mut token, _) = leader.leading(store);
    let mut standby = spawn(&place.instances[1]);
    standby.standing_by(store);
    let mut results = Vec::new();
    for _ in 0..plan.failovers {
        std::thread::sleep(random.pause(pause_below()));
        let cut_off = &place.instances[leading];
        let before = SystemTime::now();
        place.network.cut(cut_off, &place.store_address);
        let (next, at) = standby.leading(store);
        let took = at
            .duration_since(before)
            .unwrap_or_else(|_| standby.fail(store, "printed a time of leading before the cut"));
        assert!(
            next > token,
            "on the {store} store, the new term's fencing token {next} is not above {token}"
        );
        token = next;
        leader.process.kill();
        let _ = leader.process.reap(Duration::from_secs(10));
        place.network.heal(cut_off, &place.store_address);
        results.push(Failover {
            cause: Cause::Partition,
            took,
        });
        leader = standby;
        standby = spawn(cut_off);
        standby.standing_by(store);
        leading = 1 - leading;
    }
    results
}
