//! Parsers for Have I Been Pwned (IntelMQ `intelmq.bots.parsers.hibp`).

pub mod parser_callback;
