//! The `intelmq.bots.collectors.rsync` module: files fetched with the rsync binary.

pub mod collector_rsync;
