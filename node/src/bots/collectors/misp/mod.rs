//! The `intelmq.bots.collectors.misp` module: tagged events of a MISP instance.

pub mod collector;
