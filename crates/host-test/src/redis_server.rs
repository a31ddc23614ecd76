//! A `redis-server` of a test's own: on a free port of 127.0.0.1 (or on an
//! address of a network namespace), keeping nothing on disk, so that a test
//! can restart it (losing every key) or cut it off while a shared server
//! serves the other tests.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};

use crate::netns::wrapped;
use std::time::{Duration, Instant};

/// How long a server may take to answer after it was started: generous,
/// so that only a server that never comes up fails the test.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A running `redis-server` without persistence (`--save ""`,
/// `--appendonly no`). Killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    address: String,
    port: u16,
    /// A command run around the server and its readiness checks (`ip netns
    /// exec <name>`); empty on the loopback.
    wrap: Vec<String>,
    child: Child,
}

impl RedisServer {
    /// Starts a server on a free port; `None`, after printing
    /// `<test>: skipped, <why>`, when `redis-server` cannot be run here.
    ///
    /// # Panics
    ///
    /// When the server started but does not answer within 10 s.
    pub fn start(test: &str) -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port());
        let Ok(port) = port else {
            println!("{test}: skipped, no free port on 127.0.0.1");
            return None;
        };
        Self::start_at(test, "127.0.0.1", port, &[])
    }

    /// Starts a server listening on `address`:`port`, run under `wrap` (a
    /// command and its arguments, such as [`crate::netns::Member::exec`]:
    /// the server's command line follows); its readiness is checked with
    /// `redis-cli` under the same command. `None`, after printing
    /// `<test>: skipped, <why>`, when `redis-server` cannot be run here.
    ///
    /// # Panics
    ///
    /// When the server started but does not answer within 10 s.
    pub fn start_at(test: &str, address: &str, port: u16, wrap: &[String]) -> Option<Self> {
        let Some(child) = spawn(address, port, wrap) else {
            println!("{test}: skipped, redis-server cannot be started");
            return None;
        };
        let server = Self {
            address: address.to_owned(),
            port,
            wrap: wrap.to_vec(),
            child,
        };
        server.until_ready();
        Some(server)
    }

    /// The server's URL, database 0.
    pub fn url(&self) -> String {
        format!("redis://{}:{}/0", self.address, self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server and starts it again on the same port: every key it
    /// held is gone, as after a restart without persistence.
    ///
    /// # Panics
    ///
    /// When it cannot be started again or does not answer within 10 s.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child =
            spawn(&self.address, self.port, &self.wrap).expect("redis-server started before");
        self.until_ready();
    }

    /// Whether it answers: a connection on the loopback, or `redis-cli
    /// ping` under the wrap (this process may not reach the namespace).
    fn answers(&self) -> bool {
        if self.wrap.is_empty() {
            return TcpStream::connect((self.address.as_str(), self.port)).is_ok();
        }
        wrapped(&self.wrap, "redis-cli")
            .args(["-h", &self.address, "-p", &self.port.to_string(), "ping"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn until_ready(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "redis-server on port {} did not answer within {READY_WITHIN:?}",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(address: &str, port: u16, wrap: &[String]) -> Option<Child> {
    wrapped(wrap, "redis-server")
        .args(["--bind", address, "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        // Clients of a namespace's other addresses: protected mode would
        // refuse them (no password on a non-loopback address).
        .args(["--protected-mode", "no"])
        .stdout(Stdio::null())
        .spawn()
        .ok()
}
