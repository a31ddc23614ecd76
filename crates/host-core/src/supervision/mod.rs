//! Supervision: per-service options, restart policies, liveness, the
//! lifecycle event stream and the runtime control handle.

pub(crate) mod balance;
pub(crate) mod configured;
pub(crate) mod control;
pub(crate) mod dependencies;
pub(crate) mod election;
pub(crate) mod events;
pub(crate) mod leadership;
pub(crate) mod liveness;
pub(crate) mod options;
pub(crate) mod restart;
pub(crate) mod singleton;
pub(crate) mod supervisor;
