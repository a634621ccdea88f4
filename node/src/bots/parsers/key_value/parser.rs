//! The key-value parser (`intelmq.bots.parsers.key_value.parser`): every line of `k=v` pairs is
//! one event; the configured keys are mapped onto fields, a `time.source` value is read as epoch
//! seconds or a free-form date.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::json::{add_soft, splitlines, BoolParam, MapParam};
use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::datetime::parse_fuzzy;
use crate::message::{Message, TimeFormat};

/// Parameters of the key-value parser (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyValueParserParams {
    /// Default: `" "`. The text between two `key=value` pairs.
    pub pair_separator: String,
    /// Default: `"="`. The text between a key and its value (the last occurrence counts).
    pub kv_separator: String,
    /// Default: `{}` (must be set). Feed key -> event field.
    pub keys: MapParam,
    /// Default: `true`. Remove one pair of double quotes around a value.
    pub strip_quotes: BoolParam,
    /// Default: none. Legacy: the feed key that holds the event time (mapped to `time.source`).
    pub timestamp_key: Option<String>,
}

impl Default for KeyValueParserParams {
    fn default() -> Self {
        KeyValueParserParams {
            pair_separator: " ".to_string(),
            kv_separator: "=".to_string(),
            keys: MapParam::Map(serde_json::Map::new()),
            strip_quotes: BoolParam::Bool(true),
            timestamp_key: None,
        }
    }
}

/// The key-value parser.
#[derive(Debug)]
pub struct KeyValueParserBot {
    pair_separator: String,
    kv_separator: String,
    keys: Vec<(String, String)>,
    strip_quotes: bool,
}

impl BuildBot for KeyValueParserBot {
    type Params = KeyValueParserParams;

    fn build(params: Self::Params) -> Result<Self, ParamError> {
        let mut keys = params.keys.string_map("keys")?;
        if let Some(key) = params.timestamp_key.filter(|k| !k.is_empty()) {
            keys.retain(|(k, _)| *k != key);
            keys.push((key, "time.source".to_string()));
        }
        if keys.is_empty() {
            return Err(ParamError::new("keys", "no keys specified"));
        }
        if params.pair_separator.is_empty() {
            return Err(ParamError::new("pair_separator", "must not be empty"));
        }
        if params.kv_separator.is_empty() {
            return Err(ParamError::new("kv_separator", "must not be empty"));
        }
        Ok(KeyValueParserBot {
            pair_separator: params.pair_separator,
            kv_separator: params.kv_separator,
            keys,
            strip_quotes: params.strip_quotes.get("strip_quotes")?,
        })
    }
}

/// A `time.source` value: digits are epoch seconds, anything else a free-form date; what cannot
/// be read is left out (IntelMQ passes `None`).
fn time_value(value: &str) -> Option<String> {
    if !value.is_empty() && value.chars().all(char::is_numeric) {
        TimeFormat::Timestamp.convert(value)
    } else {
        parse_fuzzy(value)
    }
}

impl KeyValueParserBot {
    fn field_of(&self, key: &str) -> Option<&str> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, f)| f.as_str())
    }

    fn parse_row(&self, mut event: Message, row: &str) -> Result<Message, BotError> {
        for pair in row.split(self.pair_separator.as_str()) {
            let Some((key, value)) = pair.rsplit_once(self.kv_separator.as_str()) else {
                continue;
            };
            if key.is_empty() {
                continue;
            }
            let mut value = value;
            if self.strip_quotes && value.starts_with('"') && value.ends_with('"') {
                value = value.get(1..value.len().saturating_sub(1).max(1)).unwrap_or("");
            }
            let Some(field) = self.field_of(key) else {
                continue;
            };
            let value = if field == "time.source" {
                time_value(value).map_or(Value::Null, Value::String)
            } else {
                Value::String(value.to_string())
            };
            add_soft(&mut event, field, value)?;
        }
        event.add("raw", row)?;
        Ok(event)
    }
}

impl ParserBot for KeyValueParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        for row in splitlines(&text).into_iter().filter(|r| !r.is_empty()) {
            match self.parse_row(out.new_event(), row) {
                Ok(event) => out.event(event),
                Err(e) => out.fail(row, e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::bots::registry::parse_params;
    use crate::message::{Harmonization, MessageKind};

    fn bot(params: Value) -> Result<KeyValueParserBot, ParamError> {
        let Value::Object(map) = params else { panic!("params must be an object") };
        KeyValueParserBot::build(parse_params(&map)?)
    }

    fn event() -> Message {
        Message::new(MessageKind::Event, Harmonization::builtin())
    }

    fn keys() -> Value {
        json!({"srcip": "source.ip", "type": "classification.type", "comment": "comment", "ts": "time.source"})
    }

    #[test]
    fn keys_are_required() {
        assert_eq!(bot(json!({})).unwrap_err().key, "keys");
        assert!(bot(json!({"keys": "{\"a\": \"comment\"}"})).is_ok());
    }

    #[test]
    fn mapped_keys_become_fields_and_others_are_ignored() {
        let b = bot(json!({"keys": keys()})).unwrap();
        let e = b.parse_row(event(), "head srcip=192.0.2.1 dst=x type=test tail").unwrap();
        assert_eq!(e.get_str("source.ip"), Some("192.0.2.1"));
        assert_eq!(e.get_str("classification.type"), Some("test"));
        assert_eq!(e.raw_bytes().unwrap(), b"head srcip=192.0.2.1 dst=x type=test tail");
    }

    #[test]
    fn quotes_are_stripped_unless_disabled() {
        let b = bot(json!({"keys": keys()})).unwrap();
        let e = b.parse_row(event(), "comment=\"Quoted\"").unwrap();
        assert_eq!(e.get_str("comment"), Some("Quoted"));
        let b = bot(json!({"keys": keys(), "strip_quotes": false})).unwrap();
        let e = b.parse_row(event(), "comment=\"Quoted\"").unwrap();
        assert_eq!(e.get_str("comment"), Some("\"Quoted\""));
    }

    #[test]
    fn the_value_follows_the_last_separator() {
        let b = bot(json!({"keys": {"a=b": "comment"}})).unwrap();
        let e = b.parse_row(event(), "a=b=c").unwrap();
        assert_eq!(e.get_str("comment"), Some("c"));
    }

    #[test]
    fn times_are_epoch_seconds_or_free_dates() {
        let b = bot(json!({"keys": keys()})).unwrap();
        let e = b.parse_row(event(), "ts=1234567890").unwrap();
        assert_eq!(e.get_str("time.source"), Some("2009-02-13T23:31:30+00:00"));
        let e = b.parse_row(event(), "ts=\"2009-02-14T00:31:30+01:00\"").unwrap();
        assert_eq!(e.get_str("time.source"), Some("2009-02-13T23:31:30+00:00"));
        let e = b.parse_row(event(), "ts=garbage").unwrap();
        assert!(e.get("time.source").is_none());
    }

    #[test]
    fn legacy_timestamp_key_maps_to_time_source() {
        let b = bot(json!({"keys": {"srcip": "source.ip"}, "timestamp_key": "timestamp"})).unwrap();
        let e = b.parse_row(event(), "timestamp=1234567890").unwrap();
        assert_eq!(e.get_str("time.source"), Some("2009-02-13T23:31:30+00:00"));
    }

    #[test]
    fn a_value_that_does_not_fit_is_left_out() {
        let b = bot(json!({"keys": keys()})).unwrap();
        let e = b.parse_row(event(), "srcip=not-an-ip type=test").unwrap();
        assert!(e.get("source.ip").is_none());
    }
}
