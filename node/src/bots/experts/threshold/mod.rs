//! The `intelmq.bots.experts.threshold` module.

pub mod expert;
