//! The `intelmq.bots.outputs.blackhole` module.

pub mod output;
