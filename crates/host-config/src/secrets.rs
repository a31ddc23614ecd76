//! Which keys hold secrets, so that their values are never printed.

/// Words that make a key secret wherever they appear in one of its segments.
const SECRET_WORDS: [&str; 4] = ["password", "secret", "token", "key"];

/// The keys whose values are withheld from errors and logs: every key with a
/// segment containing `password`, `secret`, `token` or `key` (ignoring case),
/// and the keys the application marks, with everything beneath them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Secrets {
    marked: Vec<String>,
}

impl Secrets {
    pub(crate) fn mark(&mut self, key: &str) {
        self.marked.push(key.to_ascii_lowercase());
    }

    pub(crate) fn is_secret(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        let by_name = key
            .split('.')
            .any(|segment| SECRET_WORDS.iter().any(|word| segment.contains(word)));
        by_name
            || self.marked.iter().any(|marked| {
                key == *marked
                    || key
                        .strip_prefix(marked.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_hold_secrets() {
        let secrets = Secrets::default();
        for key in [
            "db.password",
            "db.Password",
            "api.api_key",
            "auth.client_secret",
            "auth.token",
            "smtp.PASSWORD.inner",
        ] {
            assert!(secrets.is_secret(key), "{key}");
        }
        for key in ["worker.interval", "db.host", "web.urls"] {
            assert!(!secrets.is_secret(key), "{key}");
        }
    }

    #[test]
    fn marked_keys_and_what_is_beneath_them() {
        let mut secrets = Secrets::default();
        secrets.mark("database.dsn");
        assert!(secrets.is_secret("database.dsn"));
        assert!(secrets.is_secret("Database.DSN"));
        assert!(secrets.is_secret("database.dsn.primary"));
        assert!(!secrets.is_secret("database.dsn_format"));
        assert!(!secrets.is_secret("database.host"));
    }
}
