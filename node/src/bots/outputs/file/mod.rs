//! The `intelmq.bots.outputs.file` module.

pub mod output;
