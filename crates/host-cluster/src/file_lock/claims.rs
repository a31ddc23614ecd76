//! The file-lock store's claims: one file per job under `claims/`, read
//! and rewritten whole under an exclusive lock on a lock file of its own.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use fs4::FileExt;

use super::record::Fields;
use super::{FileLockStore, Inner, naming, since_epoch};
use crate::claims::{claim_args, tick_millis, tick_time};
use crate::{Claim, ClaimOutcome, ClaimStore, ClusterError, FencingToken};

/// The first line of every job file, naming the format.
const HEADER: &str = "host-cluster claims v1";

/// A job file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Job {
    /// The job's name, to catch two names mapped to one file.
    name: String,
    /// The last claim's token; the next claim's is one larger.
    token: u64,
    /// By tick, in milliseconds since the Unix epoch.
    ticks: BTreeMap<i64, TickRecord>,
}

/// One tick's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TickRecord {
    holder: String,
    token: u64,
    attempt: u32,
    finished: bool,
    /// Wall clock, milliseconds since the Unix epoch: past it an unfinished
    /// claim may be recovered; never without one.
    deadline_ms: Option<u64>,
}

impl Job {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            token: 0,
            ticks: BTreeMap::new(),
        }
    }

    /// The text written to the file: a line per tick, the holder last (it
    /// may hold spaces, never a control character), and a closing `end`
    /// line that tells a whole file from a cut one.
    fn encode(&self) -> String {
        let mut text = format!("{HEADER}\njob={}\ntoken={}\n", self.name, self.token);
        for (tick, record) in &self.ticks {
            let finished = if record.finished { "finished" } else { "open" };
            let deadline = record
                .deadline_ms
                .map_or_else(|| "never".to_owned(), |at| at.to_string());
            text.push_str(&format!(
                "tick {tick} {} {} {finished} {deadline} {}\n",
                record.token, record.attempt, record.holder
            ));
        }
        text.push_str("end\n");
        text
    }

    /// Reads a job file back, or says what is wrong with it. An empty file
    /// is refused too: every file was written whole before it got its name.
    fn decode(text: &str) -> Result<Self, String> {
        let mut fields = Fields::after(text, HEADER)?;
        let name = fields.text("job")?.to_owned();
        let token = fields.number("token")?;
        let mut lines = fields.rest();
        let mut ticks = BTreeMap::new();
        for line in lines.by_ref() {
            if line == "end" {
                return Ok(Self { name, token, ticks });
            }
            let (tick, record) =
                decode_tick(line).ok_or_else(|| format!("its line {line:?} is not a tick"))?;
            ticks.insert(tick, record);
        }
        Err("it is cut short (no `end` line)".to_owned())
    }
}

/// `tick <ms> <token> <attempt> <finished|open> <deadline ms|never> <holder>`.
fn decode_tick(line: &str) -> Option<(i64, TickRecord)> {
    let mut parts = line.strip_prefix("tick ")?.splitn(6, ' ');
    let tick = parts.next()?.parse().ok()?;
    let token = parts.next()?.parse().ok()?;
    let attempt = parts.next()?.parse().ok()?;
    let finished = match parts.next()? {
        "finished" => true,
        "open" => false,
        _ => return None,
    };
    let deadline_ms = match parts.next()? {
        "never" => None,
        at => Some(at.parse().ok()?),
    };
    let holder = parts.next().filter(|holder| !holder.is_empty())?.to_owned();
    let record = TickRecord {
        holder,
        token,
        attempt,
        finished,
        deadline_ms,
    };
    Some((tick, record))
}

/// The files of one job, in the `claims` directory: the lock file (never
/// replaced, so that its lock stays the job's), the record, and the next
/// record while it is being written.
struct Files {
    dir: PathBuf,
    lock: PathBuf,
    record: PathBuf,
    next: PathBuf,
}

impl Inner {
    fn claim_files(&self, job: &str) -> Files {
        let dir = self.dir.join("claims");
        let stem = naming::stem(job);
        Files {
            lock: dir.join(format!("{stem}.lock")),
            record: dir.join(format!("{stem}.claims")),
            next: dir.join(format!("{stem}.next")),
            dir,
        }
    }

    /// Runs `change` on `job`'s record under the exclusive lock of the
    /// job's lock file, and writes the record back when `change` says it
    /// changed it; the lock goes when the lock file is closed, on return.
    fn with_job<T>(
        &self,
        job: &str,
        change: impl FnOnce(&mut Job) -> Result<(T, bool), ClusterError>,
    ) -> Result<T, ClusterError> {
        let files = self.claim_files(job);
        fs::create_dir_all(&files.dir).map_err(|e| {
            self.failed(
                format_args!("create {} for job {job:?}", files.dir.display()),
                e.into(),
            )
        })?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&files.lock)
            .map_err(|e| self.failed(format_args!("open {}", files.lock.display()), e.into()))?;
        FileExt::lock(&lock)
            .map_err(|e| self.failed(format_args!("lock {}", files.lock.display()), e.into()))?;
        let mut record = self.read_job(job, &files.record)?;
        let (answer, changed) = change(&mut record)?;
        if changed {
            self.write_job(job, &files, &record)?;
        }
        drop(lock);
        Ok(answer)
    }

    /// Reads `job`'s record; a job with no record file yet has claimed
    /// nothing.
    fn read_job(&self, job: &str, path: &Path) -> Result<Job, ClusterError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Job::new(job)),
            Err(e) => return Err(self.failed(format_args!("read {}", path.display()), e.into())),
        };
        // Never read a damaged file as a new job: that would reset its tokens.
        let record = Job::decode(&text).map_err(|why| {
            self.failed(
                format_args!("read {} (for job {job:?})", path.display()),
                why.into(),
            )
        })?;
        if record.name != job {
            return Err(self.failed(
                format_args!("use {} for job {job:?}", path.display()),
                format!("it belongs to job {:?}", record.name).into(),
            ));
        }
        Ok(record)
    }

    /// Writes the whole record to the next file, syncs it, renames it over
    /// the record and syncs the directory: a process killed at any point
    /// leaves the old record or the new one, never a torn one, and a token
    /// is on disk before it is handed out. A torn next file left by a kill
    /// is truncated by the next write.
    fn write_job(&self, job: &str, files: &Files, record: &Job) -> Result<(), ClusterError> {
        let text = record.encode();
        let write = || -> io::Result<()> {
            let mut next = File::create(&files.next)?;
            next.write_all(text.as_bytes())?;
            next.sync_all()?;
            drop(next);
            fs::rename(&files.next, &files.record)?;
            sync_dir(&files.dir)
        };
        write().map_err(|e| {
            self.failed(
                format_args!("write {} (for job {job:?})", files.record.display()),
                e.into(),
            )
        })
    }

    fn try_claim(
        &self,
        job: &str,
        millis: i64,
        holder: &str,
        deadline: Option<Duration>,
    ) -> Result<ClaimOutcome, ClusterError> {
        self.with_job(job, |record| {
            let now = since_epoch();
            let attempt = match record.ticks.get(&millis) {
                None => 1,
                Some(earlier) => {
                    // Strictly past: both sides are cut to the millisecond,
                    // so a claim is never recovered before its deadline.
                    let recoverable = deadline.is_some()
                        && !earlier.finished
                        && earlier.deadline_ms.is_some_and(|at| at < millis_of(now));
                    if !recoverable {
                        let taken = ClaimOutcome::Taken {
                            holder: earlier.holder.clone(),
                            finished: earlier.finished,
                        };
                        return Ok((taken, false));
                    }
                    earlier.attempt.saturating_add(1)
                }
            };
            let token = record.token.checked_add(1).ok_or_else(|| {
                self.failed(
                    format_args!("claim a tick of job {job:?}"),
                    "its fencing token is at the largest number".into(),
                )
            })?;
            record.token = token;
            record.ticks.insert(
                millis,
                TickRecord {
                    holder: holder.to_owned(),
                    token,
                    attempt,
                    finished: false,
                    deadline_ms: deadline.map(|deadline| millis_of(now.saturating_add(deadline))),
                },
            );
            let claim = Claim::new(
                Arc::from(job),
                tick_time(millis),
                Arc::from(holder),
                FencingToken::new(token),
                attempt,
            );
            Ok((ClaimOutcome::Claimed(claim), true))
        })
    }

    fn finish(&self, claim: &Claim, millis: i64) -> Result<(), ClusterError> {
        self.with_job(claim.job(), |record| {
            // Only the tick's current claim, and only once: anything else
            // leaves the record as it is, unwritten.
            let Some(tick) = record
                .ticks
                .get_mut(&millis)
                .filter(|tick| tick.token == claim.token().get() && !tick.finished)
            else {
                return Ok(((), false));
            };
            tick.finished = true;
            Ok(((), true))
        })
    }

    fn purge(&self, job: &str, before: i64) -> Result<u64, ClusterError> {
        self.with_job(job, |record| {
            let kept = record.ticks.split_off(&before);
            let purged = std::mem::replace(&mut record.ticks, kept).len();
            Ok((u64::try_from(purged).unwrap_or(u64::MAX), purged > 0))
        })
    }
}

/// Whole milliseconds, cut down.
fn millis_of(since_epoch: Duration) -> u64 {
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// Makes a rename in `dir` durable (on Unix; elsewhere the rename is what
/// the system gives).
fn sync_dir(dir: &Path) -> io::Result<()> {
    if cfg!(unix) {
        File::open(dir)?.sync_all()
    } else {
        Ok(())
    }
}

/// Claims live beside the leases, in `<dir>/claims/`: per job, the record
/// `<escaped job>.claims` (the job's last token and its ticks' claims), the
/// lock file `<escaped job>.lock`, and `<escaped job>.next` while a new
/// record is written. Names are escaped as lease names are (see
/// [`FileLockStore::new`]); the subdirectory and suffixes keep a job apart
/// from a lease of the same name.
///
/// - **Each call** takes the job's lock (blocking, on tokio's blocking
///   pool), reads the record, and, if it changed it, writes the whole
///   record to the next file, syncs it and renames it over the record. A
///   process killed midway leaves the old record or the new one, and the
///   lock goes with it: tokens never go back, and a claim is on disk before
///   it is returned.
/// - **Deadlines are on the wall clock** (`SystemTime`), the only clock the
///   processes share: a clock stepped forward recovers claims early, one
///   stepped back late.
/// - **Purge** rewrites the record without the earlier ticks and keeps the
///   token. Each claim rewrites the whole record, so purge regularly.
///
/// A damaged record is an error, never read as a new job. Never delete the
/// claim files while any instance runs (that would reset the tokens).
#[async_trait]
impl ClaimStore for FileLockStore {
    async fn try_claim(
        &self,
        job: &str,
        tick: SystemTime,
        holder: &str,
        deadline: Option<Duration>,
    ) -> Result<ClaimOutcome, ClusterError> {
        let millis = claim_args(job, holder, tick)?;
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.blocking(move |inner| inner.try_claim(&job, millis, &holder, deadline))
            .await
    }

    async fn finish(&self, claim: &Claim) -> Result<(), ClusterError> {
        let millis = tick_millis(claim.tick())?;
        let claim = claim.clone();
        self.blocking(move |inner| inner.finish(&claim, millis))
            .await
    }

    async fn purge(&self, job: &str, before: SystemTime) -> Result<u64, ClusterError> {
        ClusterError::check("job name", job)?;
        let before = tick_millis(before)?;
        let job = job.to_owned();
        self.blocking(move |inner| inner.purge(&job, before)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        let mut job = Job::new("a/b c");
        job.token = 9;
        job.ticks.insert(
            1_800_000_000_000,
            TickRecord {
                holder: "host a b".to_owned(),
                token: 8,
                attempt: 2,
                finished: false,
                deadline_ms: Some(1_800_000_001_000),
            },
        );
        job.ticks.insert(
            1_800_000_060_000,
            TickRecord {
                holder: " spaced ".to_owned(),
                token: 9,
                attempt: 1,
                finished: true,
                deadline_ms: None,
            },
        );
        job
    }

    #[test]
    fn records_read_back() {
        for record in [job(), Job::new("empty")] {
            assert_eq!(Job::decode(&record.encode()), Ok(record));
        }
    }

    #[test]
    fn empty_cut_or_foreign_text_is_refused() {
        assert!(Job::decode("").unwrap_err().contains("start"));
        let whole = job().encode();
        for cut in [whole.len() - 4, whole.len() - 20] {
            assert!(Job::decode(&whole[..cut]).is_err(), "cut at {cut}");
        }
        assert!(
            Job::decode(&whole[..whole.len() - 4])
                .unwrap_err()
                .contains("cut short")
        );
        let bad = whole.replace("token=9", "token=x");
        assert!(Job::decode(&bad).unwrap_err().contains("token"));
        let bad = whole.replace(" open ", " maybe ");
        assert!(Job::decode(&bad).unwrap_err().contains("not a tick"));
    }
}
