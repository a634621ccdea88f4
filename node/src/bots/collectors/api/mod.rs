//! The `intelmq.bots.collectors.api` module.

pub mod collector_api;
