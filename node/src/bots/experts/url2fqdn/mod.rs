//! The `intelmq.bots.experts.url2fqdn` module.

pub mod expert;
