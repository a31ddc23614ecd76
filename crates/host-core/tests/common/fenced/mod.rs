//! The process harness of the cluster-singleton tests: three (or more)
//! real processes of the test binary's `child` test lead one singleton in
//! turn on a lease store (PostgreSQL, the file lock, Redis or etcd), and the
//! leader's work writes through a PostgreSQL fence into a table of the
//! test's own, so that every test can check from the accepted writes that
//! no two terms' work overlapped.
//!
//! A test binary that uses it includes it with
//! `#[path = "common/fenced/mod.rs"] mod fenced;` (not through
//! `common/mod.rs`, which every other test binary includes) and has a
//! `#[test] fn child() { fenced::child(); }`.
#![allow(dead_code, unreachable_pub, unused_imports)]

mod cluster;
mod configured;
mod redis_prefix;
pub mod scenarios;
mod store;
mod terms;
mod writer;

pub use cluster::{Cluster, create_schema};
pub use configured::{Idle, leading_as_configured};
pub use host_test::postgres_server::PostgresServer as OwnPostgres;
pub use redis_prefix::RedisPrefix;
pub use store::Store;
pub use terms::Term;
pub use writer::{Conduct, Timings, child};

/// The lease every instance campaigns for, and the fence's name for it.
pub const LEASE: &str = "writer";

/// The PostgreSQL server of `HOST_TEST_POSTGRES_URL`, or `None` (and a
/// line saying the test was skipped).
pub fn postgres_url(test: &str) -> Option<String> {
    server_url(test, "HOST_TEST_POSTGRES_URL")
}

/// The Redis server of `HOST_TEST_REDIS_URL`, or `None` (and a line saying
/// the test was skipped).
pub fn redis_url(test: &str) -> Option<String> {
    server_url(test, "HOST_TEST_REDIS_URL")
}

/// An etcd of the test's own, of one member or `members`, or `None`
/// (and a line saying the test was skipped).
pub fn own_etcd(test: &str, members: usize) -> Option<host_test::EtcdCluster> {
    let etcd = host_test::EtcdLauncher::new().members(members).start();
    if etcd.is_none() {
        println!("{test}: skipped, etcd cannot be started");
    }
    etcd
}

fn server_url(test: &str, variable: &str) -> Option<String> {
    let url = std::env::var(variable).ok();
    if url.is_none() {
        println!("{test}: skipped, {variable} is not set");
    }
    url
}
