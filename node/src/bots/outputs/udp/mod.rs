//! The `intelmq.bots.outputs.udp` module.

pub mod output;
