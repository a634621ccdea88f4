//! The `intelmq.bots.outputs.mqtt` module (not in IntelMQ).

pub mod output;
