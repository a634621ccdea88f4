//! The `intelmq.bots.outputs.smtp` module.

pub mod output;
pub mod client;
pub mod mime;
