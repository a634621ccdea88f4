//! The `intelmq.bots.experts.recordedfuture_iprisk` module.

pub mod expert;
