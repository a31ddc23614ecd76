//! The file-lock store keeps the lease store and claim store contracts,
//! within one process and across real processes.

mod contract;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use contract::Timings;
use contract::claims::tick;
use host_cluster::{ClaimOutcome, ClaimStore, ClusterError, FileLockStore, LeaseStore};

const TIMINGS: Timings = Timings {
    ttl: Duration::from_millis(300),
    margin: Duration::from_millis(100),
};
const LONG: Duration = Duration::from_secs(60);
/// Set (to the lease directory) in the child process this binary runs.
const CHILD_DIR: &str = "HOST_CLUSTER_FILE_LOCK_CHILD_DIR";
const SHARED: &str = "shared/job ..";
/// Set (to the store's directory) in the claiming child processes.
const CLAIMER_DIR: &str = "HOST_CLUSTER_FILE_LOCK_CLAIMER_DIR";
/// `ticks` (claim ticks 1..=50 once stdin says go) or `loop` (claim tick
/// after tick until killed), in the claiming child processes.
const CLAIMER_MODE: &str = "HOST_CLUSTER_FILE_LOCK_CLAIMER_MODE";
/// The claiming child's holder id.
const CLAIMER_HOLDER: &str = "HOST_CLUSTER_FILE_LOCK_CLAIMER_HOLDER";
/// The job the claiming children share.
const JOB: &str = "shared/tick job ..";

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

/// Runs the test `name` of this binary as a child process, with `envs`,
/// stdin and stdout piped; its stdout comes line by line.
fn spawn_test(name: &str, envs: &[(&str, &OsStr)]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
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
    (child, lines)
}

/// A child process holding the shared lease.
struct Holder {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Holder {
    fn spawn(dir: &Path) -> Self {
        let (child, lines) = spawn_test("child", &[(CHILD_DIR, dir.as_os_str())]);
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

#[tokio::test]
async fn the_file_lock_store_keeps_the_claim_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract::claims::every_check(Arc::new(FileLockStore::new(dir.path())), "file", TIMINGS).await;
}

#[tokio::test]
async fn a_job_and_a_lease_of_one_name_keep_files_and_tokens_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileLockStore::new(dir.path());
    let lease = store.try_acquire("x", "a", LONG).await.unwrap().unwrap();
    let claim = claimed(store.try_claim("x", tick(1), "a", None).await.unwrap());
    assert_eq!((lease.token().get(), claim.token().get()), (1, 1));
    assert!(dir.path().join("x.lease").is_file());
    assert!(dir.path().join("claims/x.claims").is_file());
}

#[tokio::test]
async fn a_torn_next_record_is_overwritten_and_a_damaged_record_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileLockStore::new(dir.path());
    let first = claimed(store.try_claim("torn", tick(1), "a", None).await.unwrap());
    // What a writer killed midway leaves: half a next record.
    std::fs::write(
        dir.path().join("claims/torn.next"),
        "host-cluster claims v1\njob=",
    )
    .unwrap();
    let second = claimed(store.try_claim("torn", tick(2), "a", None).await.unwrap());
    assert!(second.token() > first.token());
    assert_eq!(
        taken(store.try_claim("torn", tick(1), "b", None).await.unwrap()),
        ("a".to_owned(), false)
    );

    // A record damaged by other means is an error, never a new job.
    let record = dir.path().join("claims/torn.claims");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, &text[..text.len() - 4]).unwrap();
    match store.try_claim("torn", tick(3), "a", None).await {
        Err(ClusterError::Store { source, .. }) => {
            let message = source.to_string();
            assert!(message.contains("torn.claims"), "{message}");
            assert!(message.contains("cut short"), "{message}");
        }
        other => panic!("a damaged record was used: {other:?}"),
    }
}

#[tokio::test]
async fn four_processes_claim_every_tick_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut claimers: Vec<_> = (0..4)
        .map(|i| Claimer::spawn(dir.path(), "ticks", &format!("process-{i}")))
        .collect();
    for claimer in &mut claimers {
        claimer.wait_for("ready");
    }
    // Go together, so that the claims race.
    for claimer in &mut claimers {
        let stdin = claimer.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }
    let mut by_tick: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut tokens = BTreeSet::new();
    for (i, claimer) in claimers.iter_mut().enumerate() {
        let claims = claimer.claims_until_done();
        println!("process-{i} claimed (tick, token): {claims:?}");
        for (tick, token) in claims {
            by_tick
                .entry(tick)
                .or_default()
                .push(format!("process-{i}"));
            assert!(tokens.insert(token), "token {token} handed out twice");
        }
        assert!(claimer.child.wait().unwrap().success());
    }
    assert_eq!(
        by_tick.keys().copied().collect::<Vec<_>>(),
        (1..=50).collect::<Vec<_>>(),
        "every tick claimed"
    );
    for (tick, holders) in &by_tick {
        assert_eq!(holders.len(), 1, "tick {tick} claimed by {holders:?}");
    }
    // The record agrees: each tick is taken by the process that said so.
    let store = FileLockStore::new(dir.path());
    for (n, holders) in &by_tick {
        let (holder, _) = taken(
            store
                .try_claim(JOB, tick(*n), "parent", None)
                .await
                .unwrap(),
        );
        assert_eq!(&holder, &holders[0], "tick {n}");
    }
}

#[tokio::test]
async fn a_claimer_killed_midway_leaves_its_record_readable_and_tokens_growing() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    // Twice: the second child claims on from the first one's record.
    for round in 0..2 {
        let mut claimer = Claimer::spawn(dir.path(), "loop", &format!("looper-{round}"));
        let mut claims = Vec::new();
        while claims.len() < 20 {
            claims.push(claimer.next_claim());
        }
        // Killed while it claims on: likely mid-write, whatever the moment.
        claimer.kill();
        println!("looper-{round} claimed (tick, token) at least {claims:?}");
        seen.extend(claims);
    }
    let tokens: Vec<u64> = seen.iter().map(|&(_, token)| token).collect();
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
    let store = FileLockStore::new(dir.path());
    for &(n, _) in &seen {
        let (holder, finished) =
            taken(store.try_claim(JOB, tick(n), "parent", None).await.unwrap());
        assert!(
            holder.starts_with("looper-") && !finished,
            "tick {n}: {holder}"
        );
    }
    let after = claimed(
        store
            .try_claim(JOB, tick(1_000_000), "parent", None)
            .await
            .unwrap(),
    );
    let last = *tokens.last().unwrap();
    assert!(after.token().get() > last, "{} after {last}", after.token());
    assert!(store.purge(JOB, tick(1_000_000)).await.unwrap() >= 40);
}

/// The claiming child process: in `ticks` mode claims ticks 1..=50 of the
/// shared job once stdin says go, printing each tick it claimed with its
/// token, then `done`; in `loop` mode claims tick after tick from the
/// first free one, printing each, until killed (a minute at most).
#[test]
fn claimer() {
    let Ok(dir) = std::env::var(CLAIMER_DIR) else {
        return;
    };
    let mode = std::env::var(CLAIMER_MODE).unwrap();
    let holder = std::env::var(CLAIMER_HOLDER).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    runtime.block_on(async {
        let store = FileLockStore::new(dir);
        let ticks = if mode == "ticks" {
            say("ready");
            let mut go = String::new();
            std::io::stdin().read_line(&mut go).unwrap();
            1..=50
        } else {
            1..=u64::MAX
        };
        let started = std::time::Instant::now();
        for n in ticks {
            if started.elapsed() > LONG {
                break;
            }
            if let ClaimOutcome::Claimed(claim) =
                store.try_claim(JOB, tick(n), &holder, None).await.unwrap()
            {
                say(&format!("claimed={n}:{}", claim.token()));
            }
        }
        say("done");
    });
}

/// A child process claiming ticks of the shared job.
struct Claimer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Claimer {
    fn spawn(dir: &Path, mode: &str, holder: &str) -> Self {
        let (child, lines) = spawn_test(
            "claimer",
            &[
                (CLAIMER_DIR, dir.as_os_str()),
                (CLAIMER_MODE, OsStr::new(mode)),
                (CLAIMER_HOLDER, OsStr::new(holder)),
            ],
        );
        Self { child, lines }
    }

    /// The next line the child printed, waiting at most half a minute.
    fn line(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the claimer prints on")
    }

    /// Waits for a line ending with `word` (libtest may print `test
    /// claimer ... ` before it, on the same line).
    fn wait_for(&mut self, word: &str) {
        while !self.line().ends_with(word) {}
    }

    /// The next (tick, token) the child claimed.
    fn next_claim(&mut self) -> (u64, u64) {
        loop {
            let line = self.line();
            if let Some(claim) = parse_claim(&line) {
                return claim;
            }
            assert!(!line.ends_with("done"), "the claimer stopped");
        }
    }

    /// Every (tick, token) the child claimed, until it says it is done.
    fn claims_until_done(&mut self) -> Vec<(u64, u64)> {
        let mut claims = Vec::new();
        loop {
            let line = self.line();
            if let Some(claim) = parse_claim(&line) {
                claims.push(claim);
            } else if line.ends_with("done") {
                return claims;
            }
        }
    }

    /// SIGKILL, and reaped: its lock is gone when this returns.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Claimer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `claimed=<tick>:<token>` at the end of a line.
fn parse_claim(line: &str) -> Option<(u64, u64)> {
    let (_, claim) = line.rsplit_once("claimed=")?;
    let (tick, token) = claim.split_once(':')?;
    Some((tick.parse().unwrap(), token.parse().unwrap()))
}

fn claimed(outcome: ClaimOutcome) -> host_cluster::Claim {
    match outcome {
        ClaimOutcome::Claimed(claim) => claim,
        other => panic!("expected a claim, found {other:?}"),
    }
}

fn taken(outcome: ClaimOutcome) -> (String, bool) {
    match outcome {
        ClaimOutcome::Taken { holder, finished } => (holder, finished),
        other => panic!("expected the tick taken, found {other:?}"),
    }
}
