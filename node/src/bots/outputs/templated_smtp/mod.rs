//! The `intelmq.bots.outputs.templated_smtp` module.

pub mod output;
