//! `intelmq.bots.experts.threshold.expert`: counts similar messages (IntelMQ `Message.hash` over
//! `filter_keys` as a black- or whitelist) and forwards only the one whose count reaches
//! `threshold`, with `add_keys` set and `extra.count` = the count. Every message renews the
//! count's expiry (`redis_cache_ttl` seconds).
//!
//! IntelMQ keeps the counts in Redis; here they live in the bot's state in the node's store (key =
//! the hex hash, value = the decimal count), committed with the step. The other `redis_cache_*`
//! parameters are accepted and ignored (one warning when they are not the defaults). `timeout` is
//! checked to be positive and otherwise unused, as in IntelMQ.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::bots::experts::deduplicator::expert::KeyList;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::{AddOptions, FilterType, Message};

/// An integer given as a number or a numeric string.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
        Value::String(s) => s.trim().parse().map_err(|_| serde::de::Error::custom(format!("`{s}` is not an integer"))),
        other => Err(serde::de::Error::custom(format!("{other} is not an integer"))),
    }
}

/// A boolean given as JSON bool or as `"true"`/`"false"`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(serde::de::Error::custom(format!("{other} is not a boolean"))),
    }
}

/// Parameters of the threshold expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThresholdExpertParams {
    /// Fields set on the forwarded message; default {"comment": "Threshold reached"}.
    pub add_keys: Map<String, Value>,
    /// The keys the hash filters (list or comma-separated string); default ["raw", "time.observation"].
    pub filter_keys: KeyList,
    /// `blacklist` (hash all keys but `filter_keys`) or `whitelist`; default "blacklist".
    pub filter_type: String,
    /// The count at which the message is forwarded; default 100.
    #[serde(deserialize_with = "lenient_i64")]
    pub threshold: i64,
    /// Checked to be positive, otherwise unused (as in IntelMQ); default 3600.
    #[serde(deserialize_with = "lenient_i64")]
    pub timeout: i64,
    /// Forward everything without counting; default false.
    #[serde(deserialize_with = "lenient_bool")]
    pub bypass: bool,
    /// Ignored (the counts live in the node's store); default "127.0.0.1".
    pub redis_cache_host: String,
    /// Ignored; default 6379.
    #[serde(deserialize_with = "lenient_i64")]
    pub redis_cache_port: i64,
    /// Ignored; default 11.
    #[serde(deserialize_with = "lenient_i64")]
    pub redis_cache_db: i64,
    /// Ignored; default null.
    pub redis_cache_password: Option<String>,
    /// Seconds a count lives after its last message; default 3600.
    #[serde(deserialize_with = "lenient_i64")]
    pub redis_cache_ttl: i64,
}

impl Default for ThresholdExpertParams {
    fn default() -> Self {
        let mut add_keys = Map::new();
        add_keys.insert("comment".to_string(), Value::String("Threshold reached".to_string()));
        ThresholdExpertParams {
            add_keys,
            filter_keys: KeyList::List(vec!["raw".to_string(), "time.observation".to_string()]),
            filter_type: "blacklist".to_string(),
            threshold: 100,
            timeout: 3600,
            bypass: false,
            redis_cache_host: "127.0.0.1".to_string(),
            redis_cache_port: 6379,
            redis_cache_db: 11,
            redis_cache_password: None,
            redis_cache_ttl: 3600,
        }
    }
}

/// Forwards the message that makes a count of similar messages reach the threshold.
pub struct ThresholdExpertBot {
    add_keys: Map<String, Value>,
    filter_keys: HashSet<String>,
    filter_type: FilterType,
    threshold: u64,
    bypass: bool,
    ttl: Option<Duration>,
    pending_warning: Option<String>,
}

impl BuildBot for ThresholdExpertBot {
    type Params = ThresholdExpertParams;

    fn build(params: ThresholdExpertParams) -> Result<Self, ParamError> {
        let filter_type = params.filter_type.parse::<FilterType>().map_err(|e| ParamError::new("filter_type", e))?;
        if params.timeout <= 0 {
            return Err(ParamError::new("timeout", "invalid timeout, use a positive number of seconds"));
        }
        let threshold = u64::try_from(params.threshold)
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| ParamError::new("threshold", "invalid threshold, use a positive count"))?;
        let defaults = ThresholdExpertParams::default();
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
            format!("Parameters {} are ignored: the threshold counts live in the node's store.", ignored.join(", "))
        });
        Ok(ThresholdExpertBot {
            add_keys: params.add_keys,
            filter_keys: params.filter_keys.keys(),
            filter_type,
            threshold,
            bypass: params.bypass,
            ttl: u64::try_from(params.redis_cache_ttl).ok().filter(|t| *t > 0).map(Duration::from_secs),
            pending_warning,
        })
    }
}

impl ExpertBot for ThresholdExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if let Some(warning) = self.pending_warning.take() {
            ctx.log.log(Level::Warning, &warning);
        }
        if self.bypass {
            out.send(event);
            return Ok(());
        }
        let hash = event.hash(&self.filter_keys, self.filter_type);
        let old_count: u64 = ctx
            .state
            .get(hash.as_bytes())
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        ctx.log.log(Level::Debug, &format!("Message {hash} has been seen {old_count} times before."));
        let count = old_count + 1;
        ctx.state.put(hash.as_bytes(), count.to_string().as_bytes(), self.ttl);
        if count == self.threshold {
            ctx.log.log(Level::Debug, "Threshold reached, forwarding message.");
            let overwrite = AddOptions { overwrite: Some(true), ..AddOptions::default() };
            for (key, value) in &self.add_keys {
                event.add_with(key, value.clone(), overwrite)?;
            }
            event.add_with("extra.count", Value::from(count), overwrite)?;
            out.send(event);
        } else {
            ctx.log.log(Level::Debug, "Dropped message.");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn run_many(params: Value, n: usize) -> (Vec<Message>, MemoryState, MemoryLog) {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut bot = ThresholdExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut sent = Vec::new();
        for i in 0..n {
            let root = std::path::Path::new("/");
            let mut ctx = Context {
                bot_id: "threshold",
                harmonization: &h,
                root,
                state: &mut state,
                log: &mut log,
                clock: &crate::bots::SystemClock,
            };
            let mut out = Outbox::default();
            let e = event(&h, json!({"source.ip": "192.0.2.0", "destination.ip": format!("192.0.2.{i}")}));
            bot.process(e, &mut ctx, &mut out).unwrap();
            sent.extend(out.sent.into_iter().map(|(_, m)| m));
        }
        (sent, state, log)
    }

    #[test]
    fn only_the_message_reaching_the_threshold_is_forwarded() {
        let params = json!({"filter_keys": ["source.ip"], "filter_type": "whitelist", "threshold": "10", "timeout": 1});
        let (sent, state, _) = run_many(params, 30);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].get_str("destination.ip"), Some("192.0.2.9"));
        assert_eq!(sent[0].get("extra.count"), Some(&json!(10)));
        assert_eq!(sent[0].get_str("comment"), Some("Threshold reached"));
        assert_eq!(state.entries.values().next().unwrap(), b"30");
    }

    #[test]
    fn bypass_forwards_everything() {
        let (sent, state, _) = run_many(json!({"bypass": true, "threshold": 2}), 3);
        assert_eq!(sent.len(), 3);
        assert!(state.entries.is_empty());
    }

    #[test]
    fn non_default_redis_parameters_give_one_warning() {
        let (_, _, log) = run_many(json!({"redis_cache_db": 4, "threshold": 5}), 3);
        assert_eq!(log.lines.iter().filter(|(l, _)| *l == Level::Warning).count(), 1);
    }

    #[test]
    fn non_positive_threshold_or_timeout_is_refused() {
        let p: ThresholdExpertParams = serde_json::from_value(json!({"threshold": 0})).unwrap();
        assert_eq!(ThresholdExpertBot::build(p).err().unwrap().key, "threshold");
        let p: ThresholdExpertParams = serde_json::from_value(json!({"timeout": -1})).unwrap();
        assert_eq!(ThresholdExpertBot::build(p).err().unwrap().key, "timeout");
    }
}
