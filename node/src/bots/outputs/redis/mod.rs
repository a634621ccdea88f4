//! The `intelmq.bots.outputs.redis` module.

pub mod output;
