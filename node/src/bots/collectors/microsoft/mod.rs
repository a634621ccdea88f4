//! The `intelmq.bots.collectors.microsoft` module: Microsoft Interflow shared files.

pub mod collector_interflow;
