//! The `intelmq.bots.experts.remove_affix` module.

pub mod expert;
