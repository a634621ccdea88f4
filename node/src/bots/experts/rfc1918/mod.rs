//! The `intelmq.bots.experts.rfc1918` module.

pub mod expert;
