//! Command-line arguments: `--key=value` and `--key value`.

use crate::ConfigError;

/// One `--key=value` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Argument {
    pub(crate) key: String,
    pub(crate) value: String,
}

/// Parses arguments (without the program's name). Everything after a lone
/// `--` is left to the application.
pub(crate) fn parse(args: &[String]) -> Result<Vec<Argument>, ConfigError> {
    let mut parsed = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            break;
        }
        let Some(body) = arg.strip_prefix("--") else {
            // Redacted too: `-db.password=x` is a typo of a secret's argument.
            return Err(ConfigError::argument(
                redact_value(arg),
                "is not `--key=value` (nested keys: `--section.key=value`)",
            ));
        };
        let (key, value) = match body.split_once('=') {
            Some((key, value)) => (key, value.to_owned()),
            None => match rest.as_slice().first() {
                Some(next) if !next.starts_with("--") => {
                    rest.next();
                    (body, next.clone())
                }
                _ => {
                    return Err(ConfigError::argument(
                        redact_value(arg),
                        "has no value: write `--key=value`",
                    ));
                }
            },
        };
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ConfigError::argument(
                redact_value(arg),
                "has an empty key or key segment",
            ));
        }
        parsed.push(Argument {
            key: key.to_owned(),
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

    fn pairs(list: &[&str]) -> Vec<(String, String)> {
        parse(&args(list))
            .expect("valid")
            .into_iter()
            .map(|argument| (argument.key, argument.value))
            .collect()
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
}
