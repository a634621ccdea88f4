//! The `intelmq.bots.experts.domain_suffix` module.

pub mod expert;
