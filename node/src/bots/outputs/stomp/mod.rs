//! The `intelmq.bots.outputs.stomp` module: sends events to a STOMP destination.

pub mod output;
