//! Parsers for McAfee (IntelMQ `intelmq.bots.parsers.mcafee`).

pub mod parser_atd;
