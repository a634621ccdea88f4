//! The `intelmq.bots.experts.csv_converter` module.

pub mod expert;
