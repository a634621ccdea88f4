//! Parsers for Shodan (IntelMQ `intelmq.bots.parsers.shodan`).

pub mod parser;
