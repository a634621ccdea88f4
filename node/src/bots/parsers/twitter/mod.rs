//! Parsers for Twitter (IntelMQ `intelmq.bots.parsers.twitter`).

pub mod parser;
pub mod tlds;
