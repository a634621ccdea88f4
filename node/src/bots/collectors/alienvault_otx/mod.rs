//! The `intelmq.bots.collectors.alienvault_otx` module: subscribed pulses of AlienVault OTX.

pub mod collector;
