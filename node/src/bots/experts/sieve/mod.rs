//! The `intelmq.bots.experts.sieve` module: the sieve rule language (`parser`), its evaluation
//! (`eval`) and the expert bot (`expert`).

pub mod eval;
pub mod expert;
pub mod parser;
