//! Child processes that cannot outlive the bench: killed and reaped when
//! dropped, a panic's unwinding included.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How often [`KillOnDrop::reap`] looks whether the child has exited.
const POLL: Duration = Duration::from_millis(2);

/// A child process, killed (`SIGKILL`) and waited for when dropped unless
/// it was reaped first.
#[derive(Debug)]
pub(crate) struct KillOnDrop {
    child: Option<Child>,
}

impl KillOnDrop {
    /// Takes charge of `child`.
    pub(crate) fn new(child: Child) -> Self {
        Self { child: Some(child) }
    }

    /// Its process id (0 once reaped).
    pub(crate) fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `SIGKILL` now (the exit is left for [`reap`](Self::reap) or
    /// the drop).
    pub(crate) fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
    }

    /// Waits up to `within` for the child to exit; past it, kills it. The
    /// exit status, or `None` when it had to be killed (or was reaped
    /// already).
    pub(crate) fn reap(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + within;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
