//! Building a host: the builder, the host options, the environment, and
//! the configuration sections bound at `build()`.

pub(crate) mod builder;
pub(crate) mod cluster;
pub(crate) mod configure;
pub(crate) mod environment;
pub(crate) mod options;
