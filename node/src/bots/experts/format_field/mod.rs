//! The `intelmq.bots.experts.format_field` module.

pub mod expert;
