//! SURBL feeds.

pub mod parser;
