//! A `redis-server` of a test's own: on a free port of 127.0.0.1, keeping
//! nothing on disk, so that a test can restart it (losing every key) while
//! a shared server serves the other tests.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer after it was started: generous,
/// so that only a server that never comes up fails the test.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A running `redis-server` without persistence (`--save ""`,
/// `--appendonly no`). Killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
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
        let Some(child) = spawn(port) else {
            println!("{test}: skipped, redis-server cannot be started");
            return None;
        };
        let server = Self { port, child };
        server.until_ready();
        Some(server)
    }

    /// The server's URL, database 0.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
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
        self.child = spawn(self.port).expect("redis-server started before");
        self.until_ready();
    }

    fn until_ready(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
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

fn spawn(port: u16) -> Option<Child> {
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .ok()
}
