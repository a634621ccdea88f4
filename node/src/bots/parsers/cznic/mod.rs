//! Parsers for CZ.NIC feeds (IntelMQ `intelmq.bots.parsers.cznic`).

pub mod parser_haas;
pub mod parser_proki;
