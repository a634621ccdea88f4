//! Danger Rulez feeds.

pub mod parser;
