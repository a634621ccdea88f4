//! Expert bots: enrich, filter or route one Event at a time. Pure: no actix, tokio or RocksDB.

pub mod deduplicator;
pub mod sieve;
pub mod taxonomy;
pub mod url2fqdn;
// mods:experts-sieve
pub mod aggregate;
pub mod csv_converter;
pub mod domain_suffix;
pub mod domain_valid;
pub mod field_reducer;
pub mod filter;
pub mod format_field;
pub mod geohash;
pub mod idea;
pub mod jinja;
pub mod modify;
pub mod remove_affix;
pub mod rfc1918;
pub mod threshold;
pub mod truncate_by_delimiter;
pub mod url;
pub mod wait;
// mods:experts-general
pub mod asn_lookup;
pub mod cymru_whois;
pub mod generic_db_lookup;
pub mod gethostbyname;
pub mod maxmind_geoip;
pub mod recordedfuture_iprisk;
pub mod reverse_dns;
pub mod tor_nodes;
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
