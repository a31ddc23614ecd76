//! How to reach etcd: endpoints, credentials, TLS, key prefix, timeouts,
//! from an `etcd://` or `etcds://` URL and builder methods.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use super::EtcdStore;
use super::keys::Prefix;
use crate::ClusterError;

/// A user name and its password; `Debug` shows the name only.
#[derive(Clone)]
pub(super) struct Credentials {
    pub(super) user: String,
    pub(super) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// How [`EtcdStore`] reaches etcd.
///
/// The URL: `etcd://[user:password@]host:port[,host:port...][/prefix][?ca=<file>]`,
/// or `etcds://` for TLS (the server's certificate checked against the CA
/// file given by `?ca=`, else the web's root CAs). Several members, comma
/// separated, share the requests and stand in for one another. The path,
/// when given, is the key prefix (`etcd://h:2379/orders/` keeps keys under
/// `orders/`); otherwise it is `host/`. User and password may be
/// percent-encoded. `Debug` and every error show the URL without its
/// password.
#[derive(Clone)]
pub struct EtcdOptions {
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) address: String,
    pub(super) credentials: Option<Credentials>,
    pub(super) prefix: Prefix,
    pub(super) connect_timeout: Duration,
    pub(super) operation_timeout: Duration,
    hosts: Vec<String>,
    tls: Option<ClientTlsConfig>,
}

impl fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdOptions")
            .field("address", &self.address)
            .field("prefix", &self.prefix.as_str())
            .field("tls", &self.tls.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl EtcdOptions {
    /// Options from a URL (see the type's docs), with a connect timeout
    /// and an operation timeout of 5 s each.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Invalid`] naming the URL (without its password) and
    /// what is wrong: another scheme, no host, a bad port, prefix or query,
    /// a CA file that cannot be read.
    pub fn new(url: &str) -> Result<Self, ClusterError> {
        let shown = crate::redact::url_without_secrets("etcd", url);
        let invalid = |why: &'static str| ClusterError::Invalid {
            what: "etcd URL",
            value: shown.clone(),
            why,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("it has no `://`"))?;
        let tls = match scheme {
            "etcd" => false,
            "etcds" => true,
            _ => return Err(invalid("its scheme is neither etcd:// nor etcds://")),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((user_info, hosts)) => {
                let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
                let user = percent_decode(user).ok_or_else(|| invalid("its user is not UTF-8"))?;
                let password = percent_decode(password)
                    .ok_or_else(|| invalid("its password is not valid percent-encoded UTF-8"))?;
                if user.is_empty() {
                    return Err(invalid("it has a password but no user"));
                }
                (Some(Credentials { user, password }), hosts)
            }
            None => (None, authority),
        };
        let hosts: Vec<String> = hosts.split(',').map(str::to_owned).collect();
        for host in &hosts {
            let port = host.rsplit_once(':').map(|(_, port)| port);
            if host.is_empty() || host.starts_with(':') {
                return Err(invalid("a member has no host"));
            }
            if !port.is_some_and(|port| port.parse::<u16>().is_ok_and(|port| port > 0)) {
                return Err(invalid("a member has no port, or a bad one (host:port)"));
            }
        }
        let mut options = Self {
            endpoints: Vec::new(),
            address: String::new(),
            credentials,
            prefix: Prefix::default(),
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(5),
            hosts,
            tls: tls.then(|| ClientTlsConfig::new().with_webpki_roots()),
        };
        if !path.is_empty() {
            options = options.prefix(path)?;
        }
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("ca", file)) if tls => {
                    let file =
                        percent_decode(file).ok_or_else(|| invalid("its `ca` is not UTF-8"))?;
                    options = options.ca_file(file)?;
                }
                Some(("ca", _)) => return Err(invalid("`ca` needs an etcds:// URL")),
                _ => return Err(invalid("its query takes only `ca=<file>`")),
            }
        }
        options.rebuild()?;
        Ok(options)
    }

    /// Keeps every key under `prefix` (default `host/`), so that
    /// applications sharing one etcd stay apart.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Invalid`]: empty, longer than 128 bytes, or holding
    /// a control character.
    pub fn prefix(mut self, prefix: &str) -> Result<Self, ClusterError> {
        self.prefix = Prefix::new(prefix)?;
        self.rebuild()?;
        Ok(self)
    }

    /// Logs in as `user` (replacing the URL's credentials): the store
    /// authenticates at its first request, and again when etcd says its
    /// token is no longer valid.
    #[must_use]
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        });
        self.address = self.shown();
        self
    }

    /// Checks the members' certificates against the CA in the PEM file
    /// `path` (turning TLS on, as `etcds://` does).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Invalid`] naming the file: it cannot be read.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Result<Self, ClusterError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|_| ClusterError::Invalid {
            what: "etcd CA file",
            value: path.display().to_string(),
            why: "it cannot be read",
        })?;
        self.tls = Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)));
        self.rebuild()?;
        Ok(self)
    }

    /// How long connecting to a member may take (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self.endpoints = self
            .endpoints
            .into_iter()
            .map(|e| e.connect_timeout(timeout))
            .collect();
        self
    }

    /// How long one store operation may take, all its requests together
    /// (default 5 s): past it, it fails naming the endpoints.
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Connects now, to fail early: one request must be answered.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Store`] naming the endpoints: no member answered
    /// within the operation timeout, or the login was refused.
    pub async fn connect(self) -> Result<EtcdStore, ClusterError> {
        let store = EtcdStore::new(self);
        store.probe().await?;
        Ok(store)
    }

    /// A store that connects at its first request, so that a host builds
    /// and starts while etcd is down.
    pub fn connect_lazily(self) -> EtcdStore {
        EtcdStore::new(self)
    }

    /// The endpoints and the address shown, after a change of the parts
    /// they are made of.
    fn rebuild(&mut self) -> Result<(), ClusterError> {
        self.address = self.shown();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoints = Vec::with_capacity(self.hosts.len());
        for host in &self.hosts {
            let invalid = |_| ClusterError::Invalid {
                what: "etcd member",
                value: host.clone(),
                why: "it is not a valid host:port",
            };
            let mut endpoint = Endpoint::from_shared(format!("{scheme}://{host}"))
                .map_err(invalid)?
                .connect_timeout(self.connect_timeout)
                .tcp_nodelay(true);
            if let Some(tls) = &self.tls {
                endpoint = endpoint.tls_config(tls.clone()).map_err(invalid)?;
            }
            endpoints.push(endpoint);
        }
        self.endpoints = endpoints;
        Ok(())
    }

    /// `etcd[s]://user@host:port,.../prefix`: never the password.
    fn shown(&self) -> String {
        let scheme = if self.tls.is_some() { "etcds" } else { "etcd" };
        let user = self
            .credentials
            .as_ref()
            .map_or_else(String::new, |credentials| format!("{}@", credentials.user));
        format!(
            "{scheme}://{user}{}/{}",
            self.hosts.join(","),
            self.prefix.as_str()
        )
    }
}

/// `%XX` escapes decoded; `None` when they do not make UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = text.get(at + 1..at + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_members_credentials_prefix_and_tls() {
        let options = EtcdOptions::new("etcd://app:p%40ss@a:2379,b:2380/orders/").unwrap();
        assert_eq!(options.endpoints.len(), 2);
        assert_eq!(options.prefix.as_str(), "orders/");
        let credentials = options.credentials.as_ref().unwrap();
        assert_eq!(
            (&*credentials.user, &*credentials.password),
            ("app", "p@ss")
        );
        assert_eq!(options.address, "etcd://app@a:2379,b:2380/orders/");
        let plain = EtcdOptions::new("etcds://h:2379").unwrap();
        assert_eq!(plain.address, "etcds://h:2379/host/");
        assert!(plain.tls.is_some());
    }

    #[test]
    fn bad_urls_are_refused_naming_why_without_the_password() {
        for (url, why) in [
            ("http://h:2379", "scheme"),
            ("etcd://", "no host"),
            ("etcd://:s3cret@h:2379", "no user"),
            ("etcd://u:s3cret@h", "port"),
            ("etcd://u:s3cret@h:2379,:1", "no host"),
            ("etcd://u:s3cret@h:99999", "port"),
            ("etcd://h:2379?ca=x", "etcds://"),
            ("etcd://h:2379?user=x", "only `ca="),
            ("etcds://h:2379?ca=/no/such/ca.pem", "cannot be read"),
        ] {
            let error = EtcdOptions::new(url).unwrap_err().to_string();
            assert!(error.contains(why), "{url}: {error}");
            assert!(!error.contains("s3cret"), "{url}: {error}");
        }
    }

    #[test]
    fn debug_shows_no_password() {
        let options = EtcdOptions::new("etcd://app:s3cret@h:2379")
            .unwrap()
            .credentials("root", "an0ther");
        let debug = format!("{options:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("an0ther"),
            "{debug}"
        );
        assert!(debug.contains("etcd://root@h:2379/host/"), "{debug}");
    }
}
