//! The `intelmq.bots.experts.wait` module.

pub mod expert;
