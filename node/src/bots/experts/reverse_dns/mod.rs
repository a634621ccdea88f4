//! The `intelmq.bots.experts.reverse_dns` module.

pub mod expert;
