//! `intelmq.bots.experts.aggregate.expert`: groups events by a hash of `fields` (whitelist) and
//! emits one event per group once its `timespan` has passed, if the group counted at least
//! `threshold` events; smaller groups are dropped. Incoming events are never forwarded.
//!
//! A group is kept in the bot's state (IntelMQ: a Redis hash `aggregate.<hash>`) as JSON with
//! IntelMQ's short names: `d` the first event (flat JSON), `s` the start (the step's clock,
//! `ctx.now()`: the wall clock in the runtime), `f`/`l` the first/last `time.source` (or
//! `time.observation`), `c` the count (each event adds its `extra.count`, else 1). The store cannot list keys, so the open groups are listed under
//! `aggregate.index`. The cleanup runs on a message at most every 10 seconds; the emitted event is
//! the first event with `time.source` = the start, `extra.count` and `extra.time_end` = the last
//! time. Differences to IntelMQ: the start is UTC (IntelMQ takes local time) and always has
//! microseconds. The `redis_cache_*` parameters are accepted and ignored (one warning when they
//! are not the defaults).

use std::collections::HashSet;

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

use crate::bots::experts::filter::expert::parse_relative;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::wire::python_str;
use crate::message::{AddOptions, ExportOptions, FilterType, Message, MessageKind};

/// An integer given as a number or a numeric string.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
        Value::String(s) => s.trim().parse().map_err(|_| serde::de::Error::custom(format!("`{s}` is not an integer"))),
        other => Err(serde::de::Error::custom(format!("{other} is not an integer"))),
    }
}

/// Parameters of the aggregate expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregateExpertParams {
    /// The fields that make a group (comma-separated string or list); default
    /// "classification.type, classification.identifier".
    pub fields: Value,
    /// The least count a group needs to be emitted; default 10.
    #[serde(deserialize_with = "lenient_i64")]
    pub threshold: i64,
    /// How long a group collects events (`"<n> <hour|day|week|month|year>[s]"`); default "1 hour".
    pub timespan: String,
    /// Ignored (groups live in the node's store); default "127.0.0.1".
    pub redis_cache_host: String,
    /// Ignored; default 6379.
    #[serde(deserialize_with = "lenient_i64")]
    pub redis_cache_port: i64,
    /// Ignored; default 8.
    #[serde(deserialize_with = "lenient_i64")]
    pub redis_cache_db: i64,
    /// Ignored; default null.
    pub redis_cache_password: Option<String>,
    /// Unused (as in IntelMQ: groups do not expire); default 15.
    #[serde(deserialize_with = "lenient_i64")]
    pub redis_cache_ttl: i64,
}

impl Default for AggregateExpertParams {
    fn default() -> Self {
        AggregateExpertParams {
            fields: Value::String("classification.type, classification.identifier".to_string()),
            threshold: 10,
            timespan: "1 hour".to_string(),
            redis_cache_host: "127.0.0.1".to_string(),
            redis_cache_port: 6379,
            redis_cache_db: 8,
            redis_cache_password: None,
            redis_cache_ttl: 15,
        }
    }
}

/// The state key listing the open groups.
const INDEX_KEY: &[u8] = b"aggregate.index";
/// Seconds between two cleanups.
const CLEANUP_INTERVAL_SECS: i64 = 10;

/// One open group, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Group {
    /// The first event, flat JSON.
    d: String,
    /// Wall-clock start, `YYYY-MM-DDTHH:MM:SS.ffffff` (UTC, naive).
    s: String,
    /// First event time.
    f: Option<String>,
    /// Last event time.
    l: Option<String>,
    /// Count.
    c: i64,
}

/// Aggregates similar events into one.
pub struct AggregateExpertBot {
    fields: HashSet<String>,
    threshold: i64,
    timespan: Duration,
    next_cleanup: Option<NaiveDateTime>,
    pending_warning: Option<String>,
}

impl BuildBot for AggregateExpertBot {
    type Params = AggregateExpertParams;

    fn build(params: AggregateExpertParams) -> Result<Self, ParamError> {
        let fields: HashSet<String> = match &params.fields {
            Value::String(s) => s.split(',').map(|f| f.trim().to_string()).collect(),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(|s| s.trim().to_string())
                        .ok_or_else(|| ParamError::new("fields", format!("expected field names, got {i}")))
                })
                .collect::<Result<_, _>>()?,
            other => return Err(ParamError::new("fields", format!("expected field names, got {other}"))),
        };
        let minutes = parse_relative(&params.timespan).ok_or_else(|| {
            ParamError::new(
                "timespan",
                format!("cannot parse `{}` (expected e.g. `1 hour`, `2 days`)", params.timespan),
            )
        })?;
        let defaults = AggregateExpertParams::default();
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
            format!("Parameters {} are ignored: the aggregates live in the node's store.", ignored.join(", "))
        });
        Ok(AggregateExpertBot {
            fields,
            threshold: params.threshold,
            timespan: Duration::minutes(minutes),
            next_cleanup: None,
            pending_warning,
        })
    }
}

/// `int(value)` for `extra.count`: integers, floats (truncated), numeric strings, booleans.
fn py_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_start(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

impl AggregateExpertBot {
    fn index(ctx: &Context<'_>) -> Vec<String> {
        ctx.state.get(INDEX_KEY).and_then(|v| serde_json::from_slice(&v).ok()).unwrap_or_default()
    }

    fn save_index(ctx: &mut Context<'_>, index: &[String]) {
        if index.is_empty() {
            ctx.state.delete(INDEX_KEY);
        } else {
            ctx.state.put(INDEX_KEY, json!(index).to_string().as_bytes(), None);
        }
    }

    fn group_key(hash: &str) -> Vec<u8> {
        format!("aggregate.{hash}").into_bytes()
    }

    fn load_group(ctx: &Context<'_>, hash: &str) -> Option<Group> {
        ctx.state.get(&Self::group_key(hash)).and_then(|v| serde_json::from_slice(&v).ok())
    }

    fn save_group(ctx: &mut Context<'_>, hash: &str, group: &Group) {
        let text = serde_json::to_vec(group).unwrap_or_default();
        ctx.state.put(&Self::group_key(hash), &text, None);
    }

    /// Emits or drops the groups whose timespan has passed.
    fn cleanup(&mut self, now: NaiveDateTime, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if self.next_cleanup.is_some_and(|next| now < next) {
            return Ok(());
        }
        ctx.log.log(Level::Debug, "Started Cleanup.");
        let (mut sent, mut ignored, mut dropped) = (0, 0, 0);
        let mut index = Self::index(ctx);
        let mut keep = Vec::with_capacity(index.len());
        for hash in index.drain(..) {
            let Some(group) = Self::load_group(ctx, &hash) else {
                continue;
            };
            let start = parse_start(&group.s);
            if start.is_some_and(|s| now <= s + self.timespan) {
                ignored += 1;
                keep.push(hash);
                continue;
            }
            if group.c >= self.threshold {
                out.send(self.group_event(ctx, &group)?);
                sent += 1;
            } else {
                dropped += 1;
            }
            ctx.state.delete(&Self::group_key(&hash));
        }
        Self::save_index(ctx, &keep);
        self.next_cleanup = Some(now + Duration::seconds(CLEANUP_INTERVAL_SECS));
        ctx.log.log(
            Level::Debug,
            &format!(
                "Completed Cleanup. Messages sent: {sent}, messages ignored: {ignored}, messages dropped: {dropped}."
            ),
        );
        Ok(())
    }

    /// The event a finished group becomes.
    fn group_event(&self, ctx: &Context<'_>, group: &Group) -> Result<Message, BotError> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&group.d) else {
            return Err(BotError::Invalid(format!("aggregate data is not a json object: {}", group.d)));
        };
        let mut event = Message::from_map(ctx.harmonization.clone(), map, Some(MessageKind::Event))?;
        let overwrite = AddOptions { overwrite: Some(true), ..AddOptions::default() };
        event.add_with("time.source", Value::String(group.s.clone()), overwrite)?;
        event.add_with("extra.count", Value::from(group.c), overwrite)?;
        event.add_with("extra.time_end", group.l.clone().map_or(Value::Null, Value::String), overwrite)?;
        Ok(event)
    }
}

impl ExpertBot for AggregateExpertBot {
    fn process(&mut self, event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if let Some(warning) = self.pending_warning.take() {
            ctx.log.log(Level::Warning, &warning);
        }
        let now = ctx.now().naive_utc();
        self.cleanup(now, ctx, out)?;

        let hash = event.hash(&self.fields, FilterType::Whitelist);
        let time = ["time.source", "time.observation"]
            .iter()
            .find_map(|k| event.get(k).filter(|v| !crate::message::types::is_falsy(v)))
            .map(python_str);
        let increment = match event.get("extra.count") {
            None => 1,
            Some(v) => py_int(v).ok_or_else(|| BotError::Invalid(format!("extra.count {v} is not an integer")))?,
        };
        match Self::load_group(ctx, &hash) {
            Some(mut group) => {
                group.l = time;
                group.c += increment;
                Self::save_group(ctx, &hash, &group);
            }
            None => {
                let d = event.to_export_json(ExportOptions {
                    hierarchical: false,
                    with_type: false,
                    jsondict_as_string: false,
                });
                let group = Group {
                    d,
                    s: now.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                    f: time.clone(),
                    l: time,
                    c: increment,
                };
                Self::save_group(ctx, &hash, &group);
                let mut index = Self::index(ctx);
                if !index.contains(&hash) {
                    index.push(hash);
                }
                Self::save_index(ctx, &index);
            }
        }
        Ok(())
    }
}

/// The stored groups, for inspection in tests.
#[cfg(test)]
fn stored_groups(state: &crate::bots::MemoryState) -> serde_json::Map<String, Value> {
    state
        .entries
        .iter()
        .filter(|(k, _)| k.as_slice() != INDEX_KEY)
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), serde_json::from_slice(v).unwrap_or(Value::Null)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{FixedClock, MemoryLog, MemoryState};

    /// The 25 events of IntelMQ's aggregate test: one DDoS pair, time.observation a minute apart.
    fn inputs() -> Vec<Value> {
        (0..25)
            .map(|i| {
                let t = if i == 24 {
                    "2015-01-01T00:59:00+00:00".to_string()
                } else {
                    format!("2015-01-01T00:00:{:02}+00:00", i + 1)
                };
                json!({"source.ip": "192.88.99.28", "destination.ip": "192.0.43.8", "time.observation": t,
                       "classification.type": "ddos", "classification.identifier": "ddos"})
            })
            .collect()
    }

    /// Replays IntelMQ's chained test: 25 events, then 90 minutes later the same 25 again on the
    /// same bot and state; the first event of run 2 flushes the group of run 1.
    #[test]
    fn a_group_is_emitted_after_its_timespan_with_count_and_times() {
        let h = harmonization();
        let start = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap().and_hms_micro_opt(6, 9, 20, 800_851).unwrap();
        let mut bot = AggregateExpertBot::build(AggregateExpertParams::default()).unwrap();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut run = |state: &mut MemoryState, log: &mut MemoryLog, now: NaiveDateTime| {
            let clock = FixedClock(now.and_utc());
            let mut sent = Vec::new();
            for input in inputs() {
                let mut ctx = Context { bot_id: "aggregate", harmonization: &h, root, state, log, clock: &clock };
                let mut out = Outbox::default();
                bot.process(event(&h, input), &mut ctx, &mut out).unwrap();
                sent.extend(out.sent);
            }
            sent
        };
        assert!(run(&mut state, &mut log, start).is_empty());
        let groups = stored_groups(&state);
        assert_eq!(groups.len(), 1);
        let group = groups.values().next().unwrap();
        assert_eq!(group["c"], json!(25));
        assert_eq!(group["s"], json!("2026-11-28T06:09:20.800851"));
        assert_eq!(group["l"], json!("2015-01-01T00:59:00+00:00"));
        assert_eq!(
            group["d"],
            json!("{\"classification.identifier\": \"ddos\", \"classification.type\": \"ddos\", \"destination.ip\": \"192.0.43.8\", \"source.ip\": \"192.88.99.28\", \"time.observation\": \"2015-01-01T00:00:01+00:00\"}")
        );

        let sent = run(&mut state, &mut log, start + Duration::seconds(5400));
        assert_eq!(sent.len(), 1);
        let (path, msg) = &sent[0];
        assert_eq!(path, "_default");
        let expected = json!({"classification.identifier": "ddos", "classification.type": "ddos",
            "destination.ip": "192.0.43.8", "source.ip": "192.88.99.28", "time.observation": "2015-01-01T00:00:01+00:00",
            "time.source": "2026-11-28T06:09:20.800851+00:00", "extra.count": 25,
            "extra.time_end": "2015-01-01T00:59:00+00:00", "__type": "Event"});
        assert_eq!(serde_json::from_str::<Value>(&msg.to_wire()).unwrap(), expected);
        let groups = stored_groups(&state);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups.values().next().unwrap()["s"], json!("2026-11-28T07:39:20.800851"));
    }

    #[test]
    fn small_groups_are_dropped_and_extra_count_adds_up() {
        let h = harmonization();
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let params: AggregateExpertParams =
            serde_json::from_value(json!({"threshold": "5", "timespan": "1 hour", "fields": ["classification.type"]}))
                .unwrap();
        let mut bot = AggregateExpertBot::build(params).unwrap();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut feed = |bot: &mut AggregateExpertBot, state: &mut MemoryState, now: NaiveDateTime, fields: Value| {
            let clock = FixedClock(now.and_utc());
            let mut ctx = Context { bot_id: "aggregate", harmonization: &h, root, state, log: &mut log, clock: &clock };
            let mut out = Outbox::default();
            bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
            out.sent
        };
        feed(&mut bot, &mut state, start, json!({"classification.type": "scanner", "extra.count": 4}));
        feed(&mut bot, &mut state, start, json!({"classification.type": "spam"}));
        feed(&mut bot, &mut state, start, json!({"classification.type": "scanner"}));
        let sent = feed(&mut bot, &mut state, start + Duration::hours(2), json!({"classification.type": "ddos"}));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.get_str("classification.type"), Some("scanner"));
        assert_eq!(sent[0].1.get("extra.count"), Some(&json!(5)));
        // Only the new ddos group is left.
        assert_eq!(stored_groups(&state).len(), 1);
    }

    #[test]
    fn bad_timespan_is_refused() {
        let params: AggregateExpertParams = serde_json::from_value(json!({"timespan": "soon"})).unwrap();
        assert_eq!(AggregateExpertBot::build(params).err().unwrap().key, "timespan");
    }
}
