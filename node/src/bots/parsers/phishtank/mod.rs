//! Parsers for PhishTank (IntelMQ `intelmq.bots.parsers.phishtank`).

pub mod parser;
