//! A user's host binary, for `benches/process.rs`. With no argument (or
//! `host`): `#[tokio::main]`, `Host::builder()` with every default (the
//! default subscriber on standard error, signal handlers, configuration
//! from the environment and the arguments), one background service that
//! calls `stop_application()` on its first poll, `builder.run().await` as
//! the exit code. `tokio`: the bare tokio process (`src/bare.rs`) inside
//! this same binary. `blocking`: the host through `run_blocking()` from a
//! plain `fn main`. `quiet`: `host` with `default_logging(false)` and
//! `handle_signals(false)`, to show what those two defaults cost.

#[path = "../bare.rs"]
mod bare;
#[path = "../stop_at_once.rs"]
mod stop_at_once;

use std::process::ExitCode;

use host_core::Host;

use bare::{bare_tokio, tokio_main};
use stop_at_once::StopAtOnce;

fn host() -> ExitCode {
    tokio_main(async {
        let mut builder = Host::builder();
        builder.add_hosted_service_instance(StopAtOnce);
        builder.run().await
    })
}

fn host_quiet() -> ExitCode {
    tokio_main(async {
        let mut builder = Host::builder();
        builder.default_logging(false).handle_signals(false);
        builder.add_hosted_service_instance(StopAtOnce);
        builder.run().await
    })
}

fn host_blocking() -> ExitCode {
    let mut builder = Host::builder();
    builder.add_hosted_service_instance(StopAtOnce);
    builder.run_blocking()
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None | Some("host") => host(),
        Some("tokio") => bare_tokio(),
        Some("blocking") => host_blocking(),
        Some("quiet") => host_quiet(),
        Some(other) => {
            eprintln!("usage: host-process [host|tokio|blocking|quiet] (not `{other}`)");
            ExitCode::from(2)
        }
    }
}
