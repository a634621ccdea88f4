//! Parsers for Blueliv feeds (IntelMQ `intelmq.bots.parsers.blueliv`).

pub mod parser_crimeserver;
