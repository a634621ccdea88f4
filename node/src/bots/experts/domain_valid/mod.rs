//! The `intelmq.bots.experts.domain_valid` module.

pub mod expert;
