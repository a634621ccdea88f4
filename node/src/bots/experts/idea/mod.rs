//! The `intelmq.bots.experts.idea` module.

pub mod expert;
