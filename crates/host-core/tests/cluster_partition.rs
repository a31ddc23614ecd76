//! A network partition between the leader and the lease store, with
//! network namespaces of the test's own (`host_test::netns`; root and `ip`
//! needed, else the test prints that it was skipped): a PostgreSQL server
//! of the test's own runs in a server namespace and listens on two
//! addresses, one for the lease store and one for the fenced work table;
//! three instances (this test binary's `child` test, the harness in
//! `common/fenced/`) run in three namespaces of their own. The leader is
//! cut off from the store's address only, so its fenced writes still
//! reach the database: its term ends at its renew deadline (its work sees
//! the token cancelled), the fence rejects its later writes, another
//! instance takes over; after the heal one instance leads, and no two
//! terms' accepted work overlapped.
//!
//! One server with two addresses, rather than two servers: what the cut
//! must show is that the leader loses the lock service while the target
//! stays reachable, and the fence in the target's database is the one
//! that knows the lease (the PostgreSQL store's own table).
//!
//! On etcd, three etcd members of the test's own run in the server
//! namespace on its first address (a port each), the PostgreSQL target on
//! its second; the leader is cut off from the members' address, so from
//! all three at once (a quorum it cannot reach, as a partition between an
//! instance and its etcd cluster is).
#![cfg(unix)]

#[path = "common/fenced/mod.rs"]
mod fenced;

use std::time::{Duration, Instant};

use fenced::{Cluster, OwnPostgres, Store};
use host_test::netns::{Member, Network};
use host_test::{EtcdCluster, EtcdLauncher};

#[test]
fn child() {
    fenced::child();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_store_is_fenced_and_replaced() {
    const TEST: &str = "partition";
    let Some(mut network) = Network::new(TEST) else {
        return;
    };
    let server = network.add("db");
    let store_address = server.address.clone();
    let target_address = network.add_address(&server);
    let addresses = [store_address.clone(), target_address.clone()];
    let Some(db) = OwnPostgres::start_at(TEST, &addresses, 5432, &server.exec()) else {
        return;
    };
    let store = Store::postgres(&db.url_at(&store_address));
    let cluster =
        Cluster::reached_at(&db.socket_url(), &db.url_at(&target_address), store, TEST).await;
    cut_off_the_leader(&mut network, cluster, &store_address, Holders::Postgres).await;
    drop(db);
    drop(network);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_etcd_is_fenced_and_replaced() {
    const TEST: &str = "etcdpartition";
    let Some(mut network) = Network::new(TEST) else {
        return;
    };
    let server = network.add("srv");
    let etcd_address = server.address.clone();
    let target_address = network.add_address(&server);
    let Some(db) = OwnPostgres::start_at(
        TEST,
        std::slice::from_ref(&target_address),
        5432,
        &server.exec(),
    ) else {
        return;
    };
    let Some(etcd) = EtcdLauncher::new()
        .members(3)
        .inside(&server.exec(), &etcd_address)
        .start()
    else {
        println!("{TEST}: skipped, etcd cannot be started");
        return;
    };
    let store = Store::etcd(&etcd.url(), TEST);
    let cluster =
        Cluster::reached_at(&db.socket_url(), &db.url_at(&target_address), store, TEST).await;
    cut_off_the_leader(&mut network, cluster, &etcd_address, Holders::Etcd(&etcd)).await;
    drop(etcd);
    drop(db);
    drop(network);
}

/// Where the test reads who holds the lease.
enum Holders<'a> {
    /// The PostgreSQL store's table, through the target's server.
    Postgres,
    /// The etcd store's key, with `etcdctl` run inside the server's
    /// namespace (the test's own cannot reach the members).
    Etcd(&'a EtcdCluster),
}

impl Holders<'_> {
    async fn read(&self, cluster: &Cluster) -> Vec<(String, i64)> {
        match self {
            Self::Postgres => cluster.holders().await,
            Self::Etcd(etcd) => {
                let Store::Etcd { prefix, .. } = &cluster.store else {
                    unreachable!("an etcd store");
                };
                let key = format!("{prefix}lease/{}", fenced::LEASE);
                let fields = etcd
                    .etcdctl(&["get", &key, "-w", "fields"])
                    .unwrap_or_else(|error| panic!("etcdctl get {key}: {error}"));
                etcd_holder(&fields).into_iter().collect()
            }
        }
    }
}

/// The holder (the key's value) and token (its create revision) in
/// `etcdctl get -w fields` output, if the key exists.
fn etcd_holder(fields: &str) -> Option<(String, i64)> {
    let field = |name: &str| {
        fields.lines().find_map(|line| {
            let (key, value) = line.split_once(" : ")?;
            (key == format!("\"{name}\"")).then(|| value.trim().to_owned())
        })
    };
    let token = field("CreateRevision")?.parse().ok()?;
    let holder = field("Value")?.trim_matches('"').to_owned();
    Some((holder, token))
}

/// Three instances in namespaces of their own lead in turn; the leader is
/// cut off from `store_address` alone, then healed. Checks the term's end
/// at the renew deadline, the fence turning the cut-off leader's writes
/// away, another instance taking over, and after the heal one holder whose
/// term alone writes, no two terms' accepted work overlapping.
async fn cut_off_the_leader(
    network: &mut Network,
    mut cluster: Cluster,
    store_address: &str,
    holders: Holders<'_>,
) {
    let test = cluster.test;
    let members: Vec<Member> = ["a", "b", "c"].map(|id| network.add(id)).into();
    let a = cluster.start_under("a", &members[0].exec());
    let first = cluster.leading_token(a);
    for (index, id) in [(1, "b"), (2, "c")] {
        let standby = cluster.start_under(id, &members[index].exec());
        cluster.wait_for(standby, "stands by");
    }
    cluster.until_written(first).await;

    network.cut(&members[0], store_address);
    let cut = Instant::now();
    // Its renews time out: the term ends at the renew deadline (700 ms);
    // generous against a loaded machine.
    cluster.wait_for(a, &format!("LOST {first} "));
    let lost_after = cut.elapsed();
    assert!(
        lost_after < Duration::from_secs(5),
        "lost after {lost_after:?}"
    );
    // Another instance takes over once the lease (1 s; on etcd up to half
    // a second more) expired, at its next try (200 ms).
    let next = cluster.until_written_after(first).await;
    let took = cut.elapsed();
    assert!(took < Duration::from_secs(10), "took over after {took:?}");
    // The cut-off leader still reaches the target: the fence turns its
    // next write away, and its work returns.
    cluster.wait_for(a, &format!("REJECTED {first} "));
    cluster.wait_for(a, "lost the lead of `writer`");

    network.heal(&members[0], store_address);
    let healed = cluster.now().await;
    // A few leases after the heal: one instance leads, and only its term
    // wrote since.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let holders = holders.read(&cluster).await;
    let terms = cluster.assert_no_overlap().await;
    let since: Vec<_> = terms.iter().filter(|term| term.last > healed).collect();
    assert_eq!(holders.len(), 1, "holders after the heal: {holders:?}");
    assert_eq!(since.len(), 1, "terms that wrote after the heal: {terms:?}");
    assert_eq!(since[0].token, holders[0].1, "{holders:?} {terms:?}");
    assert!(since[0].token >= next.token, "{terms:?}");
    assert_eq!(
        cluster.lines(a, "LEADING").len(),
        1,
        "the fenced instance's work has returned for good"
    );
    println!(
        "{test}: token {first} lost {lost_after:?} after the cut, token {} wrote {took:?} after \
         it; {:?}",
        next.token,
        cluster.lines(a, "REJECTED")
    );
    cluster.finish().await;
}
