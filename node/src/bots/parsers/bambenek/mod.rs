//! Bambenek Consulting feeds (C2 IPs, C2 domains, DGA domains).

pub mod parser;
