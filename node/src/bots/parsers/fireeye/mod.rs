//! Parsers for FireEye (IntelMQ `intelmq.bots.parsers.fireeye`).

pub mod parser;
