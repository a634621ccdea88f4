//! Parsers for AnubisNetworks feeds (IntelMQ `intelmq.bots.parsers.anubisnetworks`).

pub mod parser;
