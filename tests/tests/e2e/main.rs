//! End-to-end tests with the real `intelmq-node` binary: one module per area.

mod collectors_api;
mod collectors_net;
mod config;
mod control;
mod crash;
mod ctl;
mod multinode;
mod multinode_control;
mod outputs_db;
mod outputs_net;
mod pipeline;
mod tls;
