//! etcd servers of a test's own: one member or a three-member cluster on
//! free loopback ports, each member's data in a temporary directory, with
//! short Raft timings so that one-second leases work. Members can be
//! killed and restarted, the Raft leader found; dropping the cluster kills
//! every member.
//!
//! Each member also serves plain HTTP on a metrics port of its own
//! (`/health`, `/metrics`), even when its client port takes TLS: that is
//! how the launcher sees a member ready and finds the leader.
//!
//! [`EtcdLauncher::inside`] runs the members under a command (such as `ip
//! netns exec <name>`, a network namespace of [`crate::netns`]) on an
//! address of that namespace instead of the loopback; the launcher then
//! asks the members through `etcdctl` run under the same command, as the
//! test's own namespace cannot reach them.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::NO_HANG;

/// How a cluster is started.
#[derive(Debug, Clone)]
pub struct EtcdLauncher {
    members: usize,
    tls: Option<(PathBuf, PathBuf)>,
    place: Place,
}

/// Where the members run and listen.
#[derive(Debug, Clone)]
struct Place {
    /// A command and its arguments the members (and `etcdctl`) run under;
    /// empty for none.
    wrap: Vec<String>,
    /// The address every member listens on.
    address: String,
}

impl Default for Place {
    fn default() -> Self {
        Self {
            wrap: Vec::new(),
            address: "127.0.0.1".to_owned(),
        }
    }
}

impl Default for EtcdLauncher {
    /// One member, as [`new`](Self::new).
    fn default() -> Self {
        Self::new()
    }
}

impl EtcdLauncher {
    /// One member, plain TCP.
    pub fn new() -> Self {
        Self {
            members: 1,
            tls: None,
            place: Place::default(),
        }
    }

    /// Runs every member under `wrap` (a command and its arguments, such
    /// as [`crate::netns::Member::exec`]: the member's command line
    /// follows), listening on `address` (one of that namespace's) instead
    /// of 127.0.0.1. Free ports are still picked on the loopback: a new
    /// namespace's address has every port free.
    #[must_use]
    pub fn inside(mut self, wrap: &[String], address: &str) -> Self {
        self.place = Place {
            wrap: wrap.to_vec(),
            address: address.to_owned(),
        };
        self
    }

    /// `count` members (three tolerate the loss of one).
    #[must_use]
    pub fn members(mut self, count: usize) -> Self {
        self.members = count.max(1);
        self
    }

    /// Serves clients over TLS with this PEM certificate and key.
    #[must_use]
    pub fn tls(mut self, certificate: &Path, key: &Path) -> Self {
        self.tls = Some((certificate.to_owned(), key.to_owned()));
        self
    }

    /// Starts every member and waits until each is healthy; `None` when
    /// the `etcd` binary cannot be run (the caller prints that it skips).
    ///
    /// # Panics
    ///
    /// If a member does not become healthy within [`NO_HANG`], with its
    /// log.
    pub fn start(self) -> Option<EtcdCluster> {
        let runs = Command::new("etcd")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !runs {
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "host-test-etcd-{}-{:08x}",
            std::process::id(),
            random()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut members: Vec<Member> = (0..self.members)
            .map(|index| Member {
                name: format!("m{index}"),
                client_port: free_port(),
                peer_port: free_port(),
                metrics_port: free_port(),
                process: None,
            })
            .collect();
        let address = &self.place.address;
        let initial_cluster = members
            .iter()
            .map(|member| format!("{}=http://{address}:{}", member.name, member.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            dir,
            tls: self.tls,
            place: self.place,
            initial_cluster,
            token: format!("host-test-{:08x}", random()),
            members: Vec::new(),
        };
        for member in &mut members {
            member.process = Some(cluster.spawn(member));
        }
        cluster.members = members;
        for index in 0..cluster.members.len() {
            cluster.wait_healthy(index);
        }
        Some(cluster)
    }
}

#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    metrics_port: u16,
    process: Option<Child>,
}

/// Running etcd members of a test's own; dropped, they are killed and
/// their data deleted.
#[derive(Debug)]
pub struct EtcdCluster {
    dir: PathBuf,
    tls: Option<(PathBuf, PathBuf)>,
    place: Place,
    initial_cluster: String,
    token: String,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// One member, plain TCP; `None` when etcd cannot be started.
    pub fn single() -> Option<Self> {
        EtcdLauncher::new().start()
    }

    /// Three members, plain TCP; `None` when etcd cannot be started.
    pub fn three() -> Option<Self> {
        EtcdLauncher::new().members(3).start()
    }

    /// The members' client addresses, `127.0.0.1:<port>` (or the address
    /// given to [`EtcdLauncher::inside`]).
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|member| format!("{}:{}", self.place.address, member.client_port))
            .collect()
    }

    /// `etcd://` (or `etcds://`) and every member, comma separated.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "etcds" } else { "etcd" };
        format!("{scheme}://{}", self.endpoints().join(","))
    }

    /// Kills member `index` (SIGKILL) and waits for it to end.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut process) = self.members[index].process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts member `index` again on its data and ports, and waits until
    /// it is healthy.
    ///
    /// # Panics
    ///
    /// If it does not become healthy within [`NO_HANG`].
    pub fn restart(&mut self, index: usize) {
        self.kill(index);
        let process = self.spawn(&self.members[index]);
        self.members[index].process = Some(process);
        self.wait_healthy(index);
    }

    /// The index of the member that is the Raft leader, once one is.
    ///
    /// # Panics
    ///
    /// If no running member says it leads within [`NO_HANG`].
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + NO_HANG;
        while Instant::now() < deadline {
            let leading = (0..self.members.len())
                .find(|&index| self.members[index].process.is_some() && self.leads(index));
            if let Some(index) = leading {
                return index;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no etcd member leads; logs in {}", self.dir.display());
    }

    /// Kills the Raft leader; returns its index.
    pub fn kill_leader(&mut self) -> usize {
        let leader = self.leader();
        self.kill(leader);
        leader
    }

    /// Runs `etcdctl` (API v3) against every member with `args`: its
    /// standard output, or `Err` with what went wrong (`etcdctl` missing
    /// included).
    pub fn etcdctl(&self, args: &[&str]) -> Result<String, String> {
        let output = self
            .etcdctl_command()
            .args(args)
            .output()
            .map_err(|error| format!("etcdctl cannot be run: {error}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// `etcdctl` (API v3) against every member, its arguments to follow:
    /// for a command that runs on (`etcdctl watch`), which the caller
    /// spawns and reads itself.
    pub fn etcdctl_command(&self) -> Command {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let endpoints = self
            .endpoints()
            .iter()
            .map(|endpoint| format!("{scheme}://{endpoint}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut command = self.wrapped("etcdctl");
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoints}"));
        command
    }

    fn spawn(&self, member: &Member) -> Child {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let address = &self.place.address;
        let client_url = format!("{scheme}://{address}:{}", member.client_port);
        let peer_url = format!("http://{address}:{}", member.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", member.name)))
            .expect("a member's log file");
        let mut command = self.wrapped("etcd");
        command
            .arg(format!("--name={}", member.name))
            .arg(format!(
                "--data-dir={}",
                self.dir.join(&member.name).display()
            ))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!(
                "--listen-metrics-urls=http://{address}:{}",
                member.metrics_port
            ))
            .arg(format!("--initial-cluster={}", self.initial_cluster))
            .arg(format!("--initial-cluster-token={}", self.token))
            .arg("--initial-cluster-state=new")
            // Short timings: leader loss is noticed within a quarter second,
            // and etcd's minimum lease (1.5 election timeouts) stays 1 s.
            .arg("--heartbeat-interval=25")
            .arg("--election-timeout=250")
            // Login tokens lapse after a second unused, so that a client's
            // new login on a refused token can be seen.
            .arg("--auth-token-ttl=1")
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some((certificate, key)) = &self.tls {
            command
                .arg(format!("--cert-file={}", certificate.display()))
                .arg(format!("--key-file={}", key.display()));
        }
        command.spawn().expect("etcd runs")
    }

    fn wait_healthy(&self, index: usize) {
        let member = &self.members[index];
        let deadline = Instant::now() + NO_HANG;
        while Instant::now() < deadline {
            if self.healthy(index) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.join(format!("{}.log", member.name)))
            .unwrap_or_default();
        panic!("etcd member {} never became healthy:\n{log}", member.name);
    }
}

impl EtcdCluster {
    /// `program` as a command, under the members' wrap if any.
    fn wrapped(&self, program: &str) -> Command {
        crate::netns::wrapped(&self.place.wrap, program)
    }

    /// Whether member `index` says it is healthy: its `/health` on the
    /// metrics port, or under a wrap `etcdctl endpoint health` (the test
    /// cannot reach the member's address).
    fn healthy(&self, index: usize) -> bool {
        if self.place.wrap.is_empty() {
            http_get(self.members[index].metrics_port, "/health")
                .is_some_and(|body| body.contains("\"health\":\"true\""))
        } else {
            self.ask(index, "health").is_some()
        }
    }

    /// Whether member `index` says it is the Raft leader: its metrics, or
    /// under a wrap `etcdctl endpoint status`.
    fn leads(&self, index: usize) -> bool {
        if self.place.wrap.is_empty() {
            http_get(self.members[index].metrics_port, "/metrics")
                .is_some_and(|metrics| metrics.contains("\netcd_server_is_leader 1"))
        } else {
            // endpoint, id, version, size, is leader, ...
            self.ask(index, "status")
                .is_some_and(|status| status.split(", ").nth(4) == Some("true"))
        }
    }

    /// `etcdctl endpoint <what>` of member `index` alone, under the wrap:
    /// its standard output, or `None` when it fails (within a second).
    fn ask(&self, index: usize, what: &str) -> Option<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let endpoint = format!(
            "--endpoints={scheme}://{}:{}",
            self.place.address, self.members[index].client_port
        );
        let output = self
            .wrapped("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([&endpoint, "--command-timeout=1s", "endpoint", what])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())?;
        Some(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port free when asked (released for etcd to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// A different number each call, for names that must not meet.
fn random() -> u32 {
    use std::hash::{BuildHasher as _, RandomState};
    let hash = RandomState::new().hash_one(Instant::now());
    u32::try_from(hash & u64::from(u32::MAX)).unwrap_or_default()
}

/// The body of `GET path` on a loopback port, or `None` when it does not
/// answer (within a second).
fn http_get(port: u16, path: &str) -> Option<String> {
    let timeout = Duration::from_secs(1);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}
