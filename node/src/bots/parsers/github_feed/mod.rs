//! Parsers for GitHub feeds (IntelMQ `intelmq.bots.parsers.github_feed`).

pub mod parser;
