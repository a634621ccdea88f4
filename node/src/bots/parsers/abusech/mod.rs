//! Parsers for abuse.ch feeds (IntelMQ `intelmq.bots.parsers.abusech`).

pub mod parser_feodotracker;
