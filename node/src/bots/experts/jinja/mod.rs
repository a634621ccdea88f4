//! The `intelmq.bots.experts.jinja` module.

pub mod expert;
