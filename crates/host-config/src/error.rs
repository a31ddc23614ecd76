//! The crate's error type: what is wrong with the configuration, and where.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::secrets::redact_urls;

/// Why the configuration could not be loaded or bound.
///
/// Its message names the key, what was expected, what was found (withheld
/// for [secret keys](crate#secrets)) and the source that supplied it: a file,
/// an environment variable, a command-line argument. A malformed file is
/// named with the line and column of the problem.
///
/// ```text
/// invalid configuration: `worker.interval` expects a duration such as "5s", found "fast"
///   from: appsettings.Production.toml
/// ```
#[derive(Debug)]
pub struct ConfigError {
    kind: Box<Kind>,
}

#[derive(Debug)]
enum Kind {
    Malformed {
        path: PathBuf,
        format: &'static str,
        line: usize,
        column: usize,
        message: String,
    },
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    Argument {
        argument: String,
        /// The argument before it, when that names a secret whose value this is.
        after: Option<String>,
        reason: &'static str,
    },
    Invalid(Vec<Problem>),
}

/// One invalid value: its key, what is wrong with it, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    key: String,
    message: String,
    origin: Option<String>,
}

impl Problem {
    /// The credentials of any URL in `message` are withheld, whatever the
    /// key: a validator's message may quote a connection string.
    pub(crate) fn new(key: String, message: String, origin: Option<String>) -> Self {
        Self {
            key,
            message: redact_urls(&message).into_owned(),
            origin,
        }
    }

    /// The full key path, as `worker.interval`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong, as `expects a duration such as "5s", found "fast"`.
    /// A secret key's value is never part of it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The source that supplied the value, as `appsettings.toml` or
    /// `environment variable APP_WORKER__INTERVAL`; `None` when no source
    /// set the key.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.key, self.message)?;
        if let Some(origin) = &self.origin {
            write!(f, "\n  from: {origin}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    pub(crate) fn malformed(
        path: PathBuf,
        format: &'static str,
        (line, column): (usize, usize),
        message: String,
    ) -> Self {
        Self::new(Kind::Malformed {
            path,
            format,
            line,
            column,
            message: redact_urls(&message).into_owned(),
        })
    }

    pub(crate) fn unreadable(path: PathBuf, source: std::io::Error) -> Self {
        Self::new(Kind::Unreadable { path, source })
    }

    pub(crate) fn argument(argument: String, reason: &'static str) -> Self {
        Self::new(Kind::Argument {
            argument: redact_urls(&argument).into_owned(),
            after: None,
            reason,
        })
    }

    /// An argument that is likely the value of the secret named by the
    /// argument `after` (`--db.password= hunter2`): it is never quoted.
    pub(crate) fn secret_argument(after: String, reason: &'static str) -> Self {
        Self::new(Kind::Argument {
            argument: crate::secrets::REDACTED.to_owned(),
            after: Some(redact_urls(&after).into_owned()),
            reason,
        })
    }

    pub(crate) fn invalid(problems: Vec<Problem>) -> Self {
        Self::new(Kind::Invalid(problems))
    }

    fn new(kind: Kind) -> Self {
        Self {
            kind: Box::new(kind),
        }
    }

    /// Gathers the problems of several bindings into one error, so that a
    /// start reports every invalid value at once. A file or argument error
    /// comes first: it is why the values could not be read.
    pub fn combine(errors: impl IntoIterator<Item = ConfigError>) -> Option<ConfigError> {
        let mut problems = Vec::new();
        for error in errors {
            match *error.kind {
                Kind::Invalid(more) => problems.extend(more),
                _ => return Some(error),
            }
        }
        (!problems.is_empty()).then(|| Self::invalid(problems))
    }

    /// The invalid values, when the error is about values (empty otherwise).
    pub fn problems(&self) -> &[Problem] {
        match &*self.kind {
            Kind::Invalid(problems) => problems,
            _ => &[],
        }
    }

    /// Whether a file could not be parsed.
    pub fn is_malformed(&self) -> bool {
        matches!(*self.kind, Kind::Malformed { .. })
    }

    /// Whether a value could not be bound or failed validation.
    pub fn is_invalid(&self) -> bool {
        matches!(*self.kind, Kind::Invalid(_))
    }

    /// Whether a command-line argument is not `--key=value`.
    pub fn is_argument(&self) -> bool {
        matches!(*self.kind, Kind::Argument { .. })
    }

    /// The file the error is about, for a malformed or unreadable file.
    pub fn file(&self) -> Option<&Path> {
        match &*self.kind {
            Kind::Malformed { path, .. } | Kind::Unreadable { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The line and column (from 1) of a malformed file's problem.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        match &*self.kind {
            Kind::Malformed { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration: ")?;
        match &*self.kind {
            Kind::Malformed {
                path,
                format,
                line,
                column,
                message,
            } => write!(
                f,
                "{} is not valid {format}: {message}\n  at: line {line}, column {column}",
                path.display()
            ),
            Kind::Unreadable { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            Kind::Argument {
                argument,
                after,
                reason,
            } => {
                write!(f, "command-line argument `{argument}` ")?;
                if let Some(after) = after {
                    write!(f, "(after `{after}`) ")?;
                }
                write!(f, "{reason}")
            }
            Kind::Invalid(problems) => match problems.as_slice() {
                [one] => write!(f, "{one}"),
                many => {
                    write!(f, "{} invalid values", many.len())?;
                    for problem in many {
                        let indented = problem.to_string().replace('\n', "\n  ");
                        write!(f, "\n  {indented}")?;
                    }
                    Ok(())
                }
            },
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            Kind::Unreadable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An application's own check of an options value failed; returned by the
/// validators given to [`OptionsBinding::validate`](crate::OptionsBinding::validate).
///
/// ```
/// use host_config::ValidationError;
///
/// let error = ValidationError::key("interval", "must be at least 10ms");
/// assert_eq!(error.to_string(), "`interval` must be at least 10ms");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    key: Option<String>,
    message: String,
}

impl ValidationError {
    /// The whole section is wrong (`message` says why).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            key: None,
            message: message.into(),
        }
    }

    /// The key `key` of the section (as `interval`, or `retry.limit`) is
    /// wrong. The error then shows the value found (unless the key is
    /// secret) and the source that supplied it.
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            message: message.into(),
        }
    }

    pub(crate) fn relative_key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    pub(crate) fn text(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "`{key}` {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ValidationError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_problem_reads_as_one_sentence() {
        let error = ConfigError::invalid(vec![Problem::new(
            "worker.interval".into(),
            "expects a duration such as \"5s\", found \"fast\"".into(),
            Some("appsettings.Production.toml".into()),
        )]);
        assert_eq!(
            error.to_string(),
            "invalid configuration: `worker.interval` expects a duration such as \"5s\", \
             found \"fast\"\n  from: appsettings.Production.toml"
        );
    }

    #[test]
    fn several_problems_are_listed() {
        let error = ConfigError::combine([
            ConfigError::invalid(vec![Problem::new("a.x".into(), "is wrong".into(), None)]),
            ConfigError::invalid(vec![Problem::new(
                "b.y".into(),
                "is wrong too".into(),
                Some("environment variable APP_B__Y".into()),
            )]),
        ])
        .expect("two problems");
        assert_eq!(
            error.to_string(),
            "invalid configuration: 2 invalid values\n  `a.x` is wrong\n  `b.y` is wrong too\
             \n    from: environment variable APP_B__Y"
        );
        assert_eq!(error.problems().len(), 2);
    }

    #[test]
    fn a_file_error_wins_over_values() {
        let error = ConfigError::combine([
            ConfigError::invalid(vec![Problem::new("a".into(), "x".into(), None)]),
            ConfigError::malformed("/a.toml".into(), "TOML", (3, 7), "expected `=`".into()),
        ])
        .expect("an error");
        assert!(error.is_malformed());
        assert_eq!(error.line_column(), Some((3, 7)));
        assert_eq!(ConfigError::combine([]).map(|e| e.to_string()), None);
    }
}
