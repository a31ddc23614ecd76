//! What errors and `Debug` show of a connection: never the password.

use redis::{ConnectionAddr, ConnectionInfo};

/// `redis://user@host:port/db` (`rediss://` with TLS), from parsed
/// connection info: the password is not among what is shown.
pub(crate) fn of_info(info: &ConnectionInfo) -> String {
    let settings = info.redis_settings();
    let user = settings
        .username()
        .map_or_else(String::new, |user| format!("{user}@"));
    let db = settings.db();
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("redis://{user}{host}:{port}/{db}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{user}{host}:{port}/{db}"),
        ConnectionAddr::Unix(path) => format!("redis+unix://{user}{}?db={db}", path.display()),
        other => format!("redis ({other:?})"),
    }
}

/// A URL that did not parse, without its password or query.
pub(crate) fn of_url(url: &str) -> String {
    crate::redact::url_without_secrets("redis", url)
}

pub(crate) use crate::redact::store_error;

#[cfg(test)]
mod tests {
    use redis::IntoConnectionInfo as _;

    use super::*;

    #[test]
    fn a_bad_url_loses_its_password_and_query() {
        assert_eq!(
            of_url("redis://app:s3cret@cache.example:6379/2?password=s3cret"),
            "redis://app@cache.example:6379/2"
        );
        assert_eq!(of_url("rediss://:s3cret@h:1"), "rediss://h:1");
        assert_eq!(
            of_url("nonsense s3cret"),
            "redis (a connection URL without `://`)"
        );
    }

    #[test]
    fn parsed_info_shows_no_password() {
        for (url, shown) in [
            (
                "redis://app:s3cret@cache.example:6380/3",
                "redis://app@cache.example:6380/3",
            ),
            (
                "rediss://:s3cret@cache.example",
                "rediss://cache.example:6379/0",
            ),
        ] {
            let info = url.into_connection_info().unwrap();
            assert_eq!(of_info(&info), shown);
        }
    }
}
