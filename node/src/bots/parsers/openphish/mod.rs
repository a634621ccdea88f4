//! OpenPhish feeds (public and commercial).

pub mod parser;
pub mod parser_commercial;
