//! The PostgreSQL store keeps the lease and claim contracts through
//! PgBouncer in transaction mode, where consecutive statements of one
//! client run on different server connections: no prepared statement and
//! no session state may carry from one to the next.
//!
//! The test starts its own `pgbouncer` (the distribution's
//! `/usr/sbin/pgbouncer`, as the `postgres` user when run as root) on a free
//! loopback port in front of `HOST_TEST_POSTGRES_URL`, and stops it at the
//! end. It prints that it was skipped when either is missing.
#![cfg(feature = "postgres")]

mod contract;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::Timings;
use host_cluster::PostgresStore;
use host_cluster::postgres::{Namespace, PostgresOptions};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, Executor as _};

const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

const TIMINGS: Timings = Timings {
    ttl: Duration::from_secs(1),
    margin: Duration::from_millis(500),
};

/// A pgbouncer of the test's own; stopped when dropped.
struct Bouncer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Bouncer {
    /// Starts pgbouncer in front of `server`, two server connections per
    /// pool, and waits until it listens.
    fn start(server: &PgConnectOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let user = server.get_username();
        let ini = format!(
            "[databases]
test = host={host} port={server_port} dbname={db} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {userlist}
pool_mode = transaction
default_pool_size = 2
min_pool_size = 0
max_client_conn = 100
ignore_startup_parameters = extra_float_digits,options
logfile = {log}
pidfile = {pid}
",
            host = server.get_host(),
            server_port = server.get_port(),
            db = server.get_database().unwrap_or(user),
            userlist = path("userlist.txt"),
            log = path("pgbouncer.log"),
            pid = path("pgbouncer.pid"),
        );
        std::fs::write(dir.path().join("pgbouncer.ini"), ini).unwrap();
        std::fs::write(
            dir.path().join("userlist.txt"),
            format!("\"{user}\" \"\"\n"),
        )
        .unwrap();
        let mut command = if as_root {
            // pgbouncer refuses root; its user must read and write the dir.
            Command::new("chown")
                .args(["-R", "postgres", &dir.path().display().to_string()])
                .status()
                .unwrap();
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", PGBOUNCER]);
            command
        } else {
            Command::new(PGBOUNCER)
        };
        let child = command
            .arg(path("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bouncer = Self { child, dir, port };
        bouncer.wait_until_listening();
        bouncer
    }

    fn wait_until_listening(&self) {
        // A bound against a hang, not a speed: pgbouncer starts in a blink.
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "pgbouncer did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.file("pgbouncer.log")).unwrap_or_default()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self, server: &PgConnectOptions) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/test",
            server.get_username(),
            self.port
        )
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // Through runuser, the child is runuser: stop pgbouncer itself by
        // its pid file, then reap the child.
        if let Ok(pid) = std::fs::read_to_string(self.file("pgbouncer.pid")) {
            let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server, if the test is to run.
fn server(test: &str) -> Option<PgConnectOptions> {
    let Ok(url) = std::env::var("HOST_TEST_POSTGRES_URL") else {
        println!("{test}: skipped, HOST_TEST_POSTGRES_URL is not set");
        return None;
    };
    if !Path::new(PGBOUNCER).exists() {
        println!("{test}: skipped, {PGBOUNCER} is not installed");
        return None;
    }
    Some(url.parse().unwrap())
}

/// A store through the bouncer on a schema of its own.
async fn store(bouncer: &Bouncer, server: &PgConnectOptions, schema: &str) -> PostgresStore {
    PostgresOptions::new(&bouncer.url(server))
        .unwrap()
        .namespace(Namespace::new(schema, "host_").unwrap())
        // More clients than pgbouncer's two server connections.
        .max_connections(8)
        .connect()
        .await
        .unwrap()
}

/// Drops the schema, directly on the server, when the test ends, passed or
/// failed (on a thread and runtime of its own: the test's may be
/// unwinding).
struct Schema {
    server: PgConnectOptions,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (server, sql) = (
            self.server.clone(),
            format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name),
        );
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect_with(&server).await?;
                conn.execute(sql.as_str()).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(_))) {
            eprintln!("schema {} was not dropped: {dropped:?}", self.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_pgbouncer_in_transaction_mode_the_contracts_hold() {
    let Some(server) = server("pgbouncer") else {
        return;
    };
    let bouncer = Bouncer::start(&server);
    let schema = Schema {
        name: format!("hc_bouncer_{:08x}", fastrand::u32(..)),
        server: server.clone(),
    };
    println!("pgbouncer: schema {}", schema.name);
    let store = Arc::new(store(&bouncer, &server, &schema.name).await);
    contract::every_check(store.clone(), "bouncer", TIMINGS).await;
    contract::claims::every_check(store.clone(), "bouncer", TIMINGS).await;
    // Migrating again through the pooler is a no-op as well.
    store.migrate().await.unwrap();
}
