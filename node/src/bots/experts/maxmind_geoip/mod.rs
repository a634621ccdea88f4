//! The `intelmq.bots.experts.maxmind_geoip` module.

pub mod expert;
