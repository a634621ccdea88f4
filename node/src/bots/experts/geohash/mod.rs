//! The `intelmq.bots.experts.geohash` module.

pub mod expert;
