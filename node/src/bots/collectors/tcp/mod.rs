//! The `intelmq.bots.collectors.tcp` module.

pub mod collector;
