//! DShield (SANS ISC) feeds.

pub mod parser_asn;
pub mod parser_block;
