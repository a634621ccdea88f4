//! The `intelmq.bots.outputs.restapi` module.

pub mod output;
