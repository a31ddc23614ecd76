//! The lease store a cluster's instances share: made by the test (a
//! content root or a key prefix of its own; PostgreSQL's tables live in
//! the cluster's schema) and named on each instance's command line, from
//! which the instance builds it.
//!
//! Another store is one variant here, its fields in [`Store::fields`],
//! and its construction in [`build`].

use host_cluster::LeaseStore as _;
use host_cluster::etcd::EtcdOptions;
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
    /// etcd at `url` (an etcd of the test's own), under `prefix`.
    Etcd { url: String, prefix: String },
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

    /// etcd at `url`, under a key prefix of the test's own.
    pub fn etcd(url: &str, test: &str) -> Self {
        let prefix = format!("hc-test/{test}/{:08x}/", fastrand::u32(..));
        println!("{test}: etcd prefix {prefix}");
        Self::Etcd {
            url: url.to_owned(),
            prefix,
        }
    }

    /// Who holds the lease now by the etcd store, with the token; `None`
    /// when nobody does. The test reaches etcd at the store's URL.
    ///
    /// # Panics
    ///
    /// On a store other than etcd, or when etcd does not answer.
    pub async fn etcd_holder(&self) -> Option<(String, i64)> {
        let Self::Etcd { url, prefix } = self else {
            panic!("the lease holder is read from etcd only: {self:?}");
        };
        let store = EtcdOptions::new(url)
            .and_then(|options| options.prefix(prefix))
            .expect("the etcd store's URL and prefix")
            .connect_lazily();
        let info = store
            .current(super::LEASE)
            .await
            .unwrap_or_else(|error| panic!("the lease in etcd: {error}"))?;
        let token = i64::try_from(info.token().get()).expect("a token below 2^63");
        Some((info.holder().to_owned(), token))
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
            Self::Etcd { url, prefix } => ["etcd".into(), url.clone(), prefix.clone()],
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
        ["etcd", url, prefix] => {
            builder.lease_store(
                EtcdOptions::new(url)
                    .expect("an etcd URL")
                    .prefix(prefix)
                    .expect("an etcd key prefix")
                    .connect_lazily(),
            );
        }
        other => {
            panic!("a lease store kind: postgres, file_lock, redis or etcd; found {other:?}")
        }
    }
}
