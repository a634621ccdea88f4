//! The `intelmq.bots.experts.truncate_by_delimiter` module.

pub mod expert;
