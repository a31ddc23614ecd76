//! The cluster store a connection URL names, for a host's configuration.

use std::sync::Arc;

use crate::{ClusterError, ClusterStore};

/// The lease and claim store `url` names, connected at its first use (so
/// that a host is built while its database is down, and stands by until it
/// answers): `postgres://` or `postgresql://` (the `postgres` feature),
/// in the tables of `schema` and `prefix` when given.
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
        _ => Err(ClusterError::Invalid {
            what: "lease store URL scheme",
            value: scheme.to_owned(),
            why: "no lease store takes it (postgres:// and postgresql:// do)",
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
    _url: &str,
    _schema: Option<&str>,
    _prefix: Option<&str>,
) -> Result<Arc<dyn ClusterStore>, ClusterError> {
    Err(ClusterError::Invalid {
        what: "lease store URL scheme",
        value: "postgres".to_owned(),
        why: "this build has no PostgreSQL store: turn on host-cluster's `postgres` feature \
              (the `host` crate's `cluster` feature does)",
    })
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
}
