//! The `intelmq.bots.experts.filter` module.

pub mod expert;
