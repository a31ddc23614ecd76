//! Hosted and background services: the traits an application implements,
//! their registration, and the host's record of each one's state.

pub(crate) mod background;
pub(crate) mod failure;
pub(crate) mod hosted;
pub(crate) mod record;
pub(crate) mod registration;
pub(crate) mod state;
