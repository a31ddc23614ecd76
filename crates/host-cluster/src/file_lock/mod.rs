//! The file-lock lease store: several processes on one machine, the
//! embedded default.

mod claims;
mod naming;
mod record;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use fs4::FileExt;

use crate::lease::until;
use crate::{ClusterError, FencingToken, Lease, LeaseInfo, LeaseStore};
use record::Record;

/// Leases shared by the processes of one machine through a directory: one
/// file per lease name, each term held as an exclusive OS file lock
/// (`flock`) for its whole length.
///
/// - **The lock is the lease.** The kernel drops it when the holding
///   process ends, however it ends (`kill -9` included), so another process
///   can take the lease at once.
/// - **Tokens live in the file.** A new term reads the last token under the
///   lock, adds one and writes it back with `fsync`, so tokens grow per name
///   across processes and restarts. Never delete the lease files while any
///   instance runs (that would reset tokens and split the lock).
/// - **Time to live.** The holding store ends a term that was not renewed
///   within its time to live: `renew` returns `false`, `current` shows no
///   holder, and the lock is dropped at this store's next call for that
///   name. Until then, or while the holding process is stopped (`SIGSTOP`),
///   **another process cannot take the lease**: it takes it only once the
///   lock is free (released, lapsed and dropped, or the holder died).
///   Safety holds; takeover waits until the holder continues or dies.
/// - **`current` from any process** reads the file: the recorded holder is
///   current while its expiry (wall clock) is ahead and the lock is still
///   held, probed with a non-blocking shared lock. The probe holds that
///   shared lock for an instant, so an acquire racing it may be refused
///   once (a caller retries anyway).
/// - A term belongs to the store (and its clones) that took it: the same
///   holder id from another store or process does not extend it. Two
///   stores on one directory exclude each other, within one process too
///   (`flock` locks belong to each open file).
/// - **Claims** on schedule ticks ([`ClaimStore`](crate::ClaimStore)) live
///   in `claims/` beside the lease files, a file per job, each call under
///   that job's lock only; their deadlines count on the wall clock.
///
/// File names are escaped lease names (see [`FileLockStore::new`]). Each
/// call does a few small file operations and an `fsync` on tokio's blocking
/// pool. A call whose answer was lost (its future dropped) may still take
/// the lease; the term lapses after its time to live and the lock is
/// dropped at this store's next call for that name.
#[derive(Debug, Clone)]
pub struct FileLockStore {
    inner: Arc<Inner>,
}

/// What the clones of a store share.
#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// The terms this store holds, each with its locked file.
    held: Mutex<HashMap<String, Held>>,
}

/// A term this store holds.
#[derive(Debug)]
struct Held {
    /// Open and exclusively locked; dropping it releases the lock.
    file: File,
    holder: Arc<str>,
    token: u64,
    /// By this process's monotonic clock, the one that decides lapses here.
    expires: Instant,
}

impl FileLockStore {
    /// A store on the directory `dir`, created at the first acquire.
    ///
    /// The lease `name` is kept in `dir/<escaped name>.lease`: bytes other
    /// than `[a-z0-9_-]` become `%XX` (so `/`, `..` and spaces stay inside
    /// `dir`), and an escaped name over 200 bytes is cut to 160 and
    /// suffixed with `~` and a 64-bit hash of the name. The file records its
    /// lease name; a file naming another lease is refused as an error.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir: dir.into(),
                held: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The directory every instance started from `content_root` shares:
    /// `<content_root>/.host/leases`, the content root made absolute when it
    /// exists. Three terminals started in one directory find each other
    /// with no configuration; and unlike a temporary directory it survives
    /// reboots and temp cleaners, which would reset the tokens (a fenced
    /// target would then refuse every new term).
    pub fn default_dir(content_root: impl AsRef<Path>) -> PathBuf {
        let root = content_root.as_ref();
        fs::canonicalize(root)
            .unwrap_or_else(|_| root.to_path_buf())
            .join(".host")
            .join("leases")
    }

    /// The directory the lease files are in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs `f` on tokio's blocking pool: file locks, reads and `fsync`
    /// block the thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, ClusterError> + Send + 'static,
    ) -> Result<T, ClusterError> {
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(answer) => answer,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => Err(self.inner.failed("run on the blocking pool", join.into())),
        }
    }
}

impl Inner {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        // Each change to the map is one insert or remove: a poisoned map is whole.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(naming::file_name(name))
    }

    fn failed(
        &self,
        what: impl std::fmt::Display,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> ClusterError {
        ClusterError::Store {
            store: format!("file lock at {}", self.dir.display()),
            source: format!("{what}: {source}").into(),
        }
    }

    fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError> {
        let mut held = self.held();
        let now = Instant::now();
        if let Some(term) = held.get_mut(name) {
            if now < term.expires {
                if &*term.holder != holder {
                    return Ok(None);
                }
                self.write(name, &term.file, term.token, Some((holder, ttl)))?;
                term.expires = until(now, ttl);
                return Ok(Some(lease(name, holder, term.token)));
            }
            if let Some(lapsed) = held.remove(name) {
                self.end(name, lapsed)?;
            }
        }
        let path = self.path(name);
        fs::create_dir_all(&self.dir).map_err(|e| {
            self.failed(format_args!("create the directory for {name:?}"), e.into())
        })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| self.failed(format_args!("open {}", path.display()), e.into()))?;
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => return Ok(None),
            Err(fs4::TryLockError::Error(e)) => {
                return Err(self.failed(format_args!("lock {}", path.display()), e.into()));
            }
        }
        let last = self.read(name, &file)?.map_or(0, |record| record.token);
        let token = last.checked_add(1).ok_or_else(|| {
            self.failed(
                format_args!("start a term of {name:?}"),
                "its fencing token is at the largest number".into(),
            )
        })?;
        self.write(name, &file, token, Some((holder, ttl)))?;
        held.insert(
            name.to_owned(),
            Held {
                file,
                holder: Arc::from(holder),
                token,
                expires: until(now, ttl),
            },
        );
        Ok(Some(lease(name, holder, token)))
    }

    fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, ClusterError> {
        let mut held = self.held();
        let now = Instant::now();
        let Some(term) = held
            .get_mut(lease.name())
            .filter(|term| is_term_of(term, lease))
        else {
            return Ok(false);
        };
        if now < term.expires {
            self.write(
                lease.name(),
                &term.file,
                term.token,
                Some((lease.holder(), ttl)),
            )?;
            term.expires = until(now, ttl);
            return Ok(true);
        }
        if let Some(lapsed) = held.remove(lease.name()) {
            self.end(lease.name(), lapsed)?;
        }
        Ok(false)
    }

    fn release(&self, lease: &Lease) -> Result<(), ClusterError> {
        let mut held = self.held();
        if held
            .get(lease.name())
            .is_some_and(|term| is_term_of(term, lease))
            && let Some(term) = held.remove(lease.name())
        {
            self.end(lease.name(), term)?;
        }
        Ok(())
    }

    fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError> {
        let mut held = self.held();
        let now = Instant::now();
        if let Some(term) = held.get(name) {
            if now < term.expires {
                return Ok(Some(LeaseInfo {
                    holder: term.holder.clone(),
                    token: FencingToken::new(term.token),
                    expires_in: term.expires - now,
                }));
            }
            if let Some(lapsed) = held.remove(name) {
                self.end(name, lapsed)?;
            }
            return Ok(None);
        }
        drop(held);
        let path = self.path(name);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.failed(format_args!("open {}", path.display()), e.into())),
        };
        let Some(Record {
            token,
            holder: Some((holder, expires_ms)),
            ..
        }) = self.read_unlocked(name, &file)?
        else {
            return Ok(None);
        };
        let Some(expires_in) = Duration::from_millis(expires_ms)
            .checked_sub(since_epoch())
            .filter(|left| !left.is_zero())
        else {
            return Ok(None);
        };
        match FileExt::try_lock_shared(&file) {
            // Nobody holds it: the recorded holder died without releasing.
            Ok(()) => Ok(None),
            Err(fs4::TryLockError::WouldBlock) => Ok(Some(LeaseInfo {
                holder: Arc::from(holder),
                token: FencingToken::new(token),
                expires_in,
            })),
            Err(fs4::TryLockError::Error(e)) => Err(self.failed(
                format_args!("probe the lock of {}", path.display()),
                e.into(),
            )),
        }
    }

    /// Ends a term: records it released (same token), then drops the lock.
    fn end(&self, name: &str, term: Held) -> Result<(), ClusterError> {
        // The lock goes with `term` even when the write fails: the term is
        // over either way, and readers probe the lock.
        self.write(name, &term.file, term.token, None)
    }

    /// Reads the record of a file this store has locked.
    fn read(&self, name: &str, mut file: &File) -> Result<Option<Record>, ClusterError> {
        let path = self.path(name);
        let mut text = String::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text))
            .map_err(|e| self.failed(format_args!("read {}", path.display()), e.into()))?;
        let record = Record::decode(&text).map_err(|why| {
            self.failed(
                format_args!("read {} (for lease {name:?})", path.display()),
                why.into(),
            )
        })?;
        match record {
            Some(record) if record.name != name => Err(self.failed(
                format_args!("use {} for lease {name:?}", path.display()),
                format!("it belongs to lease {:?}", record.name).into(),
            )),
            record => Ok(record),
        }
    }

    /// Reads the record of a file without its lock: a holder may be writing
    /// it, so a torn read is tried again a few times.
    fn read_unlocked(&self, name: &str, file: &File) -> Result<Option<Record>, ClusterError> {
        let mut tries = 0;
        loop {
            match self.read(name, file) {
                Err(_) if tries < 3 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(2));
                }
                answer => return answer,
            }
        }
    }

    /// Writes a record in place (the file is the lock: it must stay the same
    /// file) and syncs it, so that a token is on disk before it is used.
    fn write(
        &self,
        name: &str,
        mut file: &File,
        token: u64,
        holder: Option<(&str, Duration)>,
    ) -> Result<(), ClusterError> {
        let expires_ms = |ttl: Duration| {
            let at = since_epoch().saturating_add(ttl).as_millis();
            u64::try_from(at).unwrap_or(u64::MAX)
        };
        let text = Record {
            name: name.to_owned(),
            token,
            holder: holder.map(|(holder, ttl)| (holder.to_owned(), expires_ms(ttl))),
        }
        .encode();
        let path = self.path(name);
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|()| file.set_len(text.len() as u64))
            .and_then(|()| file.sync_data())
            .map_err(|e| self.failed(format_args!("write {}", path.display()), e.into()))
    }
}

fn is_term_of(term: &Held, lease: &Lease) -> bool {
    term.token == lease.token().get() && &*term.holder == lease.holder()
}

fn lease(name: &str, holder: &str, token: u64) -> Lease {
    Lease::new(Arc::from(name), Arc::from(holder), FencingToken::new(token))
}

/// The wall clock, shared by every process on the machine, for the expiry
/// other processes read.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[async_trait]
impl LeaseStore for FileLockStore {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError> {
        ClusterError::check("lease name", name)?;
        ClusterError::check("holder id", holder)?;
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.blocking(move |inner| inner.try_acquire(&name, &holder, ttl))
            .await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, ClusterError> {
        let lease = lease.clone();
        self.blocking(move |inner| inner.renew(&lease, ttl)).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), ClusterError> {
        let lease = lease.clone();
        self.blocking(move |inner| inner.release(&lease)).await
    }

    async fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError> {
        ClusterError::check("lease name", name)?;
        let name = name.to_owned();
        self.blocking(move |inner| inner.current(&name)).await
    }
}
