//! The etcd store keeps the lease and claim contracts on an etcd of the
//! test's own (one member, and three members losing one, the Raft leader
//! included), logs in, speaks TLS, is what an `etcd://` URL names, and
//! never shows a password. Each test starts its own servers; without the
//! `etcd` binary it prints that it was skipped.
#![cfg(feature = "etcd")]

mod contract;

use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::Timings;
use host_cluster::etcd::EtcdOptions;
use host_cluster::{
    ClaimOutcome, ClaimStore, ClusterError, EtcdStore, LeaseStore, cluster_store_for_url,
};
use host_test::{EtcdCluster, EtcdLauncher};

/// etcd leases count whole seconds; an expired lease's keys go when the
/// leader's lessor next looks (every half second), through Raft: seen
/// gone 1.3 to 1.5 s after a 1 s lease began, so the margin leaves a
/// second for a loaded machine.
const TIMINGS: Timings = Timings {
    ttl: Duration::from_secs(1),
    margin: Duration::from_millis(1500),
};

/// A cluster of `members`, or `None` (and a line saying the test was
/// skipped).
fn start(test: &str, members: usize) -> Option<EtcdCluster> {
    let cluster = EtcdLauncher::new().members(members).start();
    if cluster.is_none() {
        println!("{test}: skipped, etcd cannot be started");
    }
    cluster
}

async fn store(url: &str) -> EtcdStore {
    EtcdOptions::new(url)
        .unwrap()
        .prefix(&format!("test-{:08x}/", fastrand::u32(..)))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_store_keeps_the_lease_contract() {
    let Some(etcd) = start("lease contract", 1) else {
        return;
    };
    contract::every_check(Arc::new(store(&etcd.url()).await), "etcd", TIMINGS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_store_keeps_the_claim_contract() {
    let Some(etcd) = start("claim contract", 1) else {
        return;
    };
    contract::claims::every_check(Arc::new(store(&etcd.url()).await), "etcd", TIMINGS).await;
}

/// A member of three that does not lead, so that killing it leaves the
/// leader in place.
fn a_follower(etcd: &EtcdCluster) -> usize {
    (etcd.leader() + 1) % 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contracts_hold_with_a_member_down_and_after_it_is_back() {
    let Some(mut etcd) = start("member down", 3) else {
        return;
    };
    let store = Arc::new(store(&etcd.url()).await);
    let down = a_follower(&etcd);
    etcd.kill(down);
    println!("member down: killed member {down}");
    contract::every_check(store.clone(), "down", TIMINGS).await;
    contract::claims::every_check(store.clone(), "down", TIMINGS).await;
    etcd.restart(down);
    println!("member down: member {down} is back");
    contract::every_check(store.clone(), "back", TIMINGS).await;
    contract::claims::every_check(store, "back", TIMINGS).await;
}

/// One renew of the holder: when it started, how long it took, what it
/// said.
#[derive(Debug)]
struct Renewal {
    started: Instant,
    took: Duration,
    held: Result<bool, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_raft_leader_never_makes_two_holders() {
    let Some(mut etcd) = start("leader killed", 3) else {
        return;
    };
    let ttl = Duration::from_secs(2);
    let timeout = Duration::from_secs(3);
    // The leader first, so that the stores talk to the member killed.
    let mut endpoints = etcd.endpoints();
    endpoints.rotate_left(etcd.leader());
    let url = format!("etcd://{}", endpoints.join(","));
    let options = |prefix: &str| {
        EtcdOptions::new(&url)
            .unwrap()
            .prefix(prefix)
            .unwrap()
            .operation_timeout(timeout)
    };
    let prefix = format!("test-{:08x}/", fastrand::u32(..));
    let holder = options(&prefix).connect().await.unwrap();
    let contender = options(&prefix).connect().await.unwrap();
    let lease = holder
        .try_acquire("leader", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    let renewing = tokio::spawn(async move {
        let mut renewals = Vec::new();
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until {
            let started = Instant::now();
            let held = holder.renew(&lease, ttl).await.map_err(|e| e.to_string());
            let lost = held == Ok(false);
            renewals.push(Renewal {
                started,
                took: started.elapsed(),
                held,
            });
            if lost {
                break;
            }
            tokio::time::sleep(ttl / 4).await;
        }
        renewals
    });
    let contending = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until {
            if let Ok(Some(_)) = contender.try_acquire("leader", "b", ttl).await {
                return Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = etcd.kill_leader();
    println!("leader killed: killed member {killed}");
    let renewals = renewing.await.unwrap();
    let taken = contending.await.unwrap();
    println!("leader killed: renewals {renewals:#?}, taken by b at {taken:?}");
    for renewal in &renewals {
        assert!(
            renewal.took < timeout + Duration::from_secs(1),
            "{renewal:?}"
        );
        if renewal.held == Ok(true) {
            // Renewed at or after `started`, so held until `ttl` past it.
            if let Some(taken) = taken {
                assert!(renewal.started + ttl <= taken, "two holders: {renewal:?}");
            }
        }
    }
    match taken {
        None => assert!(
            renewals
                .iter()
                .rev()
                .any(|renewal| renewal.held == Ok(true)),
            "nobody holds it"
        ),
        Some(_) => assert!(
            renewals.iter().any(|renewal| renewal.held != Ok(true)),
            "b took it while a renewed it each time"
        ),
    }
}

#[tokio::test]
async fn a_user_logs_in_and_a_wrong_password_is_a_clear_error() {
    let Some(etcd) = start("login", 1) else {
        return;
    };
    let password = "s3cret-pw";
    let enabled = etcd
        .etcdctl(&["user", "add", &format!("root:{password}")])
        .and_then(|_| etcd.etcdctl(&["auth", "enable"]));
    if let Err(why) = enabled {
        println!("login: skipped, etcdctl cannot turn logins on: {why}");
        return;
    }
    let url = etcd
        .url()
        .replacen("etcd://", &format!("etcd://root:{password}@"), 1);
    let store = EtcdOptions::new(&url).unwrap().connect().await.unwrap();
    let lease = store
        .try_acquire("leader", "a", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    // The login token lapses unused (after a second here); the store logs
    // in again by itself.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let info = store.current("leader").await.unwrap().unwrap();
    assert_eq!(info.token(), lease.token());

    for (url, expected) in [
        (etcd.url(), "user name is empty"),
        (
            etcd.url().replacen("etcd://", "etcd://root:wrong-pw@", 1),
            "logging in as `root` failed",
        ),
    ] {
        let error = EtcdOptions::new(&url).unwrap().connect().await.unwrap_err();
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(text.contains(expected), "{text}");
            assert!(text.contains(&etcd.endpoints()[0]), "{text}");
            assert!(
                !text.contains("wrong-pw") && !text.contains(password),
                "{text}"
            );
        }
    }
}

/// A CA, and a certificate it signed for 127.0.0.1, as PEM files in `dir`:
/// (CA, certificate, key).
fn certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let certificate = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("member.pem"),
        dir.join("member-key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, certificate.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test]
async fn an_etcds_url_checks_the_member_against_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, certificate, key) = certificates(dir.path());
    let Some(etcd) = EtcdLauncher::new().tls(&certificate, &key).start() else {
        println!("tls: skipped, etcd cannot be started");
        return;
    };
    let url = format!("{}/tls/?ca={}", etcd.url(), ca.display());
    assert!(url.starts_with("etcds://"), "{url}");
    let store = EtcdOptions::new(&url).unwrap().connect().await.unwrap();
    let lease = store
        .try_acquire("leader", "a", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert!(store.renew(&lease, TIMINGS.ttl).await.unwrap());
    // Without the CA, the web's roots do not vouch for the member.
    let error = EtcdOptions::new(&etcd.url())
        .unwrap()
        .operation_timeout(Duration::from_secs(3))
        .connect()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&etcd.url()), "{error}");
}

#[tokio::test]
async fn an_unreachable_member_is_a_bounded_error_without_the_password() {
    let secret = "s3cret-pw";
    let url = format!("etcd://root:{secret}@127.0.0.1:1,127.0.0.1:2/app/");
    let options = EtcdOptions::new(&url)
        .unwrap()
        .operation_timeout(Duration::from_secs(2));
    let lazy = options.clone().connect_lazily();
    for debug in [format!("{options:?}"), format!("{lazy:?}")] {
        assert!(!debug.contains(secret), "{debug}");
        assert!(
            debug.contains("etcd://root@127.0.0.1:1,127.0.0.1:2/app/"),
            "{debug}"
        );
    }
    let started = Instant::now();
    let errors = [
        options.connect().await.unwrap_err(),
        lazy.current("leader").await.unwrap_err(),
        lazy.try_acquire("leader", "a", TIMINGS.ttl)
            .await
            .unwrap_err(),
    ];
    // Each bounded by the operation timeout: generously, all three.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    for error in errors {
        assert!(matches!(error, ClusterError::Store { .. }), "{error:?}");
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains(secret), "{text}");
            assert!(
                text.contains("etcd://root@127.0.0.1:1,127.0.0.1:2/app/"),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn an_etcd_url_opens_a_store_on_the_cluster() {
    let Some(etcd) = start("store for url", 1) else {
        return;
    };
    let store = cluster_store_for_url(&etcd.url(), None, Some("by-url/")).unwrap();
    let lease = store
        .try_acquire("leader", "a", TIMINGS.ttl)
        .await
        .unwrap()
        .unwrap();
    // Under the prefix given, where a store of the same prefix sees it.
    let same = EtcdOptions::new(&etcd.url())
        .unwrap()
        .prefix("by-url/")
        .unwrap()
        .connect()
        .await
        .unwrap();
    let info = same.current("leader").await.unwrap().unwrap();
    assert_eq!((info.holder(), info.token()), ("a", lease.token()));
    assert!(cluster_store_for_url(&etcd.url(), Some("public"), None).is_err());
}

#[test]
fn its_types_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<EtcdStore>();
    both::<EtcdOptions>();
}

#[tokio::test]
async fn a_job_name_with_a_slash_keeps_its_claims_apart() {
    let Some(etcd) = start("slash", 1) else {
        return;
    };
    let store = store(&etcd.url()).await;
    let tick = contract::claims::tick;
    for job in ["a", "a/0", "a%2F0"] {
        let outcome = store.try_claim(job, tick(1), "x", None).await.unwrap();
        assert!(
            matches!(outcome, ClaimOutcome::Claimed(_)),
            "{job}: {outcome:?}"
        );
    }
    // Purging `a` leaves `a/0`'s and `a%2F0`'s ticks, which would sort
    // among `a`'s keys if the slash were kept as is.
    assert_eq!(store.purge("a", tick(5)).await.unwrap(), 1);
    for job in ["a/0", "a%2F0"] {
        let outcome = store.try_claim(job, tick(1), "y", None).await.unwrap();
        assert!(
            matches!(outcome, ClaimOutcome::Taken { .. }),
            "{job}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_key_the_store_did_not_write_is_an_error_naming_it() {
    let Some(etcd) = start("foreign", 1) else {
        return;
    };
    let store = store(&etcd.url()).await;
    let key = format!("{}lease/leader", store.prefix());
    if let Err(why) = etcd.etcdctl(&["put", &key, "someone"]) {
        println!("foreign: skipped, etcdctl cannot write: {why}");
        return;
    }
    // Not attached to an etcd lease: not this store's.
    match store.current("leader").await {
        Err(ClusterError::Store { store: at, source }) => {
            assert!(at.starts_with("etcd://"), "{at}");
            assert!(source.to_string().contains(&key), "{source}");
        }
        other => panic!("{other:?}"),
    }
}
