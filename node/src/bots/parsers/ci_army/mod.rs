//! CINS Army feeds.

pub mod parser;
