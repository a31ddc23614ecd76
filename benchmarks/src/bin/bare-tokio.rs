//! The minimal bare tokio binary of `benches/process.rs`: the bare tokio
//! process (`src/bare.rs`) in a binary that uses tokio and tokio-util only
//! (the package's other dependencies are not linked: nothing refers to
//! them), the baseline a user's own tokio program would have.

#[path = "../bare.rs"]
mod bare;

use std::process::ExitCode;

fn main() -> ExitCode {
    bare::bare_tokio()
}
