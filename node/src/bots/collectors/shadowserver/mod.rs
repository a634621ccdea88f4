//! The `intelmq.bots.collectors.shadowserver` module: Shadowserver's reports API.

pub mod collector_reports_api;
