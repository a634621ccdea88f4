//! Parsers for Calidog feeds (IntelMQ `intelmq.bots.parsers.calidog`).

pub mod parser_certstream;
