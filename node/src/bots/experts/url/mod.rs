//! The `intelmq.bots.experts.url` module.

pub mod expert;
