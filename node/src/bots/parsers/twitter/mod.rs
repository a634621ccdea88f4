//! Parsers for Twitter (IntelMQ `intelmq.bots.parsers.twitter`).

pub mod parser;
