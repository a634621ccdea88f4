//! The `intelmq.bots.experts.modify` module.

pub mod expert;
