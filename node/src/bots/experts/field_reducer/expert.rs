//! `intelmq.bots.experts.field_reducer.expert`: keeps only the listed keys (`type` whitelist) or
//! removes them (`type` blacklist). A JSONDict field name such as `extra` stands for all its
//! sub-keys.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::Message;

/// Parameters of the field reducer (IntelMQ's names and defaults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldReducerExpertParams {
    /// `whitelist` (keep only `keys`) or `blacklist` (remove `keys`); default null (must be set).
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// The keys, as a list or a comma-separated string; default null (no keys).
    pub keys: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Whitelist,
    Blacklist,
}

/// Keeps or removes a list of keys.
pub struct FieldReducerExpertBot {
    mode: Mode,
    keys: Vec<String>,
}

/// A key list given as a JSON list or a comma-separated string, each key stripped.
pub fn key_list(param: &str, value: &Option<Value>) -> Result<Vec<String>, ParamError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(ParamError::new(param, format!("expected a list of keys, got {other}"))),
            })
            .collect(),
        Some(other) => Err(ParamError::new(param, format!("expected a list of keys, got {other}"))),
    }
}

impl BuildBot for FieldReducerExpertBot {
    type Params = FieldReducerExpertParams;

    fn build(params: FieldReducerExpertParams) -> Result<Self, ParamError> {
        let mode = match params.type_.as_deref().map(str::to_lowercase).as_deref() {
            Some("whitelist") => Mode::Whitelist,
            Some("blacklist") => Mode::Blacklist,
            other => {
                return Err(ParamError::new(
                    "type",
                    format!("expected `whitelist` or `blacklist`, got {}", other.unwrap_or("nothing")),
                ))
            }
        };
        Ok(FieldReducerExpertBot { mode, keys: key_list("keys", &params.keys)? })
    }
}

impl ExpertBot for FieldReducerExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        match self.mode {
            Mode::Blacklist => {
                for key in &self.keys {
                    event.remove(key);
                }
            }
            Mode::Whitelist => {
                let keep: HashSet<&str> = self.keys.iter().map(String::as_str).collect();
                let drop: Vec<String> = event
                    .iter()
                    .map(|(k, _)| k.to_string())
                    .filter(|k| {
                        !keep.contains(k.as_str())
                            && !k.split_once('.').is_some_and(|(head, _)| {
                                keep.contains(head) && event.harmonization().is_jsondict_field(event.kind(), head)
                            })
                    })
                    .collect();
                for key in drop {
                    event.remove(&key);
                }
            }
        }
        out.send(event);
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

    fn run(params: Value, fields: Value) -> Message {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "field-reducer",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut bot = FieldReducerExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    const FIELDS: fn() -> Value = || {
        json!({"classification.type": "scanner", "time.observation": "2015-09-12T00:00:00+00:00",
               "feed.name": "test-feed", "extra.a": 1})
    };

    #[test]
    fn blacklist_removes_the_keys() {
        let msg = run(json!({"type": "blacklist", "keys": "time.source, time.observation, extra"}), FIELDS());
        let keys: Vec<&str> = msg.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["classification.type", "feed.name"]);
    }

    #[test]
    fn whitelist_keeps_only_the_keys() {
        let msg = run(json!({"type": "whitelist", "keys": ["time.observation", "extra"]}), FIELDS());
        let keys: Vec<&str> = msg.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["time.observation", "extra.a"]);
    }

    #[test]
    fn type_must_be_given() {
        assert_eq!(FieldReducerExpertBot::build(FieldReducerExpertParams::default()).err().unwrap().key, "type");
    }
}
