//! Network namespaces of a test's own, to cut a process off from one
//! address and heal the cut: a switch namespace with a bridge, and member
//! namespaces joined to it by veth pairs, each with a private address of
//! 10.231.0.0/24. The addresses exist only inside these namespaces (each
//! network has a switch of its own, so two networks never meet, and the
//! root namespace has none of them). Processes run inside a member with
//! [`Member::exec`] (`ip netns exec <name>`, which keeps the process id,
//! so signals reach the process itself).
//!
//! A cut is a blackhole route in the member for the one address: packets
//! of connections already made are dropped without a word (their calls
//! time out), and a new connection fails at once. Needs root and `ip`;
//! [`Network::new`] says when it cannot be made. Every namespace is
//! removed when the network is dropped, also after a panic.

use std::ffi::OsStr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The networks made by this process so far, for unique names.
static NETWORKS: AtomicU32 = AtomicU32::new(0);

/// The first three parts of every address.
const SUBNET: &str = "10.231.0";

/// A switch namespace and its members; removed when dropped.
#[derive(Debug)]
pub struct Network {
    /// `hc<pid>n<k>`: the stem of every namespace's name.
    stem: String,
    switch: String,
    /// The namespaces made, the switch first.
    namespaces: Vec<String>,
    /// The last host number handed out.
    last_host: u8,
}

/// A namespace joined to the switch.
#[derive(Debug, Clone)]
pub struct Member {
    /// The namespace's name.
    pub name: String,
    /// Its first address (more with [`Network::add_address`]).
    pub address: String,
}

impl Member {
    /// The command that runs a command line inside this namespace: a
    /// program and its arguments, the command line after them.
    pub fn exec(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name]
            .map(str::to_owned)
            .to_vec()
    }
}

/// `program` as a command run under `wrap` (a command and its arguments,
/// such as [`Member::exec`]: `program`'s command line follows); `program`
/// alone when `wrap` is empty.
pub fn wrapped(wrap: &[String], program: impl AsRef<OsStr>) -> Command {
    match wrap.split_first() {
        Some((first, args)) => {
            let mut command = Command::new(first);
            command.args(args).arg(program);
            command
        }
        None => Command::new(program),
    }
}

impl Network {
    /// Makes the switch namespace and its bridge; `None`, after printing
    /// `<test>: skipped, <why>`, when namespaces cannot be made here (not
    /// root, no `ip`).
    pub fn new(test: &str) -> Option<Self> {
        let stem = format!(
            "hc{}n{}",
            std::process::id(),
            NETWORKS.fetch_add(1, Ordering::SeqCst)
        );
        let switch = format!("{stem}-switch");
        match Command::new("ip").args(["netns", "add", &switch]).output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => {
                let why = String::from_utf8_lossy(&output.stderr);
                println!(
                    "{test}: skipped, no network namespace can be made (root is needed): {}",
                    why.trim()
                );
                return None;
            }
            Err(error) => {
                println!("{test}: skipped, `ip` cannot be run: {error}");
                return None;
            }
        }
        let network = Self {
            stem,
            switch: switch.clone(),
            namespaces: vec![switch],
            last_host: 0,
        };
        network.ip_in(&network.switch, &["link", "add", "br0", "type", "bridge"]);
        network.ip_in(&network.switch, &["link", "set", "br0", "up"]);
        Some(network)
    }

    /// A new member namespace (`role` in its name), joined to the switch,
    /// with its loopback up and the next free address.
    ///
    /// # Panics
    ///
    /// When an `ip` command fails, with what it said.
    pub fn add(&mut self, role: &str) -> Member {
        let name = format!("{}-{role}", self.stem);
        ip(&["netns", "add", &name]);
        self.namespaces.push(name.clone());
        // The switch's end is named by the member's place: names are per
        // namespace, so no other network's can collide with it.
        let port = format!("port{}", self.namespaces.len() - 1);
        self.ip_in(
            &name,
            &[
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &self.switch,
            ],
        );
        self.ip_in(&self.switch, &["link", "set", &port, "master", "br0"]);
        self.ip_in(&self.switch, &["link", "set", &port, "up"]);
        self.ip_in(&name, &["link", "set", "lo", "up"]);
        self.ip_in(&name, &["link", "set", "eth0", "up"]);
        let member = Member {
            name,
            address: String::new(),
        };
        let address = self.add_address(&member);
        Member { address, ..member }
    }

    /// Gives `member` one more address; that address.
    ///
    /// # Panics
    ///
    /// When the subnet is full, or `ip` fails.
    pub fn add_address(&mut self, member: &Member) -> String {
        self.last_host = self.last_host.checked_add(1).expect("a free address");
        let address = format!("{SUBNET}.{}", self.last_host);
        self.ip_in(
            &member.name,
            &["addr", "add", &format!("{address}/24"), "dev", "eth0"],
        );
        address
    }

    /// Cuts `member` off from `address` alone: a blackhole route for it.
    ///
    /// # Panics
    ///
    /// When `ip` fails (as when it is cut off already).
    pub fn cut(&self, member: &Member, address: &str) {
        let route = format!("{address}/32");
        self.ip_in(&member.name, &["route", "add", "blackhole", &route]);
    }

    /// Heals the cut [`cut`](Self::cut) made.
    ///
    /// # Panics
    ///
    /// When `ip` fails (as when there is no such cut).
    pub fn heal(&self, member: &Member, address: &str) {
        let route = format!("{address}/32");
        self.ip_in(&member.name, &["route", "del", "blackhole", &route]);
    }

    /// `ip -n <namespace> <args>`.
    fn ip_in(&self, namespace: &str, args: &[&str]) {
        let mut all = vec!["-n", namespace];
        all.extend_from_slice(args);
        ip(&all);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Members first: deleting one takes its veth pair with it.
        for name in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// Runs `ip <args>`, failing the test with what it said if it fails.
fn ip(args: &[&str]) {
    let output: Output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("ip {}: {error}", args.join(" ")));
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn its_types_are_send_and_sync() {
        fn both<T: Send + Sync>() {}
        both::<super::Network>();
        both::<super::Member>();
        both::<crate::redis_server::RedisServer>();
        both::<crate::EtcdCluster>();
        both::<crate::EtcdLauncher>();
    }
}
