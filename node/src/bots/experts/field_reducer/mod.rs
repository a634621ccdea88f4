//! The `intelmq.bots.experts.field_reducer` module.

pub mod expert;
