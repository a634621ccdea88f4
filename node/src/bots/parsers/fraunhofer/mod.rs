//! Parsers for Fraunhofer feeds (IntelMQ `intelmq.bots.parsers.fraunhofer`).

pub mod parser_dga;
