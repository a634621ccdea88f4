//! The `intelmq.bots.outputs.rpz_file` module.

pub mod output;
