//! The host's one background service of a whole-process run, shared by
//! `src/bin/host-process.rs` and the configuration bench.

use host_core::{BackgroundService, ServiceContext, ServiceError, async_trait};

use super::bare::IDLE_TICK;

/// Asks the host to stop on its first poll, then idles until told to stop:
/// the same work as the bare tokio process's task.
pub(crate) struct StopAtOnce;

#[async_trait]
impl BackgroundService for StopAtOnce {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.lifetime().stop_application();
        loop {
            tokio::select! {
                () = ctx.stopping() => return Ok(()),
                () = tokio::time::sleep(IDLE_TICK) => {}
            }
        }
    }
}
