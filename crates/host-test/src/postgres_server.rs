//! A PostgreSQL server of a test's (or a benchmark's) own: initdb in a
//! temporary directory, run as the `postgres` user with the machine's
//! PostgreSQL binaries, so that it can be stopped, restarted or cut off
//! while the shared server serves the other tests.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A server in a temporary directory; stopped when dropped.
#[derive(Debug)]
pub struct PostgresServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The addresses it listens on.
    addresses: Vec<String>,
    port: u16,
    /// A command run around the server's tools (`ip netns exec <name>`).
    wrap: Vec<String>,
}

impl PostgresServer {
    /// A server on a free port of 127.0.0.1. `None` (and a line saying
    /// why) when it cannot be made here: no PostgreSQL binaries, or no
    /// `postgres` user to run them as.
    ///
    /// # Panics
    ///
    /// When `initdb` or the server's start fails.
    pub fn start(test: &str) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        Self::start_at(test, &["127.0.0.1".to_owned()], port, &[])
    }

    /// A server listening on `port` of each of `addresses`, its tools run
    /// under `wrap` (a command and its arguments, such as `ip netns exec
    /// <name>`: the tool's command line follows).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_at(test: &str, addresses: &[String], port: u16, wrap: &[String]) -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .find(|bin| bin.join("initdb").exists());
        let Some(bin) = bin else {
            println!("{test}: skipped, no PostgreSQL server binaries in /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("hc-pg-").tempdir().ok()?;
        // The server runs as `postgres`, which must own its directory.
        let owned = Command::new("chown")
            .args(["postgres:postgres", &dir.path().display().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if !owned {
            println!("{test}: skipped, cannot hand a directory to the `postgres` user");
            return None;
        }
        let server = Self {
            bin,
            dir,
            addresses: addresses.to_vec(),
            port,
            wrap: wrap.to_vec(),
        };
        let data = server.data();
        assert!(
            server.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres"]),
            "initdb failed"
        );
        // Clients of the server's own subnets, as in a network namespace
        // of the test's, may connect too (initdb allows loopback only).
        let hba = server.dir.path().join("data").join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).expect("initdb's pg_hba.conf");
        rules.push_str("host all all samenet trust\n");
        std::fs::write(&hba, rules).expect("pg_hba.conf written");
        assert!(server.ctl("start"), "the server did not start");
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs the server's tool `name` as the `postgres` user (under the
    /// wrap); whether it succeeded.
    fn run(&self, name: &str, args: &[&str]) -> bool {
        let tool = self.bin.join(name).display().to_string();
        crate::netns::wrapped(&self.wrap, "runuser")
            .args(["-u", "postgres", "--", &tool])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// `pg_ctl start`, `stop` or `restart`, waiting for it; whether it
    /// succeeded.
    pub fn ctl(&self, action: &str) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses={}",
            self.port,
            self.dir.path().display(),
            self.addresses.join(",")
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                action, "-D", &data, "-o", &options, "-l", &log, "-w", "-m", "fast",
            ],
        )
    }

    /// The URL of its `postgres` database, at its first address.
    pub fn url(&self) -> String {
        self.url_at(&self.addresses[0])
    }

    /// The URL of its `postgres` database at `address`.
    pub fn url_at(&self, address: &str) -> String {
        format!("postgres://postgres@{address}:{}/postgres", self.port)
    }

    /// The URL of its `postgres` database through its Unix socket, which
    /// any network namespace reaches (it is a file).
    pub fn socket_url(&self) -> String {
        format!(
            "postgres://postgres@localhost:{}/postgres?host={}",
            self.port,
            self.dir.path().display()
        )
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.ctl("stop");
    }
}
