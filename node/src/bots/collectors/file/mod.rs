//! The `intelmq.bots.collectors.file` module: collectors that read local files.

pub mod collector_file;
