//! Parsers for CERT.PL n6 (IntelMQ `intelmq.bots.parsers.n6`).

pub mod parser_n6stomp;
