//! Configuration files: TOML and JSON, read and parsed by us so that a
//! malformed file is reported with its line and column.

use std::path::{Path, PathBuf};

use figment::value::{Dict, Value};

use crate::ConfigError;

/// The format of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileFormat {
    /// TOML (`.toml`).
    Toml,
    /// JSON (`.json`).
    Json,
}

impl FileFormat {
    fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(Self::Toml),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Toml => "TOML",
            Self::Json => "JSON",
        }
    }
}

/// A configuration file to add with
/// [`ConfigurationBuilder::add_file`](crate::ConfigurationBuilder::add_file).
///
/// A relative path is relative to the content root. The format follows the
/// extension (`.toml`, `.json`) unless set.
///
/// ```
/// use host_config::ConfigFile;
///
/// let file = ConfigFile::new("secrets/db.toml").optional().reload_on_change(true);
/// # let _ = file;
/// ```
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    format: Option<FileFormat>,
    optional: bool,
    reload: bool,
}

impl ConfigFile {
    /// A required file, not reloaded, its format from its extension.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            format: None,
            optional: false,
            reload: false,
        }
    }

    /// A missing file is not an error: the file adds nothing.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Whether a change to the file reloads the configuration. Default: `false`.
    pub fn reload_on_change(mut self, reload: bool) -> Self {
        self.reload = reload;
        self
    }

    /// The file's format, whatever its extension.
    pub fn format(mut self, format: FileFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// The file, resolved against the content root, ready to load.
    pub(crate) fn resolve(&self, content_root: &Path) -> Result<FileLayer, ConfigError> {
        let path = content_root.join(&self.path);
        let format = self
            .format
            .or_else(|| FileFormat::from_path(&path))
            .ok_or_else(|| {
                ConfigError::unreadable(
                    path.clone(),
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "unknown format: name the file .toml or .json, or set ConfigFile::format",
                    ),
                )
            })?;
        Ok(FileLayer {
            path,
            format,
            optional: self.optional,
            reload: self.reload,
        })
    }
}

/// A file resolved against the content root.
#[derive(Debug, Clone)]
pub(crate) struct FileLayer {
    pub(crate) path: PathBuf,
    format: FileFormat,
    optional: bool,
    pub(crate) reload: bool,
}

impl FileLayer {
    /// Reads and parses the file; `None` for a missing optional file.
    pub(crate) fn load(&self) -> Result<Option<Dict>, ConfigError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && self.optional => {
                return Ok(None);
            }
            Err(error) => return Err(ConfigError::unreadable(self.path.clone(), error)),
        };
        self.parse(&text).map(Some)
    }

    fn parse(&self, text: &str) -> Result<Dict, ConfigError> {
        let malformed = |at, message| {
            ConfigError::malformed(self.path.clone(), self.format.name(), at, message)
        };
        match self.format {
            FileFormat::Toml => match toml::from_str::<Dict>(text) {
                Ok(dict) => Ok(plain_datetimes(dict)),
                Err(error) => {
                    let offset = error.span().map_or(0, |span| span.start);
                    Err(malformed(
                        line_column(text, offset),
                        error.message().trim().to_owned(),
                    ))
                }
            },
            FileFormat::Json => serde_json::from_str::<Dict>(text).map_err(|error| {
                // serde_json's message ends with " at line L column C".
                let message = error.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(head, _)| head)
                    .to_owned();
                malformed((error.line(), error.column().max(1)), message)
            }),
        }
    }
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The TOML parser represents a datetime as a one-key table; the
/// configuration holds it as the string it was written as.
fn plain_datetimes(dict: Dict) -> Dict {
    const DATETIME: &str = "$__toml_private_datetime";
    fn plain(value: Value) -> Value {
        match value {
            Value::Dict(tag, dict) => {
                if dict.len() == 1
                    && let Some(Value::String(_, text)) = dict.get(DATETIME)
                {
                    return Value::String(tag, text.clone());
                }
                Value::Dict(tag, plain_datetimes(dict))
            }
            Value::Array(tag, items) => Value::Array(tag, items.into_iter().map(plain).collect()),
            other => other,
        }
    }
    dict.into_iter()
        .map(|(key, value)| (key, plain(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(path: &str) -> FileLayer {
        ConfigFile::new(path)
            .resolve(Path::new("/nowhere"))
            .expect("a known format")
    }

    #[test]
    fn toml_errors_carry_line_and_column() {
        let error = layer("a.toml")
            .parse("[worker]\ninterval = \"5s\"\nname = \"abc\n")
            .expect_err("unterminated string");
        assert!(error.is_malformed());
        assert_eq!(error.line_column(), Some((3, 12)));
        let text = error.to_string();
        assert!(
            text.starts_with("invalid configuration: /nowhere/a.toml is not valid TOML: "),
            "{text}"
        );
        assert!(text.ends_with("\n  at: line 3, column 12"), "{text}");
        assert!(
            !text.contains("abc"),
            "the value is not quoted back: {text}"
        );
    }

    #[test]
    fn json_errors_carry_line_and_column() {
        let error = layer("a.json")
            .parse("{\n  \"worker\": {\"interval\": }\n}")
            .expect_err("missing value");
        assert_eq!(error.line_column(), Some((2, 26)));
        assert_eq!(
            error.to_string(),
            "invalid configuration: /nowhere/a.json is not valid JSON: expected value\n  at: line 2, column 26"
        );
    }

    #[test]
    fn a_json_file_must_hold_an_object() {
        let error = layer("a.json").parse("[1, 2]").expect_err("not an object");
        assert!(error.to_string().contains("expected a map"), "{error}");
    }

    #[test]
    fn datetimes_are_strings() {
        let dict = layer("a.toml")
            .parse("when = 1979-05-27T07:32:00Z\n[deep]\nlist = [1979-05-27]\n")
            .expect("valid");
        assert_eq!(dict["when"].as_str(), Some("1979-05-27T07:32:00Z"));
        let list = dict["deep"].as_dict().expect("a table")["list"]
            .as_array()
            .expect("a list");
        assert_eq!(list[0].as_str(), Some("1979-05-27"));
    }

    #[test]
    fn missing_files() {
        let optional = ConfigFile::new("missing.toml").optional();
        let required = ConfigFile::new("missing.toml");
        let root = Path::new("/definitely/not/here");
        assert!(optional.resolve(root).unwrap().load().unwrap().is_none());
        let error = required
            .resolve(root)
            .unwrap()
            .load()
            .expect_err("required");
        assert_eq!(
            error.file(),
            Some(Path::new("/definitely/not/here/missing.toml"))
        );
    }

    #[test]
    fn the_format_comes_from_the_extension() {
        let error = ConfigFile::new("settings.yaml")
            .resolve(Path::new("/srv"))
            .expect_err("unknown format");
        assert!(
            error.to_string().contains("name the file .toml or .json"),
            "{error}"
        );
        assert!(
            ConfigFile::new("settings.conf")
                .format(FileFormat::Toml)
                .resolve(Path::new("/srv"))
                .is_ok()
        );
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_column("a\nbé=", 5), (2, 3));
        assert_eq!(line_column("", 0), (1, 1));
    }
}
