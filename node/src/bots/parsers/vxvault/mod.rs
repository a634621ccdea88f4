//! VXVault feeds.

pub mod parser;
