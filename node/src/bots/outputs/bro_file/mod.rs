//! The `intelmq.bots.outputs.bro_file` module.

pub mod output;
