//! Parsers for AlienVault feeds (IntelMQ `intelmq.bots.parsers.alienvault`).

pub mod parser;
pub mod parser_otx;
