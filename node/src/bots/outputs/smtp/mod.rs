//! The `intelmq.bots.outputs.smtp` module.

pub mod client;
pub mod mime;
pub mod output;
