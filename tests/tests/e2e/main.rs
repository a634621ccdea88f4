//! End-to-end tests with the real `intelmq-node` binary: one module per area.

mod config;
mod control;
mod crash;
mod ctl;
mod pipeline;
