//! The `intelmq.bots.collectors.blueliv` module: Blueliv's crime server API.

pub mod collector_crimeserver;
