//! The `intelmq.bots.experts.deduplicator` module.

pub mod expert;
