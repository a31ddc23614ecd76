//! The hosting environment: its name, the application's name, the content root.

use std::path::{Path, PathBuf};

/// The environment variable that names the hosting environment
/// (`Development`, `Staging`, `Production`). When it is unset or empty,
/// .NET's `DOTNET_ENVIRONMENT` and then `ASPNETCORE_ENVIRONMENT` name it;
/// Production when none is set.
pub const ENVIRONMENT_VARIABLE: &str = "HOST_ENVIRONMENT";

/// The variables read for the environment's name, first set first:
/// ours, then .NET's generic host's, then ASP.NET Core's, so that a .NET
/// developer's `DOTNET_ENVIRONMENT=Development` selects
/// `appsettings.Development.json` here too.
const ENVIRONMENT_VARIABLES: [&str; 3] = [
    ENVIRONMENT_VARIABLE,
    "DOTNET_ENVIRONMENT",
    "ASPNETCORE_ENVIRONMENT",
];

/// The environment's name from the first of [`ENVIRONMENT_VARIABLES`] that
/// `lookup` finds set and not blank; Production otherwise.
fn environment_name(lookup: impl Fn(&str) -> Option<String>) -> String {
    ENVIRONMENT_VARIABLES
        .iter()
        .filter_map(|variable| lookup(variable))
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| environments::PRODUCTION.to_owned())
}

/// The names of the standard environments.
pub mod environments {
    /// For development on a developer's machine.
    pub const DEVELOPMENT: &str = "Development";
    /// For a pre-production environment.
    pub const STAGING: &str = "Staging";
    /// For production; the default.
    pub const PRODUCTION: &str = "Production";
}

/// Where and as what the host runs, as .NET's `IHostEnvironment`.
///
/// Resolvable from the container. Environment names compare without regard
/// to case, as in .NET.
///
/// # Examples
///
/// ```
/// use host_core::HostEnvironment;
///
/// let environment = HostEnvironment::new("development", "billing", "/srv/billing");
/// assert!(environment.is_development());
/// assert!(environment.is_environment("Development"));
/// assert_eq!(environment.application_name(), "billing");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEnvironment {
    environment_name: String,
    application_name: String,
    content_root: PathBuf,
}

impl HostEnvironment {
    /// An environment with the given names and content root.
    pub fn new(
        environment_name: impl Into<String>,
        application_name: impl Into<String>,
        content_root: impl Into<PathBuf>,
    ) -> Self {
        Self {
            environment_name: environment_name.into(),
            application_name: application_name.into(),
            content_root: content_root.into(),
        }
    }

    /// The environment of this process: the name from
    /// [`ENVIRONMENT_VARIABLE`], or, when it is unset or empty, from
    /// `DOTNET_ENVIRONMENT`, then `ASPNETCORE_ENVIRONMENT` (Production when
    /// none is set); the executable's name as the application name; the
    /// current directory as the content root.
    pub fn from_process() -> Self {
        let environment_name = environment_name(|variable| std::env::var(variable).ok());
        let application_name = std::env::current_exe()
            .ok()
            .and_then(|exe| {
                exe.file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "app".to_owned());
        let content_root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::new(environment_name, application_name, content_root)
    }

    /// The environment's name, as spelled where it was set.
    pub fn environment_name(&self) -> &str {
        &self.environment_name
    }

    /// The application's name.
    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// The directory the application's content (configuration files, ...) is read from.
    pub fn content_root(&self) -> &Path {
        &self.content_root
    }

    /// Whether the environment is `name`, ignoring case.
    pub fn is_environment(&self, name: &str) -> bool {
        self.environment_name.eq_ignore_ascii_case(name)
    }

    /// Whether this is the Development environment.
    pub fn is_development(&self) -> bool {
        self.is_environment(environments::DEVELOPMENT)
    }

    /// Whether this is the Staging environment.
    pub fn is_staging(&self) -> bool {
        self.is_environment(environments::STAGING)
    }

    /// Whether this is the Production environment.
    pub fn is_production(&self) -> bool {
        self.is_environment(environments::PRODUCTION)
    }

    pub(crate) fn set_environment_name(&mut self, name: String) {
        self.environment_name = name;
    }

    pub(crate) fn set_application_name(&mut self, name: String) {
        self.application_name = name;
    }

    pub(crate) fn set_content_root(&mut self, root: PathBuf) {
        self.content_root = root;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case() {
        let environment = HostEnvironment::new("STAGING", "app", ".");
        assert!(environment.is_staging());
        assert!(!environment.is_production());
        assert!(!environment.is_development());
        assert_eq!(environment.environment_name(), "STAGING");
    }

    #[test]
    fn dotnet_variables_name_the_environment_when_ours_is_unset() {
        let name = |set: &[(&str, &str)]| {
            let set: Vec<(String, String)> = set
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect();
            environment_name(move |variable| {
                set.iter()
                    .find(|(key, _)| key == variable)
                    .map(|(_, value)| value.clone())
            })
        };
        assert_eq!(name(&[]), "Production");
        assert_eq!(name(&[("ASPNETCORE_ENVIRONMENT", "Staging")]), "Staging");
        assert_eq!(
            name(&[
                ("ASPNETCORE_ENVIRONMENT", "Staging"),
                ("DOTNET_ENVIRONMENT", "Development")
            ]),
            "Development"
        );
        assert_eq!(
            name(&[
                ("HOST_ENVIRONMENT", "Test"),
                ("DOTNET_ENVIRONMENT", "Development")
            ]),
            "Test"
        );
        // Blank is unset: the next one names it.
        assert_eq!(
            name(&[
                ("HOST_ENVIRONMENT", " "),
                ("DOTNET_ENVIRONMENT", " Development ")
            ]),
            "Development"
        );
    }

    #[test]
    fn from_process_has_a_name_and_a_root() {
        let environment = HostEnvironment::from_process();
        assert!(!environment.environment_name().is_empty());
        assert!(!environment.application_name().is_empty());
        assert!(environment.content_root().is_absolute());
    }
}
