//! The `intelmq.bots.outputs.elasticsearch` module.

pub mod output;
