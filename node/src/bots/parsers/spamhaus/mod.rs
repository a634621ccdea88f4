//! Spamhaus feeds (DROP lists, CERT portal).

pub mod parser_cert;
pub mod parser_drop;
