//! Blocklist.de feeds.

pub mod parser;
