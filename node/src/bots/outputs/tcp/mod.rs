//! The `intelmq.bots.outputs.tcp` module, and the helpers the `outputs-net` group shares.

pub mod output;
pub mod support;
