//! The Redis store keeps the lease and claim contracts against a real
//! server (`HOST_TEST_REDIS_URL`; each test prints that it was skipped when
//! it is unset), turns away a term whose value was replaced, is what a
//! `redis://` URL names, and never shows a password.
#![cfg(feature = "redis")]

mod contract;

use std::sync::Arc;
use std::time::Duration;

use contract::Timings;
use host_cluster::redis::RedisOptions;
use host_cluster::{
    ClaimOutcome, ClaimStore, ClusterError, LeaseStore, RedisStore, cluster_store_for_url,
};
use host_test::redis_server::RedisServer;

/// Short: expiry is the server's, on this machine's clock.
const TIMINGS: Timings = Timings {
    ttl: Duration::from_secs(1),
    margin: Duration::from_millis(300),
};

/// The server, or `None` (and a line saying the test was skipped).
fn url(test: &str) -> Option<String> {
    let url = std::env::var("HOST_TEST_REDIS_URL").ok();
    if url.is_none() {
        println!("{test}: skipped, HOST_TEST_REDIS_URL is not set");
    }
    url
}

/// A key prefix of the test's own, so that runs never meet; its keys are
/// deleted when the test ends, passed or failed.
struct Fresh {
    url: String,
    prefix: String,
}

impl Fresh {
    fn new(url: &str, test: &str) -> Self {
        let prefix = format!("hc-test:{test}:{:08x}:", fastrand::u32(..));
        println!("{test}: prefix {prefix}");
        Self {
            url: url.to_owned(),
            prefix,
        }
    }

    fn options(&self) -> RedisOptions {
        RedisOptions::new(&self.url)
            .unwrap()
            .prefix(&self.prefix)
            .unwrap()
    }

    async fn store(&self) -> RedisStore {
        self.options().connect().await.unwrap()
    }

    /// A plain connection, to look at and tamper with the store's keys.
    fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let deleted = (|| -> redis::RedisResult<usize> {
            let mut raw = self.raw();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query(&mut raw)?;
            if keys.is_empty() {
                return Ok(0);
            }
            redis::cmd("DEL").arg(&keys).query(&mut raw)
        })();
        if let Err(error) = deleted {
            eprintln!("keys under {} were not deleted: {error}", self.prefix);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_keeps_the_lease_contract() {
    let Some(url) = url("lease contract") else {
        return;
    };
    let fresh = Fresh::new(&url, "leases");
    contract::every_check(Arc::new(fresh.store().await), "redis", TIMINGS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_keeps_the_claim_contract() {
    let Some(url) = url("claim contract") else {
        return;
    };
    let fresh = Fresh::new(&url, "claims");
    contract::claims::every_check(Arc::new(fresh.store().await), "redis", TIMINGS).await;
}

#[tokio::test]
async fn a_value_replaced_under_the_holder_is_another_term() {
    let Some(url) = url("replaced value") else {
        return;
    };
    let fresh = Fresh::new(&url, "replaced");
    let store = fresh.store().await;
    let lease = store
        .try_acquire("leader", "a", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    // The same holder, a later term: as after another instance of the same
    // id took the lease, or a failover handed it out again.
    let key = format!("{}lease:leader", fresh.prefix);
    let other = format!("{}:a", lease.token().get() + 1);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(&other)
        .arg("PX")
        .arg(30_000)
        .query(&mut fresh.raw())
        .unwrap();
    assert!(!store.renew(&lease, TIMINGS.ttl).await.unwrap());
    store.release(&lease).await.unwrap();
    let value: Option<String> = redis::cmd("GET").arg(&key).query(&mut fresh.raw()).unwrap();
    assert_eq!(value.as_deref(), Some(other.as_str()), "not released");
    let info = store.current("leader").await.unwrap().unwrap();
    assert_eq!(info.token().get(), lease.token().get() + 1);
}

#[tokio::test]
async fn a_key_the_store_did_not_write_is_an_error_naming_it() {
    let Some(url) = url("foreign key") else {
        return;
    };
    let fresh = Fresh::new(&url, "foreign");
    let store = fresh.store().await;
    let key = format!("{}lease:leader", fresh.prefix);
    // A value without a token, then a value without an expiry: neither is
    // this store's.
    for (value, expiry) in [("someone", Some(30_000)), ("3:someone", None)] {
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(value);
        if let Some(millis) = expiry {
            set.arg("PX").arg(millis);
        }
        let _: () = set.query(&mut fresh.raw()).unwrap();
        match store.current("leader").await {
            Err(ClusterError::Store { store: at, source }) => {
                assert!(at.starts_with("redis://"), "{at}");
                assert!(source.to_string().contains(&key), "{source}");
            }
            other => panic!("{value}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_redis_url_opens_a_store_on_the_server() {
    let Some(url) = url("store for url") else {
        return;
    };
    let fresh = Fresh::new(&url, "for-url");
    let store = cluster_store_for_url(&url, None, Some(&fresh.prefix)).unwrap();
    let lease = store
        .try_acquire("leader", "a", TIMINGS.ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.current("leader").await.unwrap().unwrap().holder(),
        "a"
    );
    // Under the prefix given, where a store of the same options sees it.
    let same = fresh.store().await;
    let info = same.current("leader").await.unwrap().unwrap();
    assert_eq!(info.token(), lease.token());
}

#[tokio::test]
async fn errors_and_debug_never_show_the_password() {
    let secret = "s3cret-pw";
    let closed = format!("redis://app:{secret}@127.0.0.1:1/2");
    let options = RedisOptions::new(&closed)
        .unwrap()
        .operation_timeout(Duration::from_secs(5));
    let debug = format!("{options:?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(debug.contains("redis://app@127.0.0.1:1/2"), "{debug}");
    let lazy = options.clone().connect_lazily();
    let debug = format!("{lazy:?}");
    assert!(!debug.contains(secret), "{debug}");
    let errors = [
        options.connect().await.unwrap_err(),
        lazy.current("leader").await.unwrap_err(),
        // A URL that does not parse is shown without its password.
        RedisStore::connect(&format!("redis://app:{secret}@127.0.0.1:99999/2"))
            .await
            .unwrap_err(),
    ];
    for error in errors {
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains(secret), "{text}");
            assert!(text.contains("redis://app@127.0.0.1:"), "{text}");
        }
    }
    // A store that connected shows its address, not its password (a
    // server without a password takes `AUTH` only with a user name it
    // knows, so the user is the default one).
    let Some(url) = url("password in Debug") else {
        return;
    };
    let with_password = url.replacen("redis://", &format!("redis://default:{secret}@"), 1);
    let store = RedisOptions::new(&with_password).unwrap().connect_lazily();
    let shown = match store.current("leader").await {
        Ok(_) => format!("{store:?}"),
        Err(error) => format!("{store:?} {error} {error:?}"),
    };
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("redis://default@"), "{shown}");
}

#[test]
fn its_types_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<RedisStore>();
    both::<RedisOptions>();
}

#[tokio::test]
async fn a_rediss_url_speaks_tls() {
    // A server that answers the TLS client hello in plain text: the
    // handshake fails at once, an error naming the rediss:// address, not
    // a panic or a hang for want of a TLS crypto provider (with the `redis`
    // feature alone, nothing else brings one).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = tokio::io::AsyncWriteExt::write_all(&mut socket, b"-ERR not tls\r\n").await;
        }
    });
    let store = RedisOptions::new(&format!("rediss://127.0.0.1:{port}/0"))
        .unwrap()
        .reconnect_retries(0)
        .operation_timeout(Duration::from_secs(20))
        .connect_lazily();
    let error = store.current("leader").await.unwrap_err().to_string();
    server.abort();
    assert!(
        error.contains(&format!("rediss://127.0.0.1:{port}/0")),
        "{error}"
    );
    assert!(!error.contains("operation timeout"), "{error}");
}

#[tokio::test]
async fn times_too_long_for_redis_are_taken_as_a_century() {
    let Some(url) = url("long times") else {
        return;
    };
    let fresh = Fresh::new(&url, "long");
    let store = fresh.store().await;
    let lease = store
        .try_acquire("leader", "a", Duration::MAX)
        .await
        .unwrap()
        .unwrap();
    assert!(store.renew(&lease, Duration::MAX).await.unwrap());
    let left = store.current("leader").await.unwrap().unwrap().expires_in();
    assert!(left > Duration::from_secs(99 * 365 * 24 * 3600), "{left:?}");
    let tick = contract::claims::tick(1);
    match store
        .try_claim("job", tick, "a", Some(Duration::MAX))
        .await
        .unwrap()
    {
        ClaimOutcome::Claimed(claim) => assert_eq!(claim.attempt(), 1),
        other => panic!("{other:?}"),
    }
    // Not recovered: its deadline is a century away.
    let found = store
        .try_claim("job", tick, "b", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(
        matches!(found, ClaimOutcome::Taken { ref holder, .. } if holder == "a"),
        "{found:?}"
    );
}

/// The store's connections: the clients of database `db` (which no other
/// test uses).
fn clients_of_db(raw: &mut redis::Connection, db: u32) -> Vec<String> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(raw).unwrap();
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == format!("db={db}")))
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_killed_connection_is_made_again_and_the_lease_kept() {
    let Some(url) = url("killed connection") else {
        return;
    };
    // A database of this test's own, to find its connection by.
    const DB: u32 = 13;
    // The URL without its database, if it names one.
    let base = match url.rsplit_once('/') {
        Some((head, db)) if !head.ends_with('/') && db.parse::<u32>().is_ok() => head,
        _ => url.trim_end_matches('/'),
    };
    let fresh = Fresh::new(&format!("{base}/{DB}"), "killed");
    let store = fresh.store().await;
    let lease = store
        .try_acquire("leader", "a", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let mut raw = redis::Client::open(base).unwrap().get_connection().unwrap();
    let ids = clients_of_db(&mut raw, DB);
    assert!(!ids.is_empty(), "the store's connection is listed");
    for id in ids {
        let _: () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query(&mut raw)
            .unwrap();
    }
    // The first call after the kill may fail; within a few the manager has
    // connected again, and the lease, kept by the server, is still ours.
    let mut renewed = None;
    for _ in 0..5 {
        match store.renew(&lease, Duration::from_secs(30)).await {
            Ok(held) => {
                renewed = Some(held);
                break;
            }
            Err(error) => println!("after the kill: {error}"),
        }
    }
    assert_eq!(renewed, Some(true));
    let info = store.current("leader").await.unwrap().unwrap();
    assert_eq!((info.holder(), info.token()), ("a", lease.token()));
    assert!(!clients_of_db(&mut raw, DB).is_empty(), "connected again");
}

/// The documented outcome of a Redis restart without persistence: the
/// holder learns at its next renew that its lease is gone, the lease is
/// free at once, and the token counter starts again (so tokens repeat:
/// why the Redis store is efficiency-grade, and a fence that keeps its own
/// highest token then rejects the new terms until they pass it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_persistence_loses_the_lease_and_the_tokens() {
    if url("restart").is_none() {
        return;
    }
    let Some(mut server) = RedisServer::start("restart") else {
        return;
    };
    let store = RedisOptions::new(&server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let ttl = Duration::from_secs(30);
    let first = store
        .try_acquire("billing", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    store.release(&first).await.unwrap();
    let before = store
        .try_acquire("billing", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.token().get(), 2);
    server.restart();
    // The store reconnects by itself; the first call may see the restart.
    let mut renewed = store.renew(&before, ttl).await;
    for _ in 0..50 {
        if renewed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        renewed = store.renew(&before, ttl).await;
    }
    assert!(!renewed.unwrap(), "the lease did not survive the restart");
    assert!(store.current("billing").await.unwrap().is_none());
    let after = store
        .try_acquire("billing", "b", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.token().get(), 1, "the counter started again");
    drop(server);
}
