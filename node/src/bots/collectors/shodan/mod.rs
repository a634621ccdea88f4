//! The `intelmq.bots.collectors.shodan` module: the Shodan streaming API.

pub mod collector_stream;
