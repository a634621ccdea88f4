//! Column-family names: the only place they are spelled. A name, once released, is never reused
//! for another purpose.

/// Prefix of a queue's inbox: `inbox:<queue>`.
pub const INBOX_PREFIX: &str = "inbox:";
/// Prefix of a bot's state: `state:<bot-id>` (dedup caches, collector cursors, output offsets).
pub const STATE_PREFIX: &str = "state:";
/// Prefix of messages bound for a queue on another node: `outbox:<queue>`, kept until the broker
/// confirmed them.
pub const OUTBOX_PREFIX: &str = "outbox:";
/// Failed messages, keyed by a global sequence.
pub const DUMP: &str = "dump";
/// Node identity, format version.
pub const META: &str = "meta";
/// Per-bot counters.
pub const STATS: &str = "stats";
/// RocksDB's own default column family (unused by us, always present).
pub const DEFAULT: &str = "default";

pub fn inbox(queue: &str) -> String {
    format!("{INBOX_PREFIX}{queue}")
}

pub fn outbox(queue: &str) -> String {
    format!("{OUTBOX_PREFIX}{queue}")
}

pub fn state(bot_id: &str) -> String {
    format!("{STATE_PREFIX}{bot_id}")
}
