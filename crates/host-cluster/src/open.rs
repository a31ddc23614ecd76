//! The cluster store a connection URL names, for a host's configuration.

use std::sync::Arc;

use crate::{ClusterError, ClusterStore};

/// The lease and claim store `url` names, connected at its first use (so
/// that a host is built while its database is down, and stands by until it
/// answers): `postgres://` or `postgresql://` (the `postgres` feature),
/// in the tables of `schema` and `prefix` when given; `redis://`,
/// `rediss://` (TLS) or `redis+unix://` (the `redis` feature), its keys
/// under `prefix` when given (`schema` does not apply to Redis);
/// `etcd://` or `etcds://` (TLS; the `etcd` feature, see
/// [`EtcdOptions`](crate::etcd::EtcdOptions) for the form), its keys under
/// `prefix` when given (no `schema` either).
///
/// # Errors
///
/// [`ClusterError::Invalid`]: a scheme no backend takes, or one whose
/// backend was not built (the message names the feature); a URL or a
/// namespace that does not parse ([`ClusterError::Store`] or
/// [`ClusterError::Invalid`], never showing the password).
pub fn cluster_store_for_url(
    url: &str,
    schema: Option<&str>,
    prefix: Option<&str>,
) -> Result<Arc<dyn ClusterStore>, ClusterError> {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    match scheme {
        "postgres" | "postgresql" => postgres(url, schema, prefix),
        "redis" | "rediss" | "redis+unix" => redis(url, schema, prefix),
        "etcd" | "etcds" => etcd(url, schema, prefix),
        _ => Err(ClusterError::Invalid {
            what: "lease store URL scheme",
            value: scheme.to_owned(),
            why: "no lease store takes it (postgres://, postgresql://, redis://, rediss://, \
                  redis+unix://, etcd:// and etcds:// do)",
        }),
    }
}

#[cfg(feature = "postgres")]
fn postgres(
    url: &str,
    schema: Option<&str>,
    prefix: Option<&str>,
) -> Result<Arc<dyn ClusterStore>, ClusterError> {
    use crate::postgres::{Namespace, PostgresOptions};
    let mut options = PostgresOptions::new(url)?;
    if schema.is_some() || prefix.is_some() {
        options = options.namespace(Namespace::new(
            schema.unwrap_or("public"),
            prefix.unwrap_or("host_"),
        )?);
    }
    Ok(Arc::new(options.connect_lazily()))
}

#[cfg(not(feature = "postgres"))]
fn postgres(
    url: &str,
    _schema: Option<&str>,
    _prefix: Option<&str>,
) -> Result<Arc<dyn ClusterStore>, ClusterError> {
    Err(not_built(
        url,
        "this build has no PostgreSQL store: turn on host-cluster's `postgres` feature \
         (the `host` crate's `cluster` feature does)",
    ))
}

#[cfg(feature = "redis")]
fn redis(
    url: &str,
    schema: Option<&str>,
    prefix: Option<&str>,
) -> Result<Arc<dyn ClusterStore>, ClusterError> {
    no_schema(
        schema,
        "the Redis store has no schema: give a key prefix instead",
    )?;
    let mut options = crate::redis::RedisOptions::new(url)?;
    if let Some(prefix) = prefix {
        options = options.prefix(prefix)?;
    }
    Ok(Arc::new(options.connect_lazily()))
}

#[cfg(not(feature = "redis"))]
fn redis(
    url: &str,
    _schema: Option<&str>,
    _prefix: Option<&str>,
) -> Result<Arc<dyn ClusterStore>, ClusterError> {
    Err(not_built(
        url,
        "this build has no Redis store: turn on host-cluster's `redis` feature",
    ))
}

#[cfg(feature = "etcd")]
fn etcd(
    url: &str,
    schema: Option<&str>,
    prefix: Option<&str>,
) -> Result<Arc<dyn ClusterStore>, ClusterError> {
    no_schema(
        schema,
        "the etcd store has no schema: give a key prefix instead",
    )?;
    let mut options = crate::etcd::EtcdOptions::new(url)?;
    if let Some(prefix) = prefix {
        options = options.prefix(prefix)?;
    }
    Ok(Arc::new(options.connect_lazily()))
}

#[cfg(not(feature = "etcd"))]
fn etcd(
    url: &str,
    _schema: Option<&str>,
    _prefix: Option<&str>,
) -> Result<Arc<dyn ClusterStore>, ClusterError> {
    Err(not_built(
        url,
        "this build has no etcd store: turn on host-cluster's `etcd` feature",
    ))
}

/// A schema given to a store that has none, refused rather than ignored: a
/// configuration that names a schema expects its keys kept apart by it.
#[cfg(any(feature = "redis", feature = "etcd"))]
fn no_schema(schema: Option<&str>, why: &'static str) -> Result<(), ClusterError> {
    match schema {
        Some(schema) => Err(ClusterError::Invalid {
            what: "lease store schema",
            value: schema.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// `url`'s scheme names a store this build left out; `why` names the
/// feature.
#[cfg(any(
    not(feature = "postgres"),
    not(feature = "redis"),
    not(feature = "etcd")
))]
fn not_built(url: &str, why: &'static str) -> ClusterError {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    ClusterError::Invalid {
        what: "lease store URL scheme",
        value: scheme.to_owned(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_scheme_is_refused_naming_it() {
        let Err(error) = cluster_store_for_url("mysql://db/x", None, None) else {
            panic!("mysql:// has no lease store");
        };
        assert!(error.to_string().contains("\"mysql\""), "{error}");
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_postgres_url_makes_a_lazy_store_that_hides_its_password() {
        let Ok(store) = cluster_store_for_url("postgres://app:hunter2@127.0.0.1:1/db", None, None)
        else {
            panic!("parsed without connecting");
        };
        let error = store.current("billing").await.unwrap_err().to_string();
        assert!(error.contains("postgres://app@127.0.0.1:1/db"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn a_redis_url_makes_a_lazy_store_that_hides_its_password() {
        let Ok(store) = cluster_store_for_url("redis://app:hunter2@127.0.0.1:1/3", None, None)
        else {
            panic!("parsed without connecting");
        };
        let error = store.current("billing").await.unwrap_err().to_string();
        assert!(error.contains("redis://app@127.0.0.1:1/3"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_redis_url_takes_a_prefix_but_no_schema() {
        let url = "redis://127.0.0.1:1";
        assert!(cluster_store_for_url(url, None, Some("app:")).is_ok());
        for (schema, prefix, what) in [
            (Some("app"), None, "lease store schema"),
            (None, Some("a b"), "redis key prefix"),
        ] {
            match cluster_store_for_url(url, schema, prefix) {
                Err(ClusterError::Invalid { what: found, .. }) => assert_eq!(found, what),
                Err(other) => panic!("{schema:?}/{prefix:?}: {other}"),
                Ok(_) => panic!("{schema:?}/{prefix:?}: accepted"),
            }
        }
    }

    #[cfg(feature = "etcd")]
    #[tokio::test]
    async fn an_etcd_url_makes_a_lazy_store_that_hides_its_password() {
        let url = "etcd://app:hunter2@127.0.0.1:1,127.0.0.1:2";
        let Ok(store) = cluster_store_for_url(url, None, Some("orders/")) else {
            panic!("parsed without connecting");
        };
        let error = store.current("billing").await.unwrap_err().to_string();
        assert!(
            error.contains("etcd://app@127.0.0.1:1,127.0.0.1:2/orders/"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
        assert!(cluster_store_for_url(url, Some("app"), None).is_err());
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn without_the_feature_a_redis_url_names_it() {
        let Err(error) = cluster_store_for_url("rediss://cache/0", None, None) else {
            panic!("no Redis store in this build");
        };
        assert!(error.to_string().contains("`redis` feature"), "{error}");
    }
}
