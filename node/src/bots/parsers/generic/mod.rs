//! Parsers for feeds in generic formats (IntelMQ `intelmq.bots.parsers.generic`).

pub mod parser_csv;
