//! Output bots: deliver Events to the outside. Pure: no actix, tokio or RocksDB.

pub mod amqptopic;
pub mod delivered;
pub mod elasticsearch;
pub mod file;
pub mod mqtt;
pub mod redis;
pub mod sql;
pub mod tls;
// mods:outputs-db
pub mod blackhole;
pub mod bro_file;
pub mod files;
pub mod restapi;
pub mod rpz_file;
pub mod smtp;
pub mod stomp;
pub mod tcp;
pub mod templated_smtp;
pub mod touch;
pub mod udp;
// mods:outputs-net

/// Shared by the output tests: the shipped harmonization and events from JSON.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use serde_json::Value;

    use crate::message::{Harmonization, Message, MessageKind};

    pub(crate) fn harmonization() -> Arc<Harmonization> {
        Harmonization::builtin()
    }

    /// An event read from a flat JSON object, as from the wire.
    pub(crate) fn event(h: &Arc<Harmonization>, fields: Value) -> Message {
        let Value::Object(map) = fields else { panic!("not an object: {fields}") };
        Message::from_map(h.clone(), map, Some(MessageKind::Event)).unwrap()
    }
}
