//! DynDNS-hosted feeds (cAPTure's Ponmocup lists).

pub mod parser;
