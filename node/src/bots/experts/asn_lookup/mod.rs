//! The `intelmq.bots.experts.asn_lookup` module (and the parameter helpers the lookup experts share).

pub mod expert;
pub(crate) mod lenient;
