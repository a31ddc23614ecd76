//! The `web` configuration section.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use host_config::ValidationError;
use serde::{Deserialize, Deserializer};

/// The address served when none is configured.
pub const DEFAULT_URL: &str = "127.0.0.1:8080";

/// The web server's options, bound from the `web` configuration section.
///
/// ```toml
/// [web]
/// urls = "127.0.0.1:8080"          # or a list; ';' separates several; port 0 picks a free port
/// shutdown_delay = "5s"             # keep serving, not ready, so load balancers notice
/// drain_timeout = "10s"             # default: what is left of the host's shutdown timeout
/// trace_requests = true             # default: when tower_http's debug level is on
///
/// [web.health]
/// live_path = "/health/live"
/// startup_path = "/health/startup"
/// ready_path = "/health/ready"
/// check_timeout = "5s"
/// cache_for = "2s"                  # a check's result is reused this long; "0s": not at all
/// detailed_errors = false           # default: true in Development only
/// ```
///
/// An environment variable overrides it as any key:
/// `APP_WEB__URLS="0.0.0.0:80"`; on the command line, `--web.urls=...` or,
/// as in ASP.NET Core, `--urls=...`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct WebOptions {
    /// Where to listen: `host:port`, optionally `http://host:port`; the host
    /// is an IP address, `localhost` (127.0.0.1) or `*` (every IPv4
    /// interface). Default: [`DEFAULT_URL`].
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    /// How long the server keeps serving after the host begins to stop,
    /// with `/health/ready` already answering 503, so that load balancers
    /// stop sending traffic first (as a Kubernetes `preStop` delay).
    /// Default: 0.
    #[serde(with = "host_config::duration")]
    pub shutdown_delay: Duration,
    /// How long requests in flight may take to finish once the server stops
    /// accepting; what is still open then is closed. Default: what is left
    /// of the host's shutdown timeout.
    #[serde(with = "host_config::duration::option")]
    pub drain_timeout: Option<Duration>,
    /// Whether each request is traced by `tower-http` (a `request` span,
    /// debug events for the request and the response, an error event for a
    /// server error). Default: when the `tower_http` target's debug level is
    /// on at start (`logging.level.tower_http = "debug"`), since the tracing
    /// costs every request even when nothing is printed.
    pub trace_requests: Option<bool>,
    /// The health endpoints.
    pub health: HealthOptions,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            urls: vec![DEFAULT_URL.to_owned()],
            shutdown_delay: Duration::ZERO,
            drain_timeout: None,
            trace_requests: None,
            health: HealthOptions::default(),
        }
    }
}

/// The health endpoints' options (`web.health`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthOptions {
    /// Whether the endpoints are served. Default: `true`.
    pub enabled: bool,
    /// Answers 200 while no hosted service is hung (missed its heartbeat
    /// deadline) with no restart coming; 503 naming the hung services
    /// otherwise. Default: `/health/live`.
    pub live_path: String,
    /// Answers 200 once the host has started, and from then on (the stop
    /// included); 503 before. For Kubernetes' startup probe, which is
    /// consulted only until it first succeeds. Default: `/health/startup`.
    pub startup_path: String,
    /// Answers 200 once the host has started, until it begins to stop, while
    /// every hosted service required for readiness and every health check is
    /// healthy; 503 otherwise. Default: `/health/ready`.
    pub ready_path: String,
    /// How long one health check may take before it counts as unhealthy.
    /// Default: 5 s.
    #[serde(with = "host_config::duration")]
    pub check_timeout: Duration,
    /// How long a health check's result is reused by `/health/ready`
    /// before the check runs again; zero runs it for every request. Either
    /// way a check never runs twice at once: requests that come while it
    /// runs share its result. The host's own state (starting, stopping) and
    /// the hosted services' states are read on every request, never cached.
    /// Default: 2 s.
    #[serde(with = "host_config::duration")]
    pub cache_for: Duration,
    /// Whether bodies carry error text (a failed service's error, a check's
    /// description). Default: in Development only.
    pub detailed_errors: Option<bool>,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            live_path: "/health/live".to_owned(),
            startup_path: "/health/startup".to_owned(),
            ready_path: "/health/ready".to_owned(),
            check_timeout: Duration::from_secs(5),
            cache_for: Duration::from_secs(2),
            detailed_errors: None,
        }
    }
}

impl WebOptions {
    /// The socket addresses of [`urls`](Self::urls).
    ///
    /// # Errors
    ///
    /// The first URL that is not `host:port` with a usable host, as text.
    pub fn addresses(&self) -> Result<Vec<SocketAddr>, String> {
        self.urls.iter().map(|url| parse_url(url)).collect()
    }

    /// The checks `build()` runs, so that a bad address is invalid
    /// configuration (exit code 2), not a failure to start.
    pub(crate) fn check(&self) -> Result<(), ValidationError> {
        if self.urls.is_empty() {
            return Err(ValidationError::key(
                "urls",
                "must name at least one address",
            ));
        }
        if let Err(problem) = self.addresses() {
            return Err(ValidationError::key(
                "urls",
                format!("must be host:port, such as {DEFAULT_URL}: {problem}"),
            ));
        }
        let paths = [
            ("health.live_path", &self.health.live_path),
            ("health.ready_path", &self.health.ready_path),
            ("health.startup_path", &self.health.startup_path),
        ];
        for (key, path) in paths {
            if !path.starts_with('/') {
                return Err(ValidationError::key(key, "must start with `/`"));
            }
        }
        // The router would panic at start on a route added twice.
        if self.health.enabled {
            for (index, (key, path)) in paths.iter().enumerate() {
                if let Some((earlier, _)) = paths[..index].iter().find(|(_, other)| other == path) {
                    return Err(ValidationError::key(
                        *key,
                        format!("must differ from `{earlier}`, both are {path:?}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn parse_url(url: &str) -> Result<SocketAddr, String> {
    let trimmed = url.trim();
    if trimmed.starts_with("https://") {
        return Err(format!(
            "`{trimmed}`: https is not served here; terminate TLS in front of the host"
        ));
    }
    let address = trimmed.strip_prefix("http://").unwrap_or(trimmed);
    let address = address.strip_suffix('/').unwrap_or(address);
    if let Ok(socket) = address.parse::<SocketAddr>() {
        return Ok(socket);
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!(
            "`{trimmed}` has no port: write it as host:port, such as 127.0.0.1:8080"
        ));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{trimmed}` has no valid port (0 to 65535)"))?;
    let ip = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        "*" | "+" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        other => other.parse::<IpAddr>().map_err(|_| {
            format!(
                "`{trimmed}` is not host:port with an IP address, `localhost` or `*` as the host"
            )
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// A string (several addresses separated by `;` or `,`) or a list.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(text) => text
            .split([';', ','])
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(urls) => urls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_their_forms() {
        for (url, expected) in [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("http://127.0.0.1:0/", "127.0.0.1:0"),
            ("localhost:3000", "127.0.0.1:3000"),
            ("*:80", "0.0.0.0:80"),
            ("[::1]:8080", "[::1]:8080"),
            (" 0.0.0.0:9000 ", "0.0.0.0:9000"),
        ] {
            assert_eq!(parse_url(url).unwrap().to_string(), expected, "{url}");
        }
    }

    #[test]
    fn bad_urls_say_why() {
        assert!(parse_url("127.0.0.1").unwrap_err().contains("has no port"));
        assert!(
            parse_url("127.0.0.1:http")
                .unwrap_err()
                .contains("no valid port")
        );
        assert!(
            parse_url("example.com:80")
                .unwrap_err()
                .contains("is not host:port")
        );
        assert!(
            parse_url("https://127.0.0.1:443")
                .unwrap_err()
                .contains("terminate TLS")
        );
    }

    #[test]
    fn one_string_may_hold_several() {
        let options: WebOptions =
            serde_json::from_str(r#"{"urls": "127.0.0.1:1; 127.0.0.1:2"}"#).unwrap();
        assert_eq!(options.urls, ["127.0.0.1:1", "127.0.0.1:2"]);
        let options: WebOptions = serde_json::from_str(r#"{"urls": ["127.0.0.1:3"]}"#).unwrap();
        assert_eq!(options.urls, ["127.0.0.1:3"]);
    }

    #[test]
    fn checks() {
        assert_eq!(WebOptions::default().check(), Ok(()));
        let options = WebOptions {
            urls: vec!["nowhere".into()],
            ..WebOptions::default()
        };
        assert!(options.check().is_err());
        let mut options = WebOptions::default();
        options.health.startup_path = "/health/live".into();
        assert_eq!(
            options.check(),
            Err(ValidationError::key(
                "health.startup_path",
                "must differ from `health.live_path`, both are \"/health/live\""
            ))
        );
        options.health.enabled = false;
        assert_eq!(options.check(), Ok(()), "no endpoints, no clash");
        let mut options = WebOptions::default();
        options.health.ready_path = "ready".into();
        assert_eq!(
            options.check(),
            Err(ValidationError::key(
                "health.ready_path",
                "must start with `/`"
            ))
        );
    }
}
