//! The HTML table parser (IntelMQ `intelmq.bots.parsers.html_table`) and the Python-compatible HTML
//! reading it shares with the other HTML parsers.

pub mod parser;
pub mod pyhtml;
