//! Which keys hold secrets, so that their values are never printed, and
//! the redaction of the passwords in URLs, whatever their key.

use std::borrow::Cow;

/// Shown instead of a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// The names that make a key secret when they are one of its words (or a run
/// of its words). A name of several words also matches its words run
/// together, which is how a lowercased environment variable spells it
/// (`APP_STRIPE__APIKEY` is `stripe.apikey`): the compounds below are here
/// for that form only, their words already being secret one by one.
const SECRET_NAMES: [&str; 18] = [
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "dsn",
    "connection_string",
    "api_key",
    "access_key",
    "private_key",
    "secret_key",
    "client_secret",
    "access_token",
    "refresh_token",
    "auth_token",
];

/// The keys whose values are withheld from errors and logs: every key one of
/// whose words is a secret name (see [`words`]), and the keys the
/// application marks, with everything beneath them.
#[derive(Debug, Clone)]
pub(crate) struct Secrets {
    /// Each name as its words.
    names: Vec<Vec<String>>,
    marked: Vec<String>,
}

impl Default for Secrets {
    fn default() -> Self {
        Self {
            names: SECRET_NAMES.iter().map(|name| words(name)).collect(),
            marked: Vec::new(),
        }
    }
}

impl Secrets {
    pub(crate) fn mark(&mut self, key: &str) {
        self.marked.push(key.to_ascii_lowercase());
    }

    /// Adds a secret name (`"pin"`, `"signing_salt"`); ignored if it has no word.
    pub(crate) fn add_name(&mut self, name: &str) {
        let name = words(name);
        if !name.is_empty() && !self.names.contains(&name) {
            self.names.push(name);
        }
    }

    /// Removes a secret name, spelled in any of the ways [`words`] reads alike.
    pub(crate) fn remove_name(&mut self, name: &str) {
        let name = words(name);
        self.names.retain(|known| *known != name);
    }

    pub(crate) fn is_secret(&self, key: &str) -> bool {
        let key_words = words(key);
        let by_name = self.names.iter().any(|name| matches_name(&key_words, name));
        let key = key.to_ascii_lowercase();
        by_name
            || self.marked.iter().any(|marked| {
                key == *marked
                    || key
                        .strip_prefix(marked.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
    }
}

/// Whether `name` (its words) is a run of `key`'s words, or, for a name of
/// several words, one word of the key spelled run together. A plural (a
/// trailing `s` on the last word) counts: `api.keys` holds keys.
fn matches_name(key: &[String], name: &[String]) -> bool {
    let same = |word: &str, wanted: &str| {
        word == wanted || word.strip_suffix('s').is_some_and(|stem| stem == wanted)
    };
    let run = key.windows(name.len()).any(|window| {
        let (last, init) = name.split_last().expect("names have a word");
        window[..init.len()] == *init && same(&window[init.len()], last)
    });
    run || (name.len() > 1 && {
        let joined = name.concat();
        key.iter().any(|word| same(word, &joined))
    })
}

/// The lowercase words of a key: split on `.`, `_`, `-` and whitespace, at
/// camelCase boundaries (`apiKey`, `APIKey`, `ConnectionString`), and between
/// letters and digits (`password2`). So `db.password` and `api_key` hold a
/// secret name, and `keyboard`, `monkey` and `web.urls` do not.
pub(crate) fn words(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (index, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some(&previous) = index.checked_sub(1).and_then(|i| chars.get(i))
            && previous.is_alphanumeric()
        {
            let next_is_lower = chars.get(index + 1).is_some_and(|next| next.is_lowercase());
            let boundary = (c.is_uppercase()
                && (previous.is_lowercase()
                    || previous.is_numeric()
                    || (previous.is_uppercase() && next_is_lower)))
                || (c.is_numeric() != previous.is_numeric());
            if boundary && !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// `text` with the credentials of every URL in it withheld, whatever the key
/// that holds it: `postgres://user:pass@host/db` reads
/// `postgres://user:[redacted]@host/db`, and a user with no password (often a
/// token, as `https://TOKEN@host`) reads `https://[redacted]@host`.
///
/// A URL runs from its scheme to the next whitespace or quote. Its password
/// runs from the first `:` after the scheme to the last `@`, so that a
/// password holding `@` or `/` is withheld whole; this may withhold more
/// than the password (a port and a path before an `@` in a query), never less.
pub(crate) fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(at, |(index, _)| index);
        let authority_start = at + 3;
        let end = rest[authority_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
            .map_or(rest.len(), |offset| authority_start + offset);
        out.push_str(&rest[..authority_start]);
        let url = &rest[authority_start..end];
        if scheme_start < at {
            out.push_str(&redact_userinfo(url));
        } else {
            out.push_str(url);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A whole value with the credentials of a URL in it withheld: as
/// [`redact_urls`], except that a value that is one URL is one even with
/// whitespace or quotes in its password.
pub(crate) fn redact_url_value(value: &str) -> Cow<'_, str> {
    let trimmed = value.trim_start();
    let scheme = trimmed
        .find("://")
        .map(|at| &trimmed[..at])
        .filter(|scheme| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
    match scheme {
        Some(scheme) => {
            let start = value.len() - trimmed.len() + scheme.len() + 3;
            match redact_userinfo(&value[start..]) {
                Cow::Borrowed(_) => redact_urls(value),
                Cow::Owned(rest) => Cow::Owned(format!("{}{rest}", &value[..start])),
            }
        }
        None => redact_urls(value),
    }
}

/// What follows `scheme://`, with its user information's secret withheld.
fn redact_userinfo(url: &str) -> Cow<'_, str> {
    let Some(at) = url.rfind('@') else {
        return Cow::Borrowed(url);
    };
    match url[..at].find(':') {
        Some(colon) if !url[..colon].contains('/') && colon + 1 < at => {
            Cow::Owned(format!("{}:{REDACTED}{}", &url[..colon], &url[at..]))
        }
        Some(_) => Cow::Borrowed(url),
        None if at > 0 && !url[..at].contains(['/', '?', '#']) => {
            Cow::Owned(format!("{REDACTED}{}", &url[at..]))
        }
        None => Cow::Borrowed(url),
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
            "api.apiKey",
            "api.APIKey",
            "stripe.apikey",
            "auth.client_secret",
            "auth.clientSecret",
            "auth.token",
            "auth.tokens",
            "smtp.PASSWORD.inner",
            "smtp.passwd",
            "smtp.pwd",
            "tls.key",
            "api-key",
            "database.dsn",
            "database.connection_string",
            "database.ConnectionString",
            "database.connectionstring",
            "cloud.credentials",
            "aws.secret_access_key",
            "db.password2",
        ] {
            assert!(secrets.is_secret(key), "{key}");
        }
        for key in [
            "worker.interval",
            "db.host",
            "web.urls",
            "database.url",
            "ui.keyboard",
            "zoo.monkey",
            "app.tokenizer",
            "text.connection",
        ] {
            assert!(!secrets.is_secret(key), "{key}");
        }
    }

    #[test]
    fn names_can_be_added_and_removed() {
        let mut secrets = Secrets::default();
        assert!(!secrets.is_secret("atm.pin"));
        secrets.add_name("pin");
        assert!(secrets.is_secret("atm.pin"));
        assert!(secrets.is_secret("atm.cardPin"));
        assert!(!secrets.is_secret("atm.pinned"));

        assert!(secrets.is_secret("cache.key_prefix"));
        secrets.remove_name("KEY");
        assert!(!secrets.is_secret("cache.key_prefix"));
        // The compounds stay until removed too.
        assert!(secrets.is_secret("api.api_key"));
        secrets.remove_name("apiKey");
        assert!(!secrets.is_secret("api.api_key"));
        assert!(secrets.is_secret("db.password"));
    }

    #[test]
    fn words_of_keys() {
        assert_eq!(words("db.APIKey_v2-x"), ["db", "api", "key", "v", "2", "x"]);
        assert_eq!(words("ConnectionString"), ["connection", "string"]);
        assert_eq!(words("oauth2Token"), ["oauth", "2", "token"]);
        assert!(words("..").is_empty());
    }

    #[test]
    fn marked_keys_and_what_is_beneath_them() {
        let mut secrets = Secrets::default();
        secrets.mark("billing.account");
        assert!(secrets.is_secret("billing.account"));
        assert!(secrets.is_secret("Billing.ACCOUNT"));
        assert!(secrets.is_secret("billing.account.primary"));
        assert!(!secrets.is_secret("billing.account_format"));
        assert!(!secrets.is_secret("billing.host"));
    }

    #[test]
    fn url_credentials_are_withheld() {
        for (text, expected) in [
            ("postgres://u:p@h", "postgres://u:[redacted]@h"),
            (
                "\"postgres://user:p@ss/w0rd@db:5432/app?ssl=1\"",
                "\"postgres://user:[redacted]@db:5432/app?ssl=1\"",
            ),
            (
                "cannot reach redis://:hunter2@cache:6379 now, nor amqp://a:b@q",
                "cannot reach redis://:[redacted]@cache:6379 now, nor amqp://a:[redacted]@q",
            ),
            (
                "https://ghp_token@github.com/x",
                "https://[redacted]@github.com/x",
            ),
            ("https://example.com/a/@b", "https://example.com/a/@b"),
            ("https://example.com:8443/x", "https://example.com:8443/x"),
            ("no url here: a:b@c", "no url here: a:b@c"),
            ("://u:p@h", "://u:p@h"),
        ] {
            assert_eq!(redact_urls(text), expected, "{text}");
        }
        // A value that is one URL is one whatever its password holds.
        for (value, expected) in [
            ("redis://:pa ss\"w@cache", "redis://:[redacted]@cache"),
            (" amqp://u:p 1@q/v", " amqp://u:[redacted]@q/v"),
            ("see http://a:b@c and d", "see http://a:[redacted]@c and d"),
            ("plain", "plain"),
        ] {
            assert_eq!(redact_url_value(value), expected, "{value}");
        }
    }
}
