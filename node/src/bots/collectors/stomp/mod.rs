//! The `intelmq.bots.collectors.stomp` module: a STOMP subscription (n6 and other brokers).

pub mod client;
pub mod collector;
