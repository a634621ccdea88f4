//! The `intelmq.bots.outputs.touch` module.

pub mod output;
