//! Parsers for CleanMX (IntelMQ `intelmq.bots.parsers.cleanmx`).

pub mod parser;
