//! `intelmq.bots.experts.deduplicator.expert`: drops an event whose hash (IntelMQ `Message.hash`
//! over `filter_keys` as a black- or whitelist) was seen within `redis_cache_ttl` seconds.
//!
//! IntelMQ keeps the hashes in Redis; here they live in the bot's state in the node's store (key =
//! the hex hash, value `hash`, expiring after `redis_cache_ttl` seconds; 0 = never), committed
//! together with the forwarded event. The other `redis_cache_*` parameters are accepted so that
//! IntelMQ configurations load unchanged, and ignored (one warning when they are not the defaults).

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::{FilterType, Message};

/// `filter_keys` as IntelMQ configs write it: a list or a comma-separated string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyList {
    List(Vec<String>),
    Text(String),
}

impl KeyList {
    /// The keys, each stripped (IntelMQ: `{k.strip() for k in filter_keys.split(',')}`).
    pub fn keys(&self) -> HashSet<String> {
        match self {
            KeyList::List(list) => list.iter().map(|k| k.trim().to_string()).collect(),
            KeyList::Text(text) => text.split(',').map(|k| k.trim().to_string()).collect(),
        }
    }
}

/// An integer given as a number or a numeric string (`"86400"`), as IntelMQ configs do.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => {
            n.as_u64().ok_or_else(|| serde::de::Error::custom(format!("{n} is not a non-negative integer")))
        }
        Value::String(s) => {
            s.trim().parse().map_err(|_| serde::de::Error::custom(format!("`{s}` is not a non-negative integer")))
        }
        other => Err(serde::de::Error::custom(format!("{other} is not a non-negative integer"))),
    }
}

/// Parameters of the deduplicator (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeduplicatorExpertParams {
    /// The keys the hash filters (list or comma-separated string); default null (no keys).
    pub filter_keys: Option<KeyList>,
    /// `blacklist` (hash all keys but `filter_keys`) or `whitelist` (only them); default "blacklist".
    pub filter_type: String,
    /// Forward everything without looking at the cache; default false.
    pub bypass: bool,
    /// Ignored (the cache lives in the node's store); default "127.0.0.1".
    pub redis_cache_host: String,
    /// Ignored; default 6379.
    #[serde(deserialize_with = "lenient_u64")]
    pub redis_cache_port: u64,
    /// Ignored; default 6.
    #[serde(deserialize_with = "lenient_u64")]
    pub redis_cache_db: u64,
    /// Ignored; default null.
    pub redis_cache_password: Option<String>,
    /// How long a hash is remembered, in seconds (0 = forever); default 86400.
    #[serde(deserialize_with = "lenient_u64")]
    pub redis_cache_ttl: u64,
}

impl Default for DeduplicatorExpertParams {
    fn default() -> Self {
        DeduplicatorExpertParams {
            filter_keys: None,
            filter_type: "blacklist".to_string(),
            bypass: false,
            redis_cache_host: "127.0.0.1".to_string(),
            redis_cache_port: 6379,
            redis_cache_db: 6,
            redis_cache_password: None,
            redis_cache_ttl: 86400,
        }
    }
}

/// Drops events seen before within the TTL.
pub struct DeduplicatorExpertBot {
    /// Looked up for every field of every event: Fx-hashed.
    filter_keys: rustc_hash::FxHashSet<String>,
    filter_type: FilterType,
    bypass: bool,
    ttl: Option<Duration>,
    /// The warning about ignored redis parameters, until it is logged.
    pending_warning: Option<String>,
}

impl BuildBot for DeduplicatorExpertBot {
    type Params = DeduplicatorExpertParams;

    fn build(params: DeduplicatorExpertParams) -> Result<Self, ParamError> {
        let filter_type = match params.filter_type.as_str() {
            "blacklist" => FilterType::Blacklist,
            "whitelist" => FilterType::Whitelist,
            other => {
                return Err(ParamError::new("filter_type", format!("`{other}` is neither `blacklist` nor `whitelist`")))
            }
        };
        let defaults = DeduplicatorExpertParams::default();
        let ignored: Vec<&str> = [
            ("redis_cache_host", params.redis_cache_host != defaults.redis_cache_host),
            ("redis_cache_port", params.redis_cache_port != defaults.redis_cache_port),
            ("redis_cache_db", params.redis_cache_db != defaults.redis_cache_db),
            ("redis_cache_password", params.redis_cache_password.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        let pending_warning = (!ignored.is_empty()).then(|| {
            format!("Parameters {} are ignored: the deduplicator cache lives in the node's store.", ignored.join(", "))
        });
        Ok(DeduplicatorExpertBot {
            filter_keys: params.filter_keys.as_ref().map(KeyList::keys).unwrap_or_default().into_iter().collect(),
            filter_type,
            bypass: params.bypass,
            ttl: (params.redis_cache_ttl > 0).then(|| Duration::from_secs(params.redis_cache_ttl)),
            pending_warning,
        })
    }
}

impl ExpertBot for DeduplicatorExpertBot {
    fn process(&mut self, event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if let Some(warning) = self.pending_warning.take() {
            ctx.log.log(Level::Warning, &warning);
        }
        if self.bypass {
            out.send(event);
            return Ok(());
        }
        let hash = event.hash(&self.filter_keys, self.filter_type);
        if ctx.state.get(hash.as_bytes()).is_some() {
            ctx.log.log(Level::Debug, "Dropped message.");
            return Ok(());
        }
        ctx.state.put(hash.as_bytes(), b"hash", self.ttl);
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{BotState, MemoryLog, MemoryState};
    use crate::message::Harmonization;

    /// A state that also records the TTL of each put.
    #[derive(Default)]
    struct TtlState {
        inner: MemoryState,
        ttls: Vec<(Vec<u8>, Option<Duration>)>,
    }

    impl BotState for TtlState {
        fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.inner.get(key)
        }
        fn put(&mut self, key: &[u8], value: &[u8], ttl: Option<Duration>) {
            self.ttls.push((key.to_vec(), ttl));
            self.inner.put(key, value, ttl);
        }
        fn delete(&mut self, key: &[u8]) {
            self.inner.delete(key);
        }
    }

    fn build(params: Value) -> DeduplicatorExpertBot {
        let params: DeduplicatorExpertParams = serde_json::from_value(params).unwrap();
        DeduplicatorExpertBot::build(params).unwrap()
    }

    fn run(
        bot: &mut DeduplicatorExpertBot,
        h: &Arc<Harmonization>,
        state: &mut dyn BotState,
        log: &mut MemoryLog,
        msg: Message,
    ) -> usize {
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "deduplicator-expert",
            harmonization: h,
            root,
            state,
            log,
            clock: &crate::bots::SystemClock,
        };
        let mut out = Outbox::default();
        bot.process(msg, &mut ctx, &mut out).unwrap();
        out.sent.len()
    }

    #[test]
    fn second_equal_event_is_dropped_and_hash_stored_with_the_ttl() {
        let h = harmonization();
        let mut bot = build(json!({"filter_keys": "raw ,time.observation ", "redis_cache_ttl": "3600"}));
        let (mut state, mut log) = (TtlState::default(), MemoryLog::default());
        let first = event(&h, json!({"source.ip": "192.0.2.1", "time.observation": "2015-01-01T13:37:00+00:00"}));
        let second = event(&h, json!({"source.ip": "192.0.2.1", "time.observation": "2016-01-01T13:37:00+00:00"}));
        assert_eq!(run(&mut bot, &h, &mut state, &mut log, first.clone()), 1);
        assert_eq!(run(&mut bot, &h, &mut state, &mut log, second), 0);
        let hash = first.hash(&["raw".to_string(), "time.observation".to_string()].into(), FilterType::Blacklist);
        assert_eq!(state.ttls, vec![(hash.into_bytes(), Some(Duration::from_secs(3600)))]);
    }

    #[test]
    fn whitelist_hashes_only_the_listed_keys() {
        let h = harmonization();
        let mut bot = build(json!({"filter_keys": ["source.ip"], "filter_type": "whitelist"}));
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let a = event(&h, json!({"source.ip": "127.0.0.8", "destination.ip": "127.0.0.7"}));
        let b = event(&h, json!({"source.ip": "127.0.0.8", "destination.ip": "127.0.0.9"}));
        let c = event(&h, json!({"source.ip": "127.0.0.9"}));
        assert_eq!(run(&mut bot, &h, &mut state, &mut log, a), 1);
        assert_eq!(run(&mut bot, &h, &mut state, &mut log, b), 0);
        assert_eq!(run(&mut bot, &h, &mut state, &mut log, c), 1);
    }

    #[test]
    fn bypass_forwards_duplicates_and_stores_nothing() {
        let h = harmonization();
        let mut bot = build(json!({"bypass": true}));
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let e = event(&h, json!({"source.ip": "192.0.2.1"}));
        assert_eq!(run(&mut bot, &h, &mut state, &mut log, e.clone()), 1);
        assert_eq!(run(&mut bot, &h, &mut state, &mut log, e), 1);
        assert!(state.entries.is_empty());
    }

    #[test]
    fn zero_ttl_means_no_expiry() {
        let h = harmonization();
        let mut bot = build(json!({"redis_cache_ttl": 0}));
        let (mut state, mut log) = (TtlState::default(), MemoryLog::default());
        run(&mut bot, &h, &mut state, &mut log, event(&h, json!({"source.ip": "192.0.2.1"})));
        assert_eq!(state.ttls.len(), 1);
        assert_eq!(state.ttls[0].1, None);
    }

    #[test]
    fn non_default_redis_parameters_give_one_warning() {
        let h = harmonization();
        let mut bot = build(json!({"redis_cache_db": 4, "redis_cache_host": "10.0.0.1"}));
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        run(&mut bot, &h, &mut state, &mut log, event(&h, json!({"source.ip": "192.0.2.1"})));
        run(&mut bot, &h, &mut state, &mut log, event(&h, json!({"source.ip": "192.0.2.2"})));
        let warnings: Vec<_> = log.lines.iter().filter(|(l, _)| *l == Level::Warning).collect();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].1.contains("redis_cache_host, redis_cache_db"), "{}", warnings[0].1);
    }

    #[test]
    fn unknown_filter_type_is_refused() {
        let params: DeduplicatorExpertParams = serde_json::from_value(json!({"filter_type": "graylist"})).unwrap();
        let err = DeduplicatorExpertBot::build(params).err().unwrap();
        assert_eq!(err.key, "filter_type");
    }

    #[test]
    fn defaults_are_intelmqs() {
        let defaults = serde_json::to_value(DeduplicatorExpertParams::default()).unwrap();
        assert_eq!(defaults["filter_type"], json!("blacklist"));
        assert_eq!(defaults["redis_cache_ttl"], json!(86400));
        assert_eq!(defaults["redis_cache_db"], json!(6));
        assert_eq!(defaults["filter_keys"], Value::Null);
    }
}
