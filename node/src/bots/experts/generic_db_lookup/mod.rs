//! The `intelmq.bots.experts.generic_db_lookup` module.

pub mod expert;
