//! Dataplane.org feeds.

pub mod parser;
