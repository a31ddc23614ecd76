//! The lease store a cluster's instances share: made by the test (a
//! content root or a key prefix of its own; PostgreSQL's tables live in
//! the cluster's schema) and named on each instance's command line, from
//! which the instance builds it.
//!
//! Another store is one variant here, its fields in [`Store::fields`],
//! and its construction in [`build`].

use host_cluster::postgres::{Namespace, PostgresOptions};
use host_cluster::redis::RedisOptions;
use host_core::HostBuilder;

use super::RedisPrefix;

/// Where the instances keep their lease.
#[derive(Debug)]
pub enum Store {
    /// PostgreSQL at `url`, in the cluster's schema.
    Postgres { url: String },
    /// The default store: a file lock under one content root for all.
    FileLock { root: tempfile::TempDir },
    /// Redis, under a key prefix of the test's own.
    Redis(RedisPrefix),
}

impl Store {
    pub fn postgres(url: &str) -> Self {
        Self::Postgres {
            url: url.to_owned(),
        }
    }

    pub fn file_lock() -> Self {
        Self::FileLock {
            root: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn redis(url: &str, test: &str) -> Self {
        Self::Redis(RedisPrefix::new(url, test))
    }

    /// The store as an instance's scenario names it: kind, location and
    /// prefix (empty where the kind has none).
    pub fn fields(&self) -> [String; 3] {
        match self {
            Self::Postgres { url } => ["postgres".into(), url.clone(), String::new()],
            Self::FileLock { root } => [
                "file_lock".into(),
                root.path().display().to_string(),
                String::new(),
            ],
            Self::Redis(prefix) => ["redis".into(), prefix.url.clone(), prefix.prefix.clone()],
        }
    }
}

/// Sets the store named by `fields` (as [`Store::fields`] gives them) on
/// an instance's builder; `namespace` is the cluster's schema, `id` the
/// instance's.
///
/// # Panics
///
/// On a kind this harness does not know, or a location the store refuses.
pub fn build(builder: &mut HostBuilder, fields: [&str; 3], namespace: &Namespace, id: &str) {
    match fields {
        ["postgres", url, _] => {
            // The application name lets a test find its connections.
            builder.lease_store(
                PostgresOptions::new(url)
                    .expect("a PostgreSQL URL")
                    .namespace(namespace.clone())
                    .application_name(&format!("hc-test-{id}"))
                    .connect_lazily(),
            );
        }
        ["file_lock", root, _] => {
            builder.content_root(root);
        }
        ["redis", url, prefix] => {
            builder.lease_store(
                RedisOptions::new(url)
                    .expect("a Redis URL")
                    .prefix(prefix)
                    .expect("a Redis key prefix")
                    .connect_lazily(),
            );
        }
        other => panic!("a lease store kind: postgres, file_lock or redis; found {other:?}"),
    }
}
