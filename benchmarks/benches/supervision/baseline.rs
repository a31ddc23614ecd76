//! The two builds of the timing binary (`src/bin/supervision-process.rs`)
//! that `idle.rs` compares: against this checkout's host-core and against
//! a baseline checkout's, named by `HOST_BENCH_BASELINE`.
//!
//! Both are built the same way, outside the workspace: the bench writes two
//! small packages, each with that file as its `main.rs`, a path dependency
//! on one checkout's host-core and the workspace's `Cargo.lock` (so both
//! link the same versions of tokio, tracing and the rest), and runs `cargo
//! build --release` into one target directory of their own, under the
//! baseline's `target/`. The workspace's own build of the binary is not
//! compared: the workspace unifies the features of every member's
//! dependencies, which a build of the baseline would not.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::RunKind;

/// The environment variable naming the baseline checkout.
pub(crate) const VARIABLE: &str = "HOST_BENCH_BASELINE";

/// The commit the issue compares against: the last before supervision.
pub(crate) const COMMIT: &str = "820bb30";

/// The timing binary's source, written into both generated packages.
const SOURCE: &str = include_str!("../../src/bin/supervision-process.rs");

/// The workspace's lock file, copied into both generated packages.
const LOCK_FILE: &str = include_str!("../../../Cargo.lock");

/// This checkout's crates.
const CRATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates");

/// The binary the workspace builds, timed when there is no baseline.
const WORKSPACE_BINARY: &str = env!("CARGO_BIN_EXE_supervision-process");

/// Which build of the timing binary.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Side {
    Baseline,
    Current,
}

impl Side {
    /// Its name in files and directories.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Side::Baseline => "baseline",
            Side::Current => "current",
        }
    }
}

/// The binaries to time: this checkout's, and the baseline's (with its
/// commit) when one was given.
#[derive(Debug)]
pub(crate) struct Binaries {
    pub(crate) current: PathBuf,
    pub(crate) baseline: Option<(PathBuf, String)>,
}

impl Binaries {
    /// Both generated builds when `HOST_BENCH_BASELINE` is set, otherwise
    /// the workspace's binary alone, saying so in `out`. A smoke run never
    /// builds the baseline: that compiles host-core twice.
    pub(crate) fn get(kind: RunKind, out: &mut String) -> Self {
        let workspace = Self {
            current: PathBuf::from(WORKSPACE_BINARY),
            baseline: None,
        };
        let Some(baseline) = std::env::var_os(VARIABLE).filter(|value| !value.is_empty()) else {
            let _ = writeln!(
                out,
                "**The comparison with the baseline was skipped**: `{VARIABLE}` is not set. To \
                 run it: `git worktree add --detach /tmp/host-baseline {COMMIT}`, then \
                 `{VARIABLE}=/tmp/host-baseline cargo bench -p host-benchmarks --bench \
                 supervision`. Below: this checkout alone, from the workspace's binary.\n"
            );
            return workspace;
        };
        if kind == RunKind::Smoke {
            let _ = writeln!(
                out,
                "`{VARIABLE}` is set, but a smoke run does not build the baseline: this checkout \
                 alone, from the workspace's binary.\n"
            );
            return workspace;
        }
        let baseline = PathBuf::from(baseline);
        let commit = command_output(Command::new("git").arg("-C").arg(&baseline).args([
            "rev-parse",
            "--short",
            "HEAD",
        ]))
        .unwrap_or_else(|| "unknown commit".to_owned());
        let work = baseline.join("target").join("supervision-bench");
        let build = |side: Side, crates: &Path| {
            build_copy(side, crates, &work).unwrap_or_else(|error| {
                panic!(
                    "building the timing binary against `{}` failed: {error}",
                    crates.display()
                )
            })
        };
        let baseline_exe = build(Side::Baseline, &baseline.join("crates"));
        let current = build(Side::Current, Path::new(CRATES));
        let _ = writeln!(
            out,
            "Baseline: `{}` at `{commit}`. Both binaries built from \
             `src/bin/supervision-process.rs` in generated packages under `{}` (the workspace's \
             `Cargo.lock`, `cargo build --release`).\n",
            baseline.display(),
            work.display()
        );
        Self {
            current,
            baseline: Some((baseline_exe, commit)),
        }
    }

    /// The binaries in a first order of alternation: the baseline first.
    pub(crate) fn in_order(&self) -> Vec<(Side, &Path)> {
        let mut order = Vec::new();
        if let Some((baseline, _)) = &self.baseline {
            order.push((Side::Baseline, baseline.as_path()));
        }
        order.push((Side::Current, self.current.as_path()));
        order
    }
}

/// Writes the package of `side` under `work` and builds it; its binary.
fn build_copy(side: Side, crates: &Path, work: &Path) -> Result<PathBuf, String> {
    let name = format!("supervision-{}", side.key());
    let package = work.join(side.key());
    let host_core = crates
        .join("host-core")
        .canonicalize()
        .map_err(|error| format!("`{}/host-core`: {error}", crates.display()))?;
    let manifest = format!(
        "# Written by benchmarks/benches/supervision/baseline.rs on every run.\n\
         [package]\n\
         name = \"{name}\"\n\
         version = \"0.0.0\"\n\
         edition = \"2024\"\n\
         publish = false\n\n\
         [dependencies]\n\
         host-core = {{ path = {host_core:?} }}\n\
         tokio = {{ version = \"1\", features = [\"rt-multi-thread\", \"macros\", \"sync\", \"time\"] }}\n\n\
         # A workspace of its own, wherever it is written.\n\
         [workspace]\n"
    );
    let write = |path: PathBuf, contents: &str| {
        std::fs::write(&path, contents).map_err(|error| format!("`{}`: {error}", path.display()))
    };
    std::fs::create_dir_all(package.join("src"))
        .map_err(|error| format!("`{}`: {error}", package.display()))?;
    write(package.join("Cargo.toml"), &manifest)?;
    write(package.join("src/main.rs"), SOURCE)?;
    write(package.join("Cargo.lock"), LOCK_FILE)?;
    let target = work.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(package.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        return Err(format!("`cargo build` {}:\n{tail}", output.status));
    }
    Ok(target.join("release").join(name))
}

/// `command`'s standard output, trimmed, if it ran and succeeded.
pub(crate) fn command_output(command: &mut Command) -> Option<String> {
    command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
