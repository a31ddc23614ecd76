//! Command-line arguments: `--key=value` and `--key value`.

use crate::ConfigError;
use crate::secrets::Secrets;

/// One `--key=value` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Argument {
    /// The key, nested with dots (`Greeting:Message` is `Greeting.Message`).
    pub(crate) key: String,
    /// The key as written, to name the argument in errors.
    pub(crate) spelled: String,
    pub(crate) value: String,
}

/// A key written with .NET's `:` separator (`Greeting:Message`) nested
/// with dots; a `::` (a Rust path, as a tracing target) stays as it is.
fn nested(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars
        .iter()
        .enumerate()
        .map(|(index, &c)| {
            let beside = |other: Option<&char>| other == Some(&':');
            let lone = c == ':'
                && !beside(index.checked_sub(1).and_then(|before| chars.get(before)))
                && !beside(chars.get(index + 1));
            if lone { '.' } else { c }
        })
        .collect()
}

/// Parses arguments (without the program's name). Everything after a lone
/// `--` is left to the application.
///
/// An argument in error right after one that set a secret is never quoted:
/// it is likely the rest of the secret (`--db.password= hunter2`, or a
/// password with a space in it).
pub(crate) fn parse(args: &[String], secrets: &Secrets) -> Result<Vec<Argument>, ConfigError> {
    let mut parsed = Vec::new();
    let mut rest = args.iter();
    // The argument that last set a secret, as it may be quoted.
    let mut after_secret: Option<String> = None;
    while let Some(arg) = rest.next() {
        if arg == "--" {
            break;
        }
        let error = |reason| match &after_secret {
            Some(after) => ConfigError::secret_argument(after.clone(), reason),
            None => ConfigError::argument(redact_value(arg), reason),
        };
        let Some(body) = arg.strip_prefix("--") else {
            // Redacted too: `-db.password=x` is a typo of a secret's argument.
            return Err(error(
                "is not `--key=value` (nested keys: `--section.key=value`)",
            ));
        };
        let (key, value, quoted) = match body.split_once('=') {
            Some((key, value)) => (key, value.to_owned(), format!("--{key}=")),
            None => match rest.as_slice().first() {
                Some(next) if !next.starts_with("--") => {
                    rest.next();
                    (body, next.clone(), format!("--{body}"))
                }
                _ => return Err(error("has no value: write `--key=value`")),
            },
        };
        let spelled = key.to_owned();
        let key = nested(key);
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(error("has an empty key or key segment"));
        }
        after_secret = secrets.is_secret(&key).then_some(quoted);
        parsed.push(Argument {
            key,
            spelled,
            value,
        });
    }
    Ok(parsed)
}

/// An argument as it may be quoted in an error: its key only.
fn redact_value(arg: &str) -> String {
    match arg.split_once('=') {
        Some((key, _)) => format!("{key}=..."),
        None => arg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    fn parse(list: &[String]) -> Result<Vec<Argument>, ConfigError> {
        super::parse(list, &Secrets::default())
    }

    fn pairs(list: &[&str]) -> Vec<(String, String)> {
        parse(&args(list))
            .expect("valid")
            .into_iter()
            .map(|argument| (argument.key, argument.value))
            .collect()
    }

    #[test]
    fn a_colon_nests_as_in_dotnet_and_a_rust_path_stays() {
        assert_eq!(
            pairs(&[
                "--Greeting:Message=x",
                "--logging.level.app::worker=debug",
                "--Logging:Level:app::worker=warn",
            ]),
            [
                ("Greeting.Message".into(), "x".into()),
                ("logging.level.app::worker".into(), "debug".into()),
                ("Logging.Level.app::worker".into(), "warn".into()),
            ]
        );
        let parsed = parse(&args(&["--Greeting:Message=x"])).expect("valid");
        assert_eq!(parsed[0].spelled, "Greeting:Message");
        let error = parse(&args(&["--a:=x"])).expect_err("an empty segment");
        assert!(error.to_string().contains("empty key"), "{error}");
    }

    #[test]
    fn both_forms() {
        assert_eq!(
            pairs(&[
                "--worker.interval=5s",
                "--environment",
                "Staging",
                "--a=x=y",
                "--e="
            ]),
            [
                ("worker.interval".into(), "5s".into()),
                ("environment".into(), "Staging".into()),
                ("a".into(), "x=y".into()),
                ("e".into(), String::new()),
            ]
        );
    }

    #[test]
    fn a_lone_double_dash_ends_them() {
        assert_eq!(
            pairs(&["--a=1", "--", "whatever", "-x"]),
            [("a".into(), "1".into())]
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        let error = parse(&args(&["positional"])).expect_err("not a key");
        assert!(error.is_argument());
        assert_eq!(
            error.to_string(),
            "invalid configuration: command-line argument `positional` is not `--key=value` \
             (nested keys: `--section.key=value`)"
        );
        let error = parse(&args(&["--verbose", "--a=1"])).expect_err("no value");
        assert!(
            error.to_string().contains("`--verbose` has no value"),
            "{error}"
        );
        let error = parse(&args(&["--a..b=secret"])).expect_err("empty segment");
        assert!(error.to_string().contains("`--a..b=...`"), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn the_argument_after_a_secret_is_never_quoted() {
        for list in [
            &["--db.password=", "hunter2"][..],
            &["--db.password=hunter", "2"],
            &["--db.password", "hunter", "2"],
            &["--a=1", "--db.password=", "--hunter2"],
        ] {
            let error = parse(&args(list)).expect_err("a stray argument");
            let text = error.to_string();
            assert!(error.is_argument(), "{text}");
            assert!(!text.contains("hunter"), "the secret leaked: {text}");
            assert!(!format!("{error:?}").contains("hunter"), "{error:?}");
            assert!(
                text.contains("`[redacted]` (after `--db.password"),
                "{text}"
            );
        }
        let error = parse(&args(&["--db.password=", "hunter2"])).expect_err("stray");
        assert_eq!(
            error.to_string(),
            "invalid configuration: command-line argument `[redacted]` (after \
             `--db.password=`) is not `--key=value` (nested keys: `--section.key=value`)"
        );
        // After an ordinary key, the stray argument is quoted: it helps.
        let error = parse(&args(&["--name=", "John"])).expect_err("stray");
        assert!(error.to_string().contains("`John`"), "{error}");
        // A URL's password is withheld wherever it is.
        let error = parse(&args(&["postgres://u:hunter2@h"])).expect_err("positional");
        assert!(
            error.to_string().contains("`postgres://u:[redacted]@h`"),
            "{error}"
        );
    }
}
