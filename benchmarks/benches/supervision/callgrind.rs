//! Instructions per phase of the timing binary, counted by `valgrind
//! --tool=callgrind`: repeatable on a machine shared with other work,
//! where times are not.
//!
//! The binary calls `callgrind_boundary` before each phase; with
//! `--dump-before` on that name, callgrind writes one dump per phase, each
//! counting every thread's instructions since the previous boundary: dump 1
//! is the process's start and the runtime, 2 to 5 the build, the start, the
//! stop and the drop of the host, the last (no suffix) the exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::baseline::{Side, command_output};

/// The phases counted, in the dumps' order from dump 2.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Counted {
    Build,
    Start,
    Stop,
    Drop,
}

impl Counted {
    /// Every phase, in the dumps' order.
    pub(crate) const ALL: [Counted; 4] =
        [Counted::Build, Counted::Start, Counted::Stop, Counted::Drop];
}

/// Instructions of every thread in each phase of one repetition.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Instructions([u64; 4]);

impl Instructions {
    /// The sum over `phases`, per service.
    pub(crate) fn per_service(&self, n: usize, phases: &[Counted]) -> f64 {
        let total: u64 = phases.iter().map(|&phase| self.0[phase as usize]).sum();
        total as f64 / n as f64
    }
}

/// Whether `valgrind` can be run.
pub(crate) fn available() -> bool {
    command_output(Command::new("valgrind").arg("--version")).is_some()
}

/// Runs `exe` at `n` for one repetition under callgrind, its files in
/// `directory` (`callgrind.<side>.<n>.<dump>`); `None` if it fails.
pub(crate) fn count(exe: &Path, n: usize, directory: &Path, side: Side) -> Option<Instructions> {
    std::fs::create_dir_all(directory).ok()?;
    let file = directory.join(format!("callgrind.{}.{n}", side.key()));
    let dump = |index: usize| PathBuf::from(format!("{}.{index}", file.display()));
    for index in 1..=Counted::ALL.len() + 1 {
        let _ = std::fs::remove_file(dump(index));
    }
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--dump-before=*callgrind_boundary*")
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg("--log-file=/dev/null")
        .arg(exe)
        .args([n.to_string(), "1".to_owned()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let mut phases = [0; 4];
    for (index, phase) in phases.iter_mut().enumerate() {
        *phase = total(&dump(index + 2))?;
    }
    Some(Instructions(phases))
}

/// The instruction total of one callgrind dump (its `totals:` line).
fn total(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        line.strip_prefix("totals:")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
    })
}
