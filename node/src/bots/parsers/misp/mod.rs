//! Parsers for MISP (IntelMQ `intelmq.bots.parsers.misp`).

pub mod parser;
