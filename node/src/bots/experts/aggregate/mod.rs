//! The `intelmq.bots.experts.aggregate` module.

pub mod expert;
