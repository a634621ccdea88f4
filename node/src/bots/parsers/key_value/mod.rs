//! The key-value parser (`intelmq.bots.parsers.key_value`): `key=value` log lines.

pub mod parser;
