//! What errors and `Debug` show of a store's connection URL: never its
//! password.

use crate::ClusterError;

/// A URL that did not parse, reduced to scheme, user, host and path: the
/// password in the user info and the whole query (which may carry
/// `password=`) are dropped. `backend` names it when there is no `://`.
pub(crate) fn url_without_secrets(backend: &str, url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("{backend} (a connection URL without `://`)");
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = &rest[..end];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            if user.is_empty() {
                host.to_owned()
            } else {
                format!("{user}@{host}")
            }
        }
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{path}")
}

/// A failure of the store at `address` (already without secrets).
pub(crate) fn store_error(
    address: &str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ClusterError {
    ClusterError::Store {
        store: address.to_owned(),
        source: source.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_queries_and_empty_users_are_dropped() {
        assert_eq!(
            url_without_secrets(
                "postgres",
                "postgres://app:s3cret@db:5432/x?password=s3cret"
            ),
            "postgres://app@db:5432/x"
        );
        assert_eq!(
            url_without_secrets("redis", "rediss://:s3cret@cache:6380/2#f"),
            "rediss://cache:6380/2"
        );
        assert_eq!(
            url_without_secrets("redis", "s3cret"),
            "redis (a connection URL without `://`)"
        );
    }
}
