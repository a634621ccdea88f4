//! Parsers for Microsoft feeds (IntelMQ `intelmq.bots.parsers.microsoft`).

pub mod parser_bingmurls;
pub mod parser_ctip;
