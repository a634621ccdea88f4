//! Shadowserver parsers: the schema-driven CSV parser and IntelMQ's schema format it reads.

pub mod parser;
pub mod schema;
