//! What errors and `Debug` show of a connection: never the password.

use sqlx::postgres::PgConnectOptions;

/// `postgres://user@host:port/database`, from parsed options (the
/// password, wherever the URL gave it, is not among what is shown).
pub(crate) fn of_options(options: &PgConnectOptions) -> String {
    let host = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => options.get_host().to_owned(),
    };
    format!(
        "postgres://{}@{host}:{}/{}",
        options.get_username(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username()),
    )
}

/// A URL that did not parse, without its password or query.
pub(crate) fn of_url(url: &str) -> String {
    crate::redact::url_without_secrets("postgres", url)
}

pub(crate) use crate::redact::store_error;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_loses_its_password_and_query() {
        assert_eq!(
            of_url("postgres://app:s3cret@db.example:5432/orders?password=s3cret&sslmode=x"),
            "postgres://app@db.example:5432/orders"
        );
        assert_eq!(of_url("postgres://h:p@"), "postgres://h@");
        assert_eq!(
            of_url("nonsense s3cret"),
            "postgres (a connection URL without `://`)"
        );
    }

    #[test]
    fn parsed_options_show_no_password() {
        let options: PgConnectOptions =
            "postgres://app:s3cret@db.example:6543/orders?password=s3cret"
                .parse()
                .unwrap();
        assert_eq!(
            of_options(&options),
            "postgres://app@db.example:6543/orders"
        );
    }
}
