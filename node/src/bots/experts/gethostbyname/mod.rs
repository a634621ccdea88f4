//! The `intelmq.bots.experts.gethostbyname` module.

pub mod expert;
