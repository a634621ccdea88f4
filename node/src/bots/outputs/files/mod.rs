//! The `intelmq.bots.outputs.files` module.

pub mod output;
