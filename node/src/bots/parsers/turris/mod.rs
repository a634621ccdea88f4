//! Turris (CZ.NIC) feeds.

pub mod parser;
