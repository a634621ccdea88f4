//! The `intelmq.bots.experts.tor_nodes` module.

pub mod expert;
