//! From `logging.level` (or `RUST_LOG`) to an `EnvFilter`.

use host_config::ValidationError;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{Directive, ParseError};

use super::{LogLevel, LoggingOptions};

/// The key of `logging.level` that sets the level of every other target
/// (in any case, as .NET's `Default`).
const DEFAULT_KEY: &str = "default";

/// The level of every target when `logging.level.default` is absent.
const DEFAULT_LEVEL: LogLevel = LogLevel::Info;

/// Characters that would make a directive more than a target and a level
/// (a span or field filter, a second level, a second directive).
const NOT_IN_TARGET: [char; 6] = [',', '=', '[', ']', '{', '}'];

impl LoggingOptions {
    /// The configured levels as `EnvFilter` directives, the default level
    /// first: `"info,app::worker=debug"`.
    pub(crate) fn directives(&self) -> String {
        let mut directives = vec![self.default_level().filter().to_string()];
        directives.extend(
            self.targets()
                .map(|(target, level)| format!("{target}={}", level.filter())),
        );
        directives.join(",")
    }

    /// Checks that every key of `logging.level` is a target an `EnvFilter`
    /// directive can name; for `OptionsBinding::validate`.
    pub(crate) fn check(&self) -> Result<(), ValidationError> {
        match self.problems().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every key of `logging.level` that is not a usable target.
    pub(crate) fn problems(&self) -> impl Iterator<Item = ValidationError> + '_ {
        self.targets().filter_map(|(target, level)| {
            target_directive(target, level)
                .err()
                .map(|reason| ValidationError::key(format!("level.{target}"), reason))
        })
    }

    /// The filter of the configured levels; a target that is not usable
    /// (see [`check`](Self::check)) is left out rather than failing.
    pub(crate) fn filter(&self) -> EnvFilter {
        // Built from parsed directives: `EnvFilter::new` would print its
        // complaints with `eprintln!`, which panics on a closed stderr.
        self.targets()
            .filter_map(|(target, level)| target_directive(target, level).ok())
            .fold(
                EnvFilter::default().add_directive(self.default_level().filter().into()),
                EnvFilter::add_directive,
            )
    }

    fn default_level(&self) -> LogLevel {
        self.level
            .iter()
            .find(|(target, _)| is_default_key(target))
            .map_or(DEFAULT_LEVEL, |(_, level)| *level)
    }

    /// The configured targets, without `default`.
    fn targets(&self) -> impl Iterator<Item = (&str, LogLevel)> {
        self.level
            .iter()
            .filter(|(target, _)| !is_default_key(target))
            .map(|(target, level)| (target.as_str(), *level))
    }
}

/// `default`, or .NET's `Default`: no Rust target is spelled so.
fn is_default_key(target: &str) -> bool {
    target.eq_ignore_ascii_case(DEFAULT_KEY)
}

/// The directive `target=level`, or why `target` cannot be one.
fn target_directive(target: &str, level: LogLevel) -> Result<Directive, &'static str> {
    if target.is_empty() || target.trim() != target {
        return Err("is not a log target: it is empty or has surrounding spaces");
    }
    // These parse, but as something other than a target.
    if target.contains(NOT_IN_TARGET) {
        return Err("is not a log target: `,`, `=`, `[`, `]`, `{` and `}` have \
                    a meaning in filter directives");
    }
    format!("{target}={}", level.filter())
        .parse()
        .map_err(|_| "is not a log target: a target starts with a letter, a digit, `_`, `-` or `:`")
}

/// The filter the subscriber starts with.
#[derive(Debug)]
pub(crate) struct Initial {
    pub(crate) filter: EnvFilter,
    /// `RUST_LOG` is in force: the configured levels are ignored.
    pub(crate) from_env: bool,
    /// `RUST_LOG` was set but invalid: its value and why.
    pub(crate) rejected: Option<(String, ParseError)>,
}

/// The starting filter, given the value of `RUST_LOG`: a non-empty,
/// valid one overrides the configured levels entirely.
pub(crate) fn initial(rust_log: Option<&str>, options: &LoggingOptions) -> Initial {
    let configured = |rejected| Initial {
        filter: options.filter(),
        from_env: false,
        rejected,
    };
    match rust_log {
        Some(directives) if !directives.trim().is_empty() => {
            match EnvFilter::builder().parse(directives) {
                Ok(filter) => Initial {
                    filter,
                    from_env: true,
                    rejected: None,
                },
                Err(error) => configured(Some((directives.to_owned(), error))),
            }
        }
        _ => configured(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(levels: &[(&str, LogLevel)]) -> LoggingOptions {
        let mut options = LoggingOptions::default();
        for (target, level) in levels {
            options.level.insert((*target).to_owned(), *level);
        }
        options
    }

    #[test]
    fn directives_put_the_default_first() {
        assert_eq!(LoggingOptions::default().directives(), "info");
        let options = options(&[
            ("host::lifetime", LogLevel::Warn),
            ("app::worker", LogLevel::Debug),
            ("default", LogLevel::Error),
            ("noisy", LogLevel::Off),
        ]);
        assert_eq!(
            options.directives(),
            "error,app::worker=debug,host::lifetime=warn,noisy=off"
        );
        assert_eq!(options.check(), Ok(()));
        let dotnet = self::options(&[("Default", LogLevel::Warn), ("app", LogLevel::Debug)]);
        assert_eq!(dotnet.directives(), "warn,app=debug");
        // The filter holds the same directives (most specific first).
        let mut shown: Vec<String> = options
            .filter()
            .to_string()
            .split(',')
            .map(str::to_owned)
            .collect();
        shown.sort();
        let directives = options.directives();
        let mut expected: Vec<&str> = directives.split(',').collect();
        expected.sort();
        assert_eq!(shown, expected);
    }

    #[test]
    fn check_names_a_target_that_is_not_one() {
        for target in ["app[span]", "a,b", "a=b", "", " app", "#app", "{x}"] {
            let options = options(&[("app", LogLevel::Info), (target, LogLevel::Debug)]);
            let error = options.check().expect_err(target);
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("`level.{target}` is not a log target")),
                "{target:?}: {error}"
            );
            // Left out of the filter instead of breaking it.
            assert_eq!(options.filter().to_string(), "app=info,info", "{target:?}");
        }
    }

    #[test]
    fn rust_log_overrides_unless_empty_or_invalid() {
        let configured = options(&[("app", LogLevel::Debug)]);

        let from_env = initial(Some("warn,app=trace"), &configured);
        assert!(from_env.from_env && from_env.rejected.is_none());
        assert_eq!(from_env.filter.to_string(), "app=trace,warn");

        for unset in [None, Some(""), Some("  ")] {
            let configured = initial(unset, &configured);
            assert!(!configured.from_env && configured.rejected.is_none());
            assert_eq!(configured.filter.to_string(), "app=debug,info");
        }

        let rejected = initial(Some("app=loud"), &configured);
        assert!(!rejected.from_env);
        assert_eq!(rejected.filter.to_string(), "app=debug,info");
        assert_eq!(
            rejected.rejected.map(|(value, _)| value).as_deref(),
            Some("app=loud")
        );
    }
}
