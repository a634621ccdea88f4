//! Parsers for ESET feeds (IntelMQ `intelmq.bots.parsers.eset`).

pub mod parser;
