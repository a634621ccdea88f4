//! The `intelmq.bots.experts.taxonomy` module.

pub mod expert;
