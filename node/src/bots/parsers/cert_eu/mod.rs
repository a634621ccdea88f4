//! CERT-EU feeds.

pub mod parser_csv;
