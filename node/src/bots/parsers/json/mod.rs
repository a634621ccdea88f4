//! The IntelMQ-JSON parser (`intelmq.bots.parsers.json`) and the helpers of IntelMQ's `ParserBot`
//! that the JSON feed parsers of this group share: `parse_json` ([`json_items`]),
//! `recover_line_json` ([`recover_line_json`]), the default line splitting ([`text_lines`],
//! [`splitlines`]), Python truthiness and flag/map parameters given in IntelMQ's config forms.

pub mod parser;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::report_text;
use crate::bots::{BotError, ParamError};
use crate::message::types::py_strip;
use crate::message::wire;
use crate::message::{AddOptions, FieldError, Message};

/// Python's `str.splitlines()` (one implementation for every parser).
pub use super::text_lines::py_splitlines as splitlines;

/// IntelMQ `ParserBot.parse` (the default): the report's lines, each stripped; empty lines are
/// left out (the parser loop skips falsy lines).
pub fn text_lines(report: &Message) -> Result<Vec<String>, BotError> {
    let text = report_text(report)?;
    Ok(splitlines(&text).into_iter().map(py_strip).filter(|l| !l.is_empty()).map(str::to_string).collect())
}

/// IntelMQ `ParserBot.parse_json`: the report's `raw` is a JSON array; its truthy elements are the
/// records (the parser loop skips falsy ones).
pub fn json_items(report: &Message) -> Result<Vec<Value>, BotError> {
    let text = report_text(report)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => Ok(items.into_iter().filter(is_truthy).collect()),
        Ok(other) => Err(BotError::Invalid(format!("report raw: expected a JSON array, got {}", kind_name(&other)))),
        Err(e) => Err(BotError::Invalid(format!("report raw is not valid JSON: {e}"))),
    }
}

/// The report's `raw` decoded as one JSON document.
pub fn json_document(report: &Message) -> Result<Value, BotError> {
    let text = report_text(report)?;
    serde_json::from_str(&text).map_err(|e| BotError::Invalid(format!("report raw is not valid JSON: {e}")))
}

/// IntelMQ `recover_line_json`: `json.dumps([record])`.
pub fn recover_line_json(record: &Value) -> String {
    wire::dumps(&Value::Array(vec![record.clone()]))
}

/// Python truthiness of a JSON value.
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A short name of a JSON value's type, for error messages.
pub fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The record as a JSON object, or an error naming what it is instead.
pub fn as_object<'v>(record: &'v Value, what: &str) -> Result<&'v Map<String, Value>, BotError> {
    record
        .as_object()
        .ok_or_else(|| BotError::Invalid(format!("{what}: expected a JSON object, got {}", kind_name(record))))
}

/// `record[key]` as Python would index a dict: a missing key is an error.
pub fn field<'v>(record: &'v Map<String, Value>, key: &str) -> Result<&'v Value, BotError> {
    record.get(key).ok_or_else(|| BotError::Invalid(format!("record has no field `{key}`")))
}

/// `record[key]` that must be a string.
pub fn str_field<'v>(record: &'v Map<String, Value>, key: &str) -> Result<&'v str, BotError> {
    field(record, key)?.as_str().ok_or_else(|| BotError::Invalid(format!("record field `{key}` is not a string")))
}

/// `event.add(key, value, raise_failure=False)`: `Ok(true)` when stored.
pub fn add_soft(event: &mut Message, key: &str, value: impl Into<Value>) -> Result<bool, FieldError> {
    event.add_with(key, value.into(), AddOptions { raise_failure: false, ..AddOptions::default() })
}

/// `event.add(key, value, overwrite=True)`.
pub fn add_overwrite(event: &mut Message, key: &str, value: impl Into<Value>) -> Result<bool, FieldError> {
    event.add_with(key, value.into(), AddOptions { overwrite: Some(true), ..AddOptions::default() })
}

/// Python's `int(v)` for a JSON value: numbers are truncated, strings parsed.
pub fn py_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.trunc() as i64)),
        Value::String(s) => py_strip(s).parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A boolean parameter given as a bool, `"true"`/`"false"` (also yes/no/on/off) or `0`/`1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BoolParam {
    Bool(bool),
    Int(i64),
    String(String),
}

impl BoolParam {
    /// The value, or a [`ParamError`] naming `key`.
    pub fn get(&self, key: &str) -> Result<bool, ParamError> {
        match self {
            BoolParam::Bool(b) => Ok(*b),
            BoolParam::Int(i) => Ok(*i != 0),
            BoolParam::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" | "" => Ok(false),
                _ => Err(ParamError::new(key, format!("expected a boolean, got `{s}`"))),
            },
        }
    }
}

/// A mapping parameter given as a JSON object or as a string holding one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MapParam {
    Map(Map<String, Value>),
    Json(String),
}

impl MapParam {
    /// The mapping with string values, or a [`ParamError`] naming `key`.
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, ParamError> {
        let map = match self {
            MapParam::Map(map) => map.clone(),
            MapParam::Json(text) if text.trim().is_empty() => Map::new(),
            MapParam::Json(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(ParamError::new(key, format!("expected a JSON object, got `{text}`"))),
                Err(e) => return Err(ParamError::new(key, format!("invalid JSON `{text}`: {e}"))),
            },
        };
        map.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                other => Err(ParamError::new(key, format!("value of `{k}` must be a string, got {other}"))),
            })
            .collect()
    }
}

/// Test helpers shared by this group's parser tests.
#[cfg(test)]
pub(crate) mod test_support {
    use serde_json::Value;

    use crate::bots::{Context, MemoryLog, MemoryState, ParserBot, ParserOutput};
    use crate::message::{Harmonization, Message, MessageKind};

    /// A report with the given fields (besides `raw`) and `raw`.
    pub fn report(fields: Value, raw: &str) -> Message {
        let mut report = Message::new(MessageKind::Report, Harmonization::builtin());
        if let Value::Object(map) = fields {
            for (k, v) in map {
                report.add(&k, v).unwrap();
            }
        }
        report.add("raw", raw).unwrap();
        report
    }

    /// Runs `bot` on `report`: the events, the failed lines' raw texts and the parse result.
    pub fn run(bot: &mut dyn ParserBot, report: &Message) -> (Vec<Message>, Vec<String>, Result<(), String>) {
        let harmonization = report.harmonization().clone();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::PathBuf::from("/");
        let mut ctx = Context {
            bot_id: "test-parser",
            harmonization: &harmonization,
            root: &root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let copy = Vec::new();
        let mut out = ParserOutput::new(report, &copy);
        let result = bot.parse(report, &mut ctx, &mut out).map_err(|e| e.to_string());
        let failed = out.failed.iter().map(|f| f.raw.clone()).collect();
        (out.events, failed, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splitlines_follows_python() {
        assert_eq!(splitlines("a\nb\r\nc\rd"), vec!["a", "b", "c", "d"]);
        assert_eq!(splitlines("a\n\nb\n"), vec!["a", "", "b"]);
        assert_eq!(splitlines("a\u{2028}b\x0bc"), vec!["a", "b", "c"]);
        assert!(splitlines("").is_empty());
        assert_eq!(splitlines("\n"), vec![""]);
    }

    #[test]
    fn recover_line_json_wraps_the_record_in_a_list() {
        assert_eq!(recover_line_json(&json!({"a": 1, "b": [0.0, null]})), "[{\"a\": 1, \"b\": [0.0, null]}]");
    }

    #[test]
    fn truthiness_is_pythons() {
        assert!(!is_truthy(&json!({})));
        assert!(!is_truthy(&json!(0)));
        assert!(!is_truthy(&json!("")));
        assert!(is_truthy(&json!([0])));
    }

    #[test]
    fn py_int_truncates_floats_and_parses_strings() {
        assert_eq!(py_int(&json!(1529079021.9)), Some(1529079021));
        assert_eq!(py_int(&json!(" 42 ")), Some(42));
        assert_eq!(py_int(&json!(null)), None);
    }

    #[test]
    fn bool_params_accept_config_forms() {
        assert!(BoolParam::String("True".into()).get("k").unwrap());
        assert!(!BoolParam::Int(0).get("k").unwrap());
        assert_eq!(BoolParam::String("maybe".into()).get("k").unwrap_err().key, "k");
    }

    #[test]
    fn map_params_accept_objects_and_json_strings() {
        let from_text = MapParam::Json("{\"a\": \"b\"}".into()).string_map("keys").unwrap();
        assert_eq!(from_text, vec![("a".to_string(), "b".to_string())]);
        assert!(MapParam::Json("[1]".into()).string_map("keys").is_err());
        let mut map = Map::new();
        map.insert("a".into(), json!(1));
        assert!(MapParam::Map(map).string_map("keys").is_err());
    }
}
