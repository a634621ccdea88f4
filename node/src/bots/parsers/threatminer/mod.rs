//! Parsers for Threatminer (IntelMQ `intelmq.bots.parsers.threatminer`).

pub mod parser;
