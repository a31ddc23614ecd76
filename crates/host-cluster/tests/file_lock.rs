//! The file-lock store keeps the lease store contract, within one process
//! and across real processes.

mod contract;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use contract::Timings;
use host_cluster::{FileLockStore, LeaseStore};

const TIMINGS: Timings = Timings {
    ttl: Duration::from_millis(300),
    margin: Duration::from_millis(100),
};
const LONG: Duration = Duration::from_secs(60);
/// Set (to the lease directory) in the child process this binary runs.
const CHILD_DIR: &str = "HOST_CLUSTER_FILE_LOCK_CHILD_DIR";
const SHARED: &str = "shared/job ..";

#[tokio::test]
async fn the_file_lock_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract::every_check(Arc::new(FileLockStore::new(dir.path())), "file", TIMINGS).await;
}

#[tokio::test]
async fn two_stores_on_one_directory_exclude_each_other_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        FileLockStore::new(dir.path()),
        FileLockStore::new(dir.path()),
    );
    let first = a.try_acquire(SHARED, "a", LONG).await.unwrap().unwrap();
    assert!(b.try_acquire(SHARED, "b", LONG).await.unwrap().is_none());
    let info = b.current(SHARED).await.unwrap().expect("b sees a's term");
    assert_eq!((info.holder(), info.token()), ("a", first.token()));
    // The holder id alone does not make another store's term its own.
    assert!(b.try_acquire(SHARED, "a", LONG).await.unwrap().is_none());
    a.release(&first).await.unwrap();
    assert!(b.current(SHARED).await.unwrap().is_none(), "released");
    let second = b.try_acquire(SHARED, "b", LONG).await.unwrap().unwrap();
    assert!(second.token() > first.token());
}

#[tokio::test]
async fn tokens_outlive_the_store_that_wrote_them() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = FileLockStore::new(dir.path());
        let lease = store.try_acquire(SHARED, "a", LONG).await.unwrap().unwrap();
        store.release(&lease).await.unwrap();
        lease.token()
    };
    let store = FileLockStore::new(dir.path());
    let after = store.try_acquire(SHARED, "a", LONG).await.unwrap().unwrap();
    assert!(after.token() > before, "{} after {before}", after.token());
}

#[tokio::test]
async fn a_lapsed_term_frees_the_lock_at_its_stores_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        FileLockStore::new(dir.path()),
        FileLockStore::new(dir.path()),
    );
    let ttl = Duration::from_millis(100);
    let lapsed = a.try_acquire(SHARED, "a", ttl).await.unwrap().unwrap();
    tokio::time::sleep(ttl * 2).await;
    assert!(b.current(SHARED).await.unwrap().is_none(), "expired");
    assert!(
        b.try_acquire(SHARED, "b", LONG).await.unwrap().is_none(),
        "a still holds the lock until it looks"
    );
    assert!(!a.renew(&lapsed, ttl).await.unwrap(), "lost");
    let next = b
        .try_acquire(SHARED, "b", LONG)
        .await
        .unwrap()
        .expect("free");
    assert!(next.token() > lapsed.token());
}

#[test]
fn lease_files_stay_inside_the_directory_whatever_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let leases = dir.path().join("leases");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = FileLockStore::new(&leases);
    let long = "/..".repeat(80);
    for name in ["../escape", "/abs/path", "a b", "..", long.as_str()] {
        let lease = runtime
            .block_on(store.try_acquire(name, "a", LONG))
            .unwrap()
            .unwrap_or_else(|| panic!("{name:?} is free"));
        assert_eq!(lease.name(), name);
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(&leases).unwrap().count(), 5);
}

#[test]
fn the_default_directory_is_the_same_from_a_relative_content_root() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("app")).unwrap();
    let absolute = FileLockStore::default_dir(root.path().join("app"));
    let roundabout = FileLockStore::default_dir(root.path().join("app/../app/."));
    assert_eq!(absolute, roundabout);
    assert!(absolute.ends_with(".host/leases"), "{}", absolute.display());
}

#[tokio::test]
async fn a_live_child_holds_the_lease_and_its_death_frees_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileLockStore::new(dir.path());
    let mut child = Holder::spawn(dir.path());
    let token = child.token();
    assert!(
        store
            .try_acquire(SHARED, "parent", LONG)
            .await
            .unwrap()
            .is_none(),
        "the child holds it"
    );
    let info = store.current(SHARED).await.unwrap().expect("held");
    assert_eq!((info.holder(), info.token().get()), ("child", token));

    child.kill();
    let lease = store
        .try_acquire(SHARED, "parent", LONG)
        .await
        .unwrap()
        .expect("the kernel freed the child's lock");
    assert!(
        lease.token().get() > token,
        "{} after {token}",
        lease.token()
    );
}

#[tokio::test]
async fn a_dead_holders_record_is_not_current() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Holder::spawn(dir.path());
    child.token();
    child.kill();
    // Its record still names it, with a minute to go; the lock is free.
    let store = FileLockStore::new(dir.path());
    assert!(store.current(SHARED).await.unwrap().is_none());
}

/// The child process: takes the shared lease, prints its token, and holds
/// it until killed (a minute at most).
#[test]
fn child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = FileLockStore::new(dir);
        let lease = store.try_acquire(SHARED, "child", LONG).await.unwrap();
        let mut out = std::io::stdout().lock();
        match lease {
            Some(lease) => writeln!(out, "token={}", lease.token()).unwrap(),
            None => writeln!(out, "refused").unwrap(),
        }
        out.flush().unwrap();
        drop(out);
        tokio::time::sleep(LONG).await;
    });
}

/// A child process holding the shared lease.
struct Holder {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Holder {
    fn spawn(dir: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The token the child printed, waiting at most half a minute.
    fn token(&mut self) -> u64 {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("the child prints its token");
            // libtest prints `test child ... ` before it, on the same line.
            if let Some((_, token)) = line.rsplit_once("token=") {
                return token.parse().unwrap();
            }
            assert!(
                !line.ends_with("refused"),
                "the child could not take the lease"
            );
        }
    }

    /// SIGKILL, and reaped: its locks are gone when this returns.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
