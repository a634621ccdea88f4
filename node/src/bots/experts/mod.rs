//! Expert bots: enrich, filter or route one Event at a time. Pure: no actix, tokio or RocksDB.

pub mod deduplicator;
pub mod taxonomy;
pub mod url2fqdn;
// mods:experts-sieve
// mods:experts-general
// mods:experts-lookup

/// Shared by the expert tests: the shipped harmonization and events from JSON.
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
