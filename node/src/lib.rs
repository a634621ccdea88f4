//! intelmq-node: IntelMQ's botnet on one node, with RocksDB inboxes and actix actors.
//!
//! Module map (imports point one way, top to bottom):
//! - `control`: the gRPC control plane (tonic) over a running node. Uses `runtime`, `store`,
//!   `config`, `message` and the proto crate.
//! - `runtime`: actix actors (supervisor, one actor per bot), routing, backpressure, error
//!   handling, per-bot logs. Uses `store`, `bots`, `config`, `cluster`, `message`.
//! - `cluster`: messages between the nodes of a botnet: outbox forwarders and intakes over a
//!   broker (RabbitMQ). Uses `store`, `config`.
//! - `config`: the files under `<root>/etc/` -> validated [`config::Botnet`]. Uses `message`.
//! - `store`: the one RocksDB database (inboxes, dump, state, counters). Uses nothing of ours.
//! - `bots`: one trait per bot kind and the explicit registry; pure code. Uses `message`.
//! - `message`: Report/Event, the harmonization types, wire JSON, the message hash.
//!
//! The binary `intelmq-node` (src/main.rs) parses flags, loads the config and calls `runtime`.

pub mod bots;
pub mod cluster;
pub mod config;
pub mod control;
pub mod message;
pub mod runtime;
pub mod store;
