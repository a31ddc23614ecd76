//! The life of a built host: starting and stopping its services phase by
//! phase within bounds, the application lifetime, signals, and the
//! watchdogs that end a process whose stop cannot make progress.

pub(crate) mod backstop;
pub(crate) mod bound;
pub(crate) mod exit_guard;
pub(crate) mod host;
pub(crate) mod lifetime;
pub(crate) mod phases;
pub(crate) mod signals;
pub(crate) mod watchdog;
