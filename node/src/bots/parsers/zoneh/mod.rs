//! Zone-H feeds.

pub mod parser;
